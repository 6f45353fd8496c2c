"""How marts are kept in a serving store, declared once: query-first keys and value indexes.

A `ServingTable` holds the rows of one lake table (a mart) under a store-side name, keyed for
the questions asked of it: every question reads a slice of ONE partition (rows sharing the
partition key, within a range of the clustering key). With a `where`, it holds only the mart's
rows where that predicate holds (the anomalies of the cost-anomaly mart): `served_rows` and
`ServedSink` apply it before any store sees a row. A `ValueIndex` asks the store to keep the
distinct values of one column where they can be read without a scan (the latest usage date, the
latest ticket date, the orgs loaded). Stores derive their DDL and row codecs from these values
and the table's columns; `finops_core.queries` states what each question means over slices.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

import attrs

from finops_core.anomaly import COST_ANOMALIES
from finops_core.contracts import LogicalType
from finops_core.errors import InvalidRow
from finops_core.expressions import Equals, Predicate, columns_read, holds
from finops_core.marts import DAILY_USAGE, GENAI_TOKENS, REVENUE, TICKETS
from finops_core.tables import Row, Table


@attrs.frozen
class ValueIndex:
    """The distinct values of `column`, kept by the store under `name`."""

    name: str
    column: str
    descending: bool = False


@attrs.frozen
class ServingTable:
    name: str
    source: Table
    partition_key: tuple[str, ...]
    clustering_key: tuple[str, ...]
    indexes: tuple[ValueIndex, ...] = ()
    description: str = ""
    where: Predicate | None = None  # only the source rows where it holds are served

    def __attrs_post_init__(self) -> None:
        key = (*self.partition_key, *self.clustering_key)
        if set(key) != set(self.source.primary_key) or len(key) != len(self.source.primary_key):
            raise ValueError(
                f"{self.name}: partition + clustering key {key} must be the primary key "
                f"{self.source.primary_key} of {self.source.id}"
            )
        for index in self.indexes:
            self.source.column(index.column)
        for column in sorted(columns_read(self.where) if self.where is not None else ()):
            self.source.column(column)

    @property
    def primary_key(self) -> tuple[str, ...]:
        return (*self.partition_key, *self.clustering_key)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.source.column_names

    def index(self, column: str) -> ValueIndex:
        for index in self.indexes:
            if index.column == column:
                return index
        raise KeyError(f"{self.name} keeps no index of {column!r}")


DAILY_USAGE_BY_ORG = ServingTable(
    name="daily_usage_by_org",
    source=DAILY_USAGE.table,
    # One partition per org, clustered by day then service: Q1 and the per-day detail are slices
    # of it, Q2 sums a slice. A partition grows by services x days (~7k rows a year for 20
    # services); bucket the partition key by month if an org gets much wider.
    partition_key=("org_id",),
    clustering_key=("usage_date", "service"),
    indexes=(
        ValueIndex("usage_dates", "usage_date", descending=True),  # Q2's default as-of
        ValueIndex("orgs", "org_id"),  # count rows per org instead of scanning the table
    ),
    description="gold org_daily_usage_by_service, one partition per organisation",
)

REVENUE_BY_ORG = ServingTable(
    name="revenue_by_org",
    source=REVENUE.table,
    # One partition per org, clustered by month: Q4 for one org is the whole partition (12 rows
    # a year, never worth bucketing). Q4 for every org reads the `revenue_orgs` index (one
    # partition), then each org's partition: one single-partition read per org, never a scan.
    partition_key=("org_id",),
    clustering_key=("month",),
    indexes=(ValueIndex("revenue_orgs", "org_id"),),  # Q4's every org; count without a scan
    description="gold revenue_by_org_month, one partition per organisation",
)

TICKETS_BY_ORG = ServingTable(
    name="tickets_by_org",
    source=TICKETS.table,
    # One partition per org, clustered by creation day then severity: Q3's 30 days are one
    # range of the partition (at most days x severities rows), summed per day in the queries.
    # A partition grows by severities x days (~1.8k rows a year for 5 severities).
    partition_key=("org_id",),
    clustering_key=("ticket_date", "severity"),
    indexes=(
        ValueIndex("ticket_dates", "ticket_date", descending=True),  # Q3's default as-of
        ValueIndex("ticket_orgs", "org_id"),  # count rows per org instead of scanning the table
    ),
    description="gold tickets_by_org_date, one partition per organisation",
)

GENAI_TOKENS_BY_ORG = ServingTable(
    name="genai_tokens_by_org",
    source=GENAI_TOKENS.table,
    # One partition per org, clustered by day: Q5's start..end is one range of it (one row a
    # day, ~365 rows a year).
    partition_key=("org_id",),
    clustering_key=("usage_date",),
    indexes=(ValueIndex("genai_orgs", "org_id"),),  # count rows per org instead of a scan
    description="gold genai_tokens_by_org_date, one partition per organisation",
)

ANOMALIES_BY_DAY = ServingTable(
    name="cost_anomalies_by_day",
    source=COST_ANOMALIES.table,
    # Only the anomalies (a few hundred of the mart's rows), one partition per day, clustered by
    # org then service: the anomalies question reads the days of its range from the
    # `anomaly_dates` index (one partition), then each of those days' partitions. A day's
    # partition holds at most orgs x services rows, and only anomalous ones.
    partition_key=("usage_date",),
    clustering_key=("org_id", "service"),
    indexes=(ValueIndex("anomaly_dates", "usage_date", descending=True),),
    description="gold cost_anomaly_mart's anomalies, one partition per day",
    where=Equals("is_anomaly", True),
)

SERVING_TABLES: tuple[ServingTable, ...] = (
    DAILY_USAGE_BY_ORG,
    REVENUE_BY_ORG,
    TICKETS_BY_ORG,
    GENAI_TOKENS_BY_ORG,
    ANOMALIES_BY_DAY,
)


def serving_table(name: str) -> ServingTable:
    """The declared serving table of that name (a sink shipped to an executor carries names)."""
    for table in SERVING_TABLES:
        if table.name == name:
            return table
    raise KeyError(f"no serving table is named {name!r}")


def rows_where(table: ServingTable, rows: Iterable[Row]) -> Iterator[Row]:
    """The source rows the serving table holds: all of them, or those where its `where` holds
    (what a prune keeps, whose rows the load has already checked)."""
    where = table.where
    return iter(rows) if where is None else (row for row in rows if holds(where, row))


def served_rows(table: ServingTable, rows: Iterable[Row]) -> Iterator[Row]:
    """`rows_where`, each row checked: a null in a required column, or a float that is NaN or
    infinite, is an InvalidRow naming the table, the row's key and the column, before any store
    sees it."""
    kept = rows_where(table, rows)
    required = tuple(c.name for c in table.source.columns if not c.nullable)
    floats = tuple(c.name for c in table.source.columns if c.type is LogicalType.FLOAT)
    for row in kept:
        for name in required:
            if row.get(name) is None:
                raise _invalid(table, row, name, "a null")
        for name in floats:
            value = row.get(name)
            if isinstance(value, float) and not math.isfinite(value):
                raise _invalid(table, row, name, repr(value))
        yield row


def _invalid(table: ServingTable, row: Row, column: str, value: str) -> InvalidRow:
    key = ", ".join(f"{name}={row.get(name)}" for name in table.primary_key)
    return InvalidRow(
        f"{table.source.id} holds {value} in {column} at ({key}), which {table.name} cannot "
        "serve: the load stopped there (SQLite keeps that table's previous rows). Gold should "
        "never hold such a value; please report it with the landing line it came from."
    )


@attrs.frozen
class ServedSink:
    """A partition sink that hands `sink` only the rows `table` serves (picklable when `sink`
    is: a Spark executor runs it)."""

    table: str  # the serving table's name
    sink: Callable[[Iterable[Row]], int]  # a `ports.PartitionSink`

    def __call__(self, rows: Iterable[Row]) -> int:
        return self.sink(served_rows(serving_table(self.table), rows))
