"""`finops demo`: the whole pipeline on the embedded defaults, end to end."""

from __future__ import annotations

import argparse

from entrypoints.commands.common import add_command, add_lake_option, lake_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "demo",
        "run the whole pipeline end to end on the embedded defaults",
        "Land data/cloud_provider_challenge_dataset_v1.zip if it is there (else generate a\n"
        "scale-1 synthetic landing), run the speed layer once, the batch layer, load the\n"
        "embedded SQLite serving store, then print Q1 and Q2 for the costliest org and the\n"
        "audit. Run it again: it is idempotent and says what it skipped.",
        "finops demo --lake ./datalake",
    )
    add_lake_option(parser)
    parser.add_argument(
        "--engine", choices=("spark", "memory"), default=None, help="batch engine (default: spark)"
    )
    parser.add_argument(
        "--zip",
        default=None,
        metavar="PATH",
        help="dataset zip (default data/cloud_provider_challenge_dataset_v1.zip)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from entrypoints.app import demo

    return demo(lake_path(args), engine=args.engine, zip_path=args.zip, verbose=args.verbose)
