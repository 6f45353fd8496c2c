"""`finops batch`: bronze masters, bronze events (backfill), silver and gold."""

from __future__ import annotations

import argparse

from entrypoints.commands.common import (
    add_command,
    add_engine_option,
    add_lake_option,
    add_master_option,
    writes_lake,
)
from entrypoints.containers import Container


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "batch",
        "run the batch layer: bronze, silver (+ quarantine), gold",
        "Run the batch layer over the landing zone in <lake>/landing: the seven CSVs to bronze,\n"
        "usage events to bronze, silver with quality rules and quarantine, and every gold mart.\n"
        "Bronze events mirror the landing file by file: the ledger (bronze/landing_files) holds\n"
        "the name, size and SHA-256 of every events file bronze absorbed, so a batch ingests the\n"
        "new files, replaces the rows of changed ones and drops the rows of removed ones (files\n"
        "the speed layer already streamed are skipped). Every table write is one Delta commit:\n"
        "a batch killed mid-way leaves the previous versions; rerun it. Prints per-stage counts\n"
        "and seconds; exits 1 when a reconciliation of the run fails.",
        "finops batch --lake ./datalake --engine spark",
    )
    add_lake_option(parser)
    add_engine_option(parser)
    add_master_option(parser)
    parser.add_argument(
        "--backfill",
        action="store_true",
        help="re-ingest every landing events file, whatever the ledger says (bronze events "
        "are rebuilt whole, in one commit)",
    )
    writes_lake(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, container: Container) -> int:
    from entrypoints.app import batch

    record = batch(container, force_backfill=args.backfill)
    return 0 if record.passed else 1
