"""`finops landing`: land the challenge dataset zip into <lake>/landing/, validated and atomic."""

from __future__ import annotations

import argparse
from pathlib import Path

from entrypoints.commands.common import add_command, add_lake_option, writes_lake
from entrypoints.containers import Container

DEFAULT_ZIP = Path("data/cloud_provider_challenge_dataset_v1.zip")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "landing",
        summary="land the dataset zip into <lake>/landing/ (validated, atomic, idempotent)",
        description=(
            "Check the dataset zip (expected members, no absolute or '..' paths, no symlinks, no\n"
            "zip bomb, at most landing_max_members entries unpacking to at most\n"
            "landing_max_total_bytes, counted while writing too), then extract its\n"
            "datalake/landing/ members into <lake>/landing/ in one rename and write\n"
            "_manifest.json (SHA-256 and size of every file). A zip that cannot be decompressed\n"
            "is refused and leaves nothing behind. Landing the same zip again changes nothing;\n"
            "a different zip is refused unless --replace. After a\n"
            "--replace, the next `finops batch` makes bronze mirror the new landing file by file\n"
            "(by name, size and SHA-256): rows of a changed file are replaced, rows of a removed\n"
            "file leave bronze, silver, gold and, at the next `finops load`, the serving store."
        ),
        example="finops landing --zip data/cloud_provider_challenge_dataset_v1.zip --lake datalake",
    )
    parser.add_argument(
        "--zip",
        type=Path,
        default=DEFAULT_ZIP,
        metavar="PATH",
        help=f"dataset zip (default: {DEFAULT_ZIP})",
    )
    add_lake_option(parser)
    parser.add_argument(
        "--replace",
        action="store_true",
        help="replace a landing that came from another zip or from the generator",
    )
    writes_lake(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, container: Container) -> int:
    from entrypoints.app import land

    land(container, args.zip, replace=args.replace)
    return 0
