"""`finops doctor`: check that the serving store is reachable and holds the serving schema."""

from __future__ import annotations

import argparse

from entrypoints.commands.common import add_command, add_lake_option, add_serving_option, read_only
from entrypoints.config import shown_settings
from entrypoints.containers import Container


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "doctor",
        "check the serving store: settings, connection, version and tables",
        "Show the settings of the serving store (secrets only as set or not set), connect to it\n"
        "the way `finops query` does, and print what it found: the server and its version\n"
        "(Cassandra's release_version and data centre, or SQLite's version), the keyspace or\n"
        "file, which serving tables exist and the schema version. Nothing is written.\n"
        "Exit 0 when the store is ready to answer queries; 1 when tables are missing (run\n"
        "`finops load`); 2 for a setting to fix (a missing AstraDB keyspace names the ones\n"
        "that exist); 5 when the store cannot be reached, with the reason: for AstraDB, the\n"
        "secure connect bundle, the metadata service, the SNI proxy or the token.",
        "finops doctor --serving astra   # with ASTRA_DB_* in ./cred.env",
    )
    add_lake_option(parser)
    add_serving_option(parser)
    read_only(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, container: Container) -> int:
    settings = container.settings()
    kind = settings.serving
    print(f"serving store: {kind}")
    for name, env, value in shown_settings(settings, kind):
        print(f"  {name} ({env}) = {value}")
    found = container.serving().describe()
    print(f"connected to {found.where}: {found.server}")
    version = "none" if found.schema_version is None else str(found.schema_version)
    expected = len(found.tables) + len(found.missing)
    print(
        f"{found.namespace}: {len(found.tables)} of {expected} serving tables, "
        f"schema version {version}"
    )
    if found.ready:
        print("ready: `finops query` answers from this store")
        return 0
    print(f"missing tables: {', '.join(found.missing)}; run `finops load --serving {kind}`")
    return 1
