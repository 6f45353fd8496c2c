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
from finops_core.serving import SERVING_TABLES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "load",
        "load the gold marts into the serving store",
        f"Read every served gold mart ({', '.join(t.source.name for t in SERVING_TABLES)})\n"
        "through the engine and load each into the serving store: the store's table becomes the\n"
        "mart's rows (idempotent; rows the mart no longer has are deleted). SQLite loads each\n"
        "table in one transaction: queries see its previous rows until it commits, and a killed\n"
        "load leaves them. Cassandra upserts, then deletes what it holds that the load did not\n"
        "write; with Spark the executors write their partitions themselves. Prints rows loaded,\n"
        "seconds and rows/s, and writes a run record (kind load) to <lake>/_runs/.",
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
