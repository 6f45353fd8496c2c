"""`finops load`: upsert every served gold mart into the serving store."""

from __future__ import annotations

import argparse

from entrypoints.commands.common import (
    add_command,
    add_engine_option,
    add_lake_option,
    add_serving_option,
    writes_lake,
)
from entrypoints.containers import Container


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "load",
        "upsert the gold marts into the serving store",
        "Read every served gold mart (org_daily_usage_by_service) through the engine and upsert\n"
        "it into the serving store (idempotent: a rerun replaces the same keys); with Spark and\n"
        "Cassandra the executors write their partitions themselves. Prints rows loaded, seconds\n"
        "and rows/s, and writes a run record (kind load) to <lake>/_runs/.",
        "finops load --serving cassandra   # after `finops batch`",
    )
    add_lake_option(parser)
    add_serving_option(parser)
    add_engine_option(parser, "engine that reads gold")
    writes_lake(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, container: Container) -> int:
    from entrypoints.app import load

    return 0 if load(container).passed else 1
