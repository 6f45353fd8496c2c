"""`finops load`: upsert the gold table into the serving store."""

from __future__ import annotations

import argparse
import time

from entrypoints.commands.common import add_command, add_lake_option, lake_path
from entrypoints.serving_factory import DEFAULT_SERVING, SERVING_KINDS, open_serving_store
from finops_core.errors import DatasetMissing
from finops_core.lake import LakeLayout


def add_serving_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--serving",
        choices=SERVING_KINDS,
        default=DEFAULT_SERVING,
        help="serving store: sqlite (a file in the lake, the default), cassandra "
        "(CASSANDRA_* settings) or astra (ASTRA_DB_* settings), from the environment or ./cred.env",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "load",
        "upsert the gold table into the serving store",
        "Read gold org_daily_usage_by_service from the lake and upsert it into the serving store "
        "(idempotent: a rerun replaces the same keys). Prints rows loaded, seconds and rows/s.",
        "finops load --serving cassandra   # after `finops batch`",
    )
    add_lake_option(parser)
    add_serving_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adapters.lake.gold import read_gold_rows

    lake = LakeLayout(lake_path(args))
    rows = list(read_gold_rows(lake))
    if not rows:
        raise DatasetMissing(f"The lake {lake.root} has no gold rows; run `finops batch` first.")
    store = open_serving_store(args.serving, lake)
    try:
        started = time.perf_counter()
        loaded = store.upsert(rows)
        seconds = time.perf_counter() - started
    finally:
        store.close()
    rate = loaded / seconds if seconds > 0 else float("inf")
    print(f"loaded {loaded} gold rows into {args.serving} in {seconds:.3f} s ({rate:,.0f} rows/s)")
    return 0
