"""`finops load`: load every served gold mart into the serving store."""

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
        "load the gold marts into the serving store",
        "Read every served gold mart (org_daily_usage_by_service) through the engine and load\n"
        "it into the serving store: the store's table becomes the mart's rows (idempotent; rows\n"
        "the mart no longer has are deleted). SQLite loads in one transaction: queries see the\n"
        "previous rows until it commits, and a killed load leaves them. Cassandra upserts, then\n"
        "deletes what it holds that the load did not write; with Spark the executors write\n"
        "their partitions themselves. Prints rows loaded, seconds and rows/s, and writes a run\n"
        "record (kind load) to <lake>/_runs/.",
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
