"""The serving keyspace, designed query-first: every business query is a single-partition read.

- `daily_usage_by_org` PRIMARY KEY ((org_id), usage_date, service): one partition per org,
  clustered by day then service. Q1 is a slice of that partition (usage_date between start and
  end; the optional service filter is applied in the client on that slice), Q3 is the slice of one
  usage_date, and Q2 reads the same slice for its window and sums/ranks per service in the client
  (math.fsum, the reference's exact sum; a second table keyed by service could not pre-aggregate
  an arbitrary window, and ranking ~services x days rows is cheap). A partition grows by
  services x days (~7k rows a year for 20 services): far inside Cassandra's comfort zone; bucket
  the partition key by month if an org ever gets much wider.
- `usage_dates` PRIMARY KEY ((scope), usage_date DESC): the dates loaded, so the latest date
  (Q2's default as_of) is the first row of one partition.
- `orgs` PRIMARY KEY ((scope), org_id): the orgs loaded, so `row_count` is a sum of per-org
  partition counts instead of a scan of the whole table.
- `schema_version`: the version of this schema applied to the keyspace.

`quality_flags` is `frozen<map<text, int>>`: it is always written whole, and a frozen value is
replaced as one cell (a non-frozen map would write a range tombstone on every upsert).
Every statement is IF NOT EXISTS, so applying the schema twice is harmless.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.cassandra.settings import check_keyspace

if TYPE_CHECKING:
    from cassandra.cluster import Session

SCHEMA_VERSION = 1
USAGE_TABLE = "daily_usage_by_org"
DATES_TABLE = "usage_dates"
ORGS_TABLE = "orgs"
VERSION_TABLE = "schema_version"
TABLES = (USAGE_TABLE, DATES_TABLE, ORGS_TABLE, VERSION_TABLE)
# The single partition of the index tables.
SCOPE = "all"


def keyspace_ddl(keyspace: str) -> str:
    """Local nodes only: AstraDB keyspaces are created in the Astra UI."""
    return (
        f"CREATE KEYSPACE IF NOT EXISTS {check_keyspace(keyspace)} WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    )


def table_ddl(keyspace: str) -> list[str]:
    ks = check_keyspace(keyspace)
    return [
        f"""CREATE TABLE IF NOT EXISTS {ks}.{USAGE_TABLE} (
            org_id text,
            usage_date date,
            service text,
            daily_cost_usd double,
            requests double,
            cpu_hours double,
            storage_gb_hours double,
            genai_tokens bigint,
            carbon_kg double,
            event_count bigint,
            cost_per_request_usd double,
            quality_flags frozen<map<text, int>>,
            PRIMARY KEY ((org_id), usage_date, service)
        ) WITH CLUSTERING ORDER BY (usage_date ASC, service ASC)""",
        f"""CREATE TABLE IF NOT EXISTS {ks}.{DATES_TABLE} (
            scope text,
            usage_date date,
            PRIMARY KEY ((scope), usage_date)
        ) WITH CLUSTERING ORDER BY (usage_date DESC)""",
        f"""CREATE TABLE IF NOT EXISTS {ks}.{ORGS_TABLE} (
            scope text,
            org_id text,
            PRIMARY KEY ((scope), org_id)
        )""",
        f"""CREATE TABLE IF NOT EXISTS {ks}.{VERSION_TABLE} (
            component text PRIMARY KEY,
            version int,
            applied_at timestamp
        )""",
    ]


def apply_schema(session: Session, keyspace: str, create_keyspace: bool = True) -> None:
    """Create the keyspace (unless AstraDB) and tables if missing, then record the version."""
    if create_keyspace:
        session.execute(keyspace_ddl(keyspace))
    for statement in table_ddl(keyspace):
        session.execute(statement)
    session.execute(
        f"INSERT INTO {check_keyspace(keyspace)}.{VERSION_TABLE} (component, version, applied_at) "
        "VALUES ('serving', %s, toTimestamp(now()))",
        (SCHEMA_VERSION,),
    )


def applied_version(session: Session, keyspace: str) -> int | None:
    row = session.execute(
        f"SELECT version FROM {check_keyspace(keyspace)}.{VERSION_TABLE} WHERE component = 'serving'"
    ).one()
    return None if row is None else int(row.version)
