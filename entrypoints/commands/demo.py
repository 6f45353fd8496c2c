"""`finops demo`: the whole pipeline on the embedded defaults, end to end."""

from __future__ import annotations

import argparse
from pathlib import Path

from entrypoints.commands.common import add_command, add_engine_option, add_lake_option, writes_lake
from entrypoints.containers import Container


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "demo",
        "run the whole pipeline end to end on the embedded defaults",
        "Land data/cloud_provider_challenge_dataset_v1.zip if it is there (else generate a\n"
        "scale-1 synthetic landing), run the speed layer once (Spark), the batch layer, load the\n"
        "embedded SQLite serving store, then print Q1 and Q2 for the costliest org and the\n"
        "audit, and write the HTML report (`finops report`) to <lake>/report/finops-report.html,\n"
        "printing its path. Run it again: it is idempotent and says what it skipped.",
        "finops demo --lake ./datalake",
    )
    add_lake_option(parser)
    add_engine_option(parser, "batch engine")
    parser.add_argument(
        "--zip",
        type=Path,
        default=None,
        metavar="PATH",
        help="dataset zip (default data/cloud_provider_challenge_dataset_v1.zip)",
    )
    # The demo serves from the embedded SQLite store whatever the `serving` setting says.
    writes_lake(parser)
    parser.set_defaults(handler=run, serving="sqlite")


def run(args: argparse.Namespace, container: Container) -> int:
    from entrypoints.app import demo
    from entrypoints.commands.report import write_report

    record = demo(container, args.zip)
    written = write_report(container)
    print(f"\nreport: {written.path}")
    return 0 if record.passed else 1
