"""Options shared by several sub-commands.

A flag left out is None: the setting then comes from the TOML file, ./cred.env or the
environment (`entrypoints.config`), and the command reads it from its container.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from entrypoints.config import ENGINES, SERVING_KINDS


def add_lake_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lake",
        type=Path,
        default=None,
        metavar="DIR",
        help="lake folder (default: the `lake` setting, $FINOPS_LAKE or ./datalake)",
    )


def add_engine_option(parser: argparse.ArgumentParser, what: str = "engine") -> None:
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=None,
        help=f"{what} (default: the `engine` setting, spark)",
    )


def add_master_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--master",
        default=None,
        metavar="URL",
        help="Spark master, e.g. spark://host:7077 (default: the `spark_master` setting, local[*])",
    )


def add_serving_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--serving",
        choices=SERVING_KINDS,
        default=None,
        help="serving store (default: the `serving` setting, sqlite): sqlite (a file in the "
        "lake), cassandra (cassandra_* settings), astra (astra_db_* settings) or memory (this "
        "process only)",
    )


def writes_lake(parser: argparse.ArgumentParser) -> None:
    """The command writes the lake: it holds the lake's lock while it runs (one writer at a
    time; `query`, `audit` and `profile` never take it)."""
    parser.add_argument(
        "--no-wait",
        dest="no_wait",
        action="store_true",
        help="if another finops command is writing this lake, stop at once (exit 7) and name "
        "it, instead of waiting for it to finish",
    )
    parser.set_defaults(writes_lake=True)


def read_only(parser: argparse.ArgumentParser) -> None:
    """The command only reads the serving store: it never creates one."""
    parser.set_defaults(read_only=True)


def add_command(
    subparsers: argparse._SubParsersAction, name: str, summary: str, description: str, example: str
) -> argparse.ArgumentParser:
    """A sub-command whose --help says what it does and shows an example."""
    return subparsers.add_parser(
        name,
        help=summary,
        description=description,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def iso_date(text: str) -> dt.date:
    """An argparse type: a YYYY-MM-DD date, or a usage error that shows the form."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2025-07-31") from None
