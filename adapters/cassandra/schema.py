"""The serving keyspace, derived query-first from `finops_core.serving`: every read is a slice of
one partition.

For each `ServingTable`:
- the table itself, PRIMARY KEY ((partition key), clustering key...) WITH CLUSTERING ORDER BY
  (... ASC), its columns typed by `CQL_TYPES`. For `daily_usage_by_org` that is one partition per
  org, clustered by day then service: Q1 and the per-day detail are slices of it, Q2 sums a slice
  in `finops_core.queries` (a table keyed by service could not pre-aggregate an arbitrary
  window). `tickets_by_org` (org; ticket_date, severity), `revenue_by_org` (org; month) and
  `genai_tokens_by_org` (org; usage_date) answer Q3, Q4 and Q5 the same way;
  `cost_anomalies_by_day` (usage_date; org_id, service) holds only the anomalies, a day a
  partition, its flagged methods a set.
- one table per `ValueIndex`, named after the index: PRIMARY KEY ((scope), <column>) in the
  index's order, with a single partition `scope = 'all'`. `usage_dates` and `ticket_dates`
  (DESC) give the latest date as the first row of one partition, `anomaly_dates` (DESC) the
  days with an anomaly (and lists that table's partitions); `orgs`, `revenue_orgs`,
  `ticket_orgs` and `genai_orgs` list a table's partitions, so counting rows is a sum of
  per-partition counts instead of a scan, and Q4 for every org reads each org's partition.
- `schema_version`: the version of this schema applied to the keyspace.

A count map is `frozen<map<text, int>>`, a text list `frozen<list<text>>` and a text set (an
anomaly's flagged methods) `frozen<set<text>>`: they are always written whole, and a frozen value
is replaced as one cell (a non-frozen collection would write a range tombstone on every upsert).
Every statement is IF NOT EXISTS, so applying the schema twice is harmless.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from adapters.cassandra.settings import DEFAULT_REPLICATION, Replication, check_keyspace
from finops_core.contracts import LogicalType
from finops_core.errors import ConfigurationError, ServingUnavailable
from finops_core.serving import SERVING_TABLES, ServingTable, ValueIndex

if TYPE_CHECKING:
    from cassandra.cluster import Session

# Version 1 is unchanged by the derivation: the derived DDL creates exactly the tables, columns,
# types, keys and clustering orders that the hand-written version 1 created. Version 2 adds the
# revenue, tickets and GenAI tables and their index tables (IF NOT EXISTS: a version 1 keyspace
# gains them when the schema is applied again; its tables are unchanged). Version 3 adds the cost
# anomalies table and its index table the same way.
SCHEMA_VERSION = 3
VERSION_TABLE = "schema_version"
# The column and single partition of the index tables.
SCOPE_COLUMN = "scope"
SCOPE = "all"

CQL_TYPES: Mapping[LogicalType, str] = {
    LogicalType.STRING: "text",
    LogicalType.JSON: "text",
    LogicalType.NUMERIC_TEXT: "text",
    LogicalType.INTEGER: "bigint",
    LogicalType.FLOAT: "double",
    LogicalType.BOOLEAN: "boolean",
    LogicalType.DATE: "date",
    LogicalType.TIMESTAMP: "timestamp",
    LogicalType.STRING_LIST: "frozen<list<text>>",
    LogicalType.STRING_SET: "frozen<set<text>>",
    LogicalType.COUNT_MAP: "frozen<map<text, int>>",
}


def cql_type(table: ServingTable, column: str) -> str:
    return CQL_TYPES[table.source.column(column).type]


def table_names(tables: Sequence[ServingTable] = SERVING_TABLES) -> tuple[str, ...]:
    """Every table the schema creates in the keyspace."""
    names = [name for table in tables for name in (table.name, *(i.name for i in table.indexes))]
    if len(set(names)) != len(names) or VERSION_TABLE in names:
        raise ValueError(f"serving tables and indexes need distinct CQL table names: {names}")
    return (*names, VERSION_TABLE)


def keyspace_ddl(keyspace: str, replication: Replication = DEFAULT_REPLICATION) -> str:
    """Local nodes only: AstraDB keyspaces are created in the Astra UI. The replication is the
    `cassandra_replication` setting (default SimpleStrategy, factor 1)."""
    return (
        f"CREATE KEYSPACE IF NOT EXISTS {check_keyspace(keyspace)} WITH replication = "
        + replication.cql_map()
    )


def _create(
    keyspace: str,
    name: str,
    columns: Sequence[tuple[str, str]],
    partition: Sequence[str],
    clustering: Sequence[tuple[str, bool]],
) -> str:
    """CREATE TABLE of (name, type) columns; clustering is (column, descending) pairs."""
    body = ",\n    ".join(f"{column} {kind}" for column, kind in columns)
    key = ", ".join([f"({', '.join(partition)})", *(column for column, _ in clustering)])
    order = ", ".join(f"{column} {'DESC' if desc else 'ASC'}" for column, desc in clustering)
    return (
        f"CREATE TABLE IF NOT EXISTS {check_keyspace(keyspace)}.{name} (\n    {body},\n"
        f"    PRIMARY KEY ({key})\n)" + (f" WITH CLUSTERING ORDER BY ({order})" if order else "")
    )


def serving_table_ddl(keyspace: str, table: ServingTable) -> str:
    return _create(
        keyspace,
        table.name,
        [(name, cql_type(table, name)) for name in table.columns],
        table.partition_key,
        [(name, False) for name in table.clustering_key],
    )


def index_table_ddl(keyspace: str, table: ServingTable, index: ValueIndex) -> str:
    return _create(
        keyspace,
        index.name,
        [(SCOPE_COLUMN, "text"), (index.column, cql_type(table, index.column))],
        [SCOPE_COLUMN],
        [(index.column, index.descending)],
    )


def table_ddl(keyspace: str, tables: Sequence[ServingTable] = SERVING_TABLES) -> list[str]:
    """Every CREATE TABLE of the schema: each serving table, its index tables, the version."""
    table_names(tables)  # refuse clashing names before creating anything
    statements = []
    for table in tables:
        statements.append(serving_table_ddl(keyspace, table))
        statements.extend(index_table_ddl(keyspace, table, index) for index in table.indexes)
    statements.append(
        f"CREATE TABLE IF NOT EXISTS {check_keyspace(keyspace)}.{VERSION_TABLE} (\n"
        "    component text PRIMARY KEY,\n    version int,\n    applied_at timestamp\n)"
    )
    return statements


def keyspace_names(session: Session) -> list[str]:
    """The keyspaces of the cluster the session sees, system keyspaces left out, sorted."""
    names = (
        str(row.keyspace_name)
        for row in session.execute("SELECT keyspace_name FROM system_schema.keyspaces")
    )
    return sorted(name for name in names if not name.startswith(("system", "dse_", "solr_")))


def require_keyspace(session: Session, keyspace: str, where: str, *, astra: bool) -> None:
    """Refuse, naming what exists and what to do, when `keyspace` is not in the cluster: on
    AstraDB it is made in the Astra UI (CQL may not create one), on Cassandra by a load."""
    existing = keyspace_names(session)
    if keyspace in existing:
        return
    found = ", ".join(existing) if existing else "none"
    if astra:
        raise ConfigurationError(
            f"The keyspace {keyspace} does not exist in {where} (keyspaces there: {found}). "
            "AstraDB keyspaces are created in the Astra UI (the database's Overview, Add "
            "Keyspace); create it there, or set ASTRA_DB_KEYSPACE to one of those."
        )
    raise ServingUnavailable(
        f"The keyspace {keyspace} does not exist at {where} (keyspaces there: {found}); run "
        "`finops load --serving cassandra` first, or set CASSANDRA_KEYSPACE."
    )


def apply_schema(
    session: Session,
    keyspace: str,
    create_keyspace: bool = True,
    tables: Sequence[ServingTable] = SERVING_TABLES,
    replication: Replication = DEFAULT_REPLICATION,
) -> None:
    """Create the keyspace (unless AstraDB) and tables if missing, then record the version."""
    if create_keyspace:
        session.execute(keyspace_ddl(keyspace, replication))
    for statement in table_ddl(keyspace, tables):
        session.execute(statement)
    session.execute(
        f"INSERT INTO {check_keyspace(keyspace)}.{VERSION_TABLE} (component, version, applied_at) "
        "VALUES ('serving', %s, toTimestamp(now()))",
        (SCHEMA_VERSION,),
    )


def applied_version(session: Session, keyspace: str) -> int | None:
    row = session.execute(
        f"SELECT version FROM {check_keyspace(keyspace)}.{VERSION_TABLE} "
        "WHERE component = 'serving'"
    ).one()
    return None if row is None else int(row.version)
