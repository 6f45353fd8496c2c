"""`finops batch`: bronze masters, bronze events (backfill), silver and gold."""

from __future__ import annotations

import argparse

from entrypoints.commands.common import add_command, add_lake_option, lake_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "batch",
        "run the batch layer: bronze, silver (+ quarantine), gold",
        "Run the batch layer over the landing zone in <lake>/landing: the seven CSVs to bronze,\n"
        "usage events to bronze (backfilled from landing when the speed layer has not run),\n"
        "silver with quality rules and quarantine, and gold org_daily_usage_by_service.\n"
        "Reruns replace, never append. Prints per-stage counts and seconds.",
        "finops batch --lake ./datalake --engine spark",
    )
    add_lake_option(parser)
    parser.add_argument(
        "--engine", choices=("spark", "memory"), default=None, help="engine (default: spark)"
    )
    parser.add_argument(
        "--master",
        default=None,
        metavar="URL",
        help="Spark master, e.g. spark://host:7077 (default local[*])",
    )
    parser.add_argument(
        "--backfill",
        action="store_true",
        help="rebuild bronze events from landing even when they exist",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from entrypoints.app import batch

    return batch(
        lake_path(args),
        engine=args.engine,
        master=args.master,
        verbose=args.verbose,
        force_backfill=args.backfill,
    )
