"""`finops vacuum`: delete the files old versions of the lake's Delta tables no longer need."""

from __future__ import annotations

import argparse

from entrypoints.commands.common import add_command, add_lake_option, writes_lake
from entrypoints.containers import Container
from entrypoints.output import format_table

DEFAULT_RETAIN_HOURS = 168.0  # Delta's own default retention (delta.deletedFileRetentionDuration)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "vacuum",
        "delete files that only versions older than the retention need (every Delta table)",
        "Every lake table is a Delta table: each write commits a new version and keeps the\n"
        "files of the previous ones, so a reader mid-way keeps its version and you can read an\n"
        "older version (time travel). Those files pile up. `finops vacuum` deletes, in every\n"
        "Delta table under the lake, the files that no version younger than --retain-hours\n"
        "needs, and the files a killed writer left that no commit names.\n"
        f"Retention: the default is {DEFAULT_RETAIN_HOURS:g} hours (7 days, Delta's default).\n"
        "Time travel to a version older than the retention is lost after a vacuum; the latest\n"
        "version of every table is always kept whole. A shorter retention (even 0) is allowed:\n"
        "vacuum holds the lake's lock, so no finops writer is mid-commit. --dry-run lists the\n"
        "counts without deleting anything. Prints the files removed per table.",
        "finops vacuum --lake ./datalake --retain-hours 24 --dry-run",
    )
    add_lake_option(parser)
    parser.add_argument(
        "--retain-hours",
        type=_hours,
        default=DEFAULT_RETAIN_HOURS,
        metavar="N",
        help=f"keep what versions of the last N hours need (default {DEFAULT_RETAIN_HOURS:g})",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="count the files that would be removed, remove nothing",
    )
    writes_lake(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, container: Container) -> int:
    from adapters.lake.delta import vacuum

    removed = vacuum(container.layout(), args.retain_hours, args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(
        format_table(
            ["table", f"files {verb}"], [[table, count] for table, count in removed.items()]
        )
    )
    print(
        f"vacuum: {verb} {sum(removed.values())} files in {len(removed)} Delta tables of "
        f"{container.layout().root} (retention {args.retain_hours:g} h)"
    )
    return 0


def _hours(text: str) -> float:
    value = float(text)
    if value < 0 or value != value:  # negative or NaN
        raise argparse.ArgumentTypeError(f"{text} is not a number of hours >= 0")
    return value
