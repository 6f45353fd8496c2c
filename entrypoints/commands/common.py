"""Options shared by several sub-commands."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_LAKE = "datalake"


def default_lake() -> Path:
    return Path(os.environ.get("FINOPS_LAKE", DEFAULT_LAKE))


def add_lake_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lake",
        type=Path,
        default=None,
        metavar="DIR",
        help="lake folder (default: $FINOPS_LAKE or ./datalake)",
    )


def lake_path(args: argparse.Namespace) -> Path:
    return args.lake if args.lake is not None else default_lake()


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
