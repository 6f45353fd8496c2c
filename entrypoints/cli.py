"""The `finops` command line: one sub-command per module in `entrypoints.commands`.

Each command module defines `register(subparsers)`, whose parser sets `handler(args, container)`:
the CLI loads the settings once (TOML < ./cred.env < environment < flags), builds the one
container over them and shuts its resources down when the command ends.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from entrypoints.config import cli_configuration
from entrypoints.containers import Container, container_for, running
from finops_core.errors import FinopsError

# Each module defines `register(subparsers)`; the order here is the order `--help` lists them.
COMMAND_MODULES = (
    "entrypoints.commands.demo",
    "entrypoints.commands.landing",
    "entrypoints.commands.generate",
    "entrypoints.commands.stream",
    "entrypoints.commands.batch",
    "entrypoints.commands.load",
    "entrypoints.commands.query",
    "entrypoints.commands.report",
    "entrypoints.commands.audit",
    "entrypoints.commands.vacuum",
    "entrypoints.commands.profile",
    "entrypoints.commands.doctor",
)

DESCRIPTION = """\
Cloud Provider Analytics: turn a cloud provider's usage events and billing/CRM data into FinOps
answers (cost, usage, cost per request, carbon per organisation, service and day).

The lake lives in one folder (--lake, default ./datalake or $FINOPS_LAKE):
landing -> bronze -> silver (+ quarantine) -> gold, then a serving store answers queries.
"""

EPILOG = """\
examples:
  finops demo                              # the whole pipeline on the embedded defaults
  finops landing --zip data/cloud_provider_challenge_dataset_v1.zip
  finops batch --engine spark              # bronze, silver, gold on Spark (local[*])
  finops load && finops query q2 --org org_xaji0y6d --days 14
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finops",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show tracebacks and Spark's own logs"
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="PATH",
        help="TOML file of settings (below environment variables and flags; see README)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def _lake_held(
    container: Container, args: argparse.Namespace
) -> contextlib.AbstractContextManager[None]:
    """The lake's lock for a command that writes the lake; nothing for one that only reads."""
    if not getattr(args, "writes_lake", False):
        return contextlib.nullcontext()
    from entrypoints import app

    return app.lake_held(container, wait=not args.no_wait)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        with cli_configuration(args) as settings:
            # The one container of this command: read-only commands never create a store.
            container = container_for(settings, read_only=getattr(args, "read_only", False))
            with running(container), _lake_held(container, args):
                return int(args.handler(args, container) or 0)
    except FinopsError as error:
        if args.verbose:
            traceback.print_exc()
        print(f"finops: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("finops: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
