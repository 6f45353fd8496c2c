"""The business questions, defined once over any serving store's slices.

Every store answers through these functions: a store only reads a slice of one partition
(`ServingStore.read_slice`), the values of an index, or a row count; windows, as-of defaults,
filters, exact sums, per-day totals and ranking happen here, so every store gives the same
answers. `RowsReader` is the reference slice reader over plain rows (the in-memory store and the
tests use it).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import cast

from finops_core.ports import ServiceCost, SliceReader
from finops_core.serving import (
    ANOMALIES_BY_DAY,
    DAILY_USAGE_BY_ORG,
    GENAI_TOKENS_BY_ORG,
    REVENUE_BY_ORG,
    SERVING_TABLES,
    TICKETS_BY_ORG,
    ServingTable,
)
from finops_core.tables import Row

DEFAULT_DAYS = 14
DEFAULT_LIMIT = 5
DAILY = DAILY_USAGE_BY_ORG
ORG = "org_id"

TICKET_DAYS = 30  # Q3's window
CRITICAL = "critical"  # the severity Q3 counts on its own
# The columns of the rows Q3, Q4 and Q5 answer: the mart's column names (Q3's critical_tickets
# is its own), which the CLI shows and uses as --json keys.
TICKETS_COLUMNS = ("ticket_date", "critical_tickets", "tickets", "sla_breached", "sla_breach_rate")
REVENUE_COLUMNS = (
    "org_id",
    "month",
    "currency",
    "fx_applied",
    "subtotal_usd",
    "credits_usd",
    "taxes_usd",
    "net_revenue_usd",
)
GENAI_COLUMNS = ("usage_date", "total_tokens", "genai_cost_usd", "cost_per_1k_tokens_usd")
ANOMALY_COLUMNS = (
    "usage_date",
    "org_id",
    "service",
    "daily_cost_usd",
    "expected_cost_usd",
    "impact_usd",
    "z_score",
    "mad_score",
    "p99_usd",
    "flagged_methods",
)
# What Q3 reads of each row of the tickets slice.
_TICKET_READS = ("ticket_date", "severity", "tickets", "sla_breached")


# ---- the questions -----------------------------------------------------------------------------


def daily_usage(
    store: SliceReader,
    org_id: str,
    start: dt.date,
    end: dt.date,
    service: str | None = None,
) -> list[dict[str, object]]:
    """Q1: the org's rows with start <= usage_date <= end, by date, service.

    Only one service's rows if `service` is given.
    """
    if start > end:
        return []
    rows = store.read_slice(DAILY, (org_id,), (start,), (end,))
    chosen = [row for row in rows if service is None or row["service"] == service]
    return sorted(chosen, key=lambda row: (row["usage_date"], row["service"]))  # type: ignore[return-value]


def window(as_of: dt.date, days: int) -> tuple[dt.date, dt.date]:
    """The Q2 window: as_of - days + 1 .. as_of, inclusive."""
    if days < 1:
        raise ValueError("days must be at least 1")
    return as_of - dt.timedelta(days=days - 1), as_of


def rank_services(totals: dict[str, float], limit: int) -> list[ServiceCost]:
    """Most expensive first; ties broken by service name so every store agrees."""
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return [ServiceCost(service, cost) for service, cost in ranked[:limit]]


def top_services(
    store: SliceReader,
    org_id: str,
    days: int = DEFAULT_DAYS,
    as_of: dt.date | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[ServiceCost]:
    """Q2: top services by exact total cost over the window ending at as_of (default: the latest
    usage date loaded, of any org)."""
    if as_of is None:
        as_of = latest_usage_date(store)
        if as_of is None:
            return []
    start, end = window(as_of, days)
    costs: dict[str, list[float]] = {}
    for row in store.read_slice(
        DAILY, (org_id,), (start,), (end,), columns=("service", "daily_cost_usd")
    ):
        costs.setdefault(str(row["service"]), []).append(float(row["daily_cost_usd"]))  # type: ignore[arg-type]
    return rank_services({service: math.fsum(values) for service, values in costs.items()}, limit)


def org_day(store: SliceReader, org_id: str, usage_date: dt.date) -> list[dict[str, object]]:
    """The per-day detail: every service of one org on one day, by service."""
    return daily_usage(store, org_id, usage_date, usage_date)


def latest_usage_date(store: SliceReader, org_id: str | None = None) -> dt.date | None:
    """The latest usage date loaded (of one org, or of any)."""
    if org_id is None:
        found = store.index_values(DAILY, "usage_date", limit=1)
        return found[0] if found else None  # type: ignore[return-value]
    rows = store.read_slice(DAILY, (org_id,), columns=("usage_date",), descending=True, limit=1)
    return rows[0]["usage_date"] if rows else None  # type: ignore[return-value]


def known_orgs(store: SliceReader) -> list[str]:
    """Every org the store holds a row of: the org indexes of the tables partitioned by org,
    merged (one index partition each, never a scan)."""
    found: set[str] = set()
    for table in SERVING_TABLES:
        if table.partition_key == (ORG,) and any(i.column == ORG for i in table.indexes):
            found.update(str(org) for org in store.index_values(table, ORG))
    return sorted(found)


def usage_dates(store: SliceReader) -> tuple[dt.date, dt.date] | None:
    """The first and the latest usage date loaded, of any org (None when nothing is)."""
    days = cast(list[dt.date], store.index_values(DAILY, "usage_date"))
    return (days[-1], days[0]) if days else None


def row_count(store: SliceReader) -> int:
    return store.count(DAILY)


def _total(rows: Iterable[Row], column: str) -> int:
    """The exact total of an integer column."""
    return sum(cast(int, row[column]) for row in rows)


def ticket_day(day: dt.date, rows: Sequence[Row]) -> dict[str, object]:
    """One day of Q3 from that day's rows (one per severity): the critical tickets, every
    ticket, the SLA breaches and their rate over every severity (null without tickets)."""
    tickets_of_day = _total(rows, "tickets")
    breached = _total(rows, "sla_breached")
    return {
        "ticket_date": day,
        "critical_tickets": _total((r for r in rows if r["severity"] == CRITICAL), "tickets"),
        "tickets": tickets_of_day,
        "sla_breached": breached,
        "sla_breach_rate": breached / tickets_of_day if tickets_of_day else None,
    }


def latest_ticket_date(store: SliceReader) -> dt.date | None:
    """The latest ticket date loaded, of any org (Q3's default as-of)."""
    found = store.index_values(TICKETS_BY_ORG, "ticket_date", limit=1)
    return cast(dt.date, found[0]) if found else None


def tickets(
    store: SliceReader,
    org_id: str,
    as_of: dt.date | None = None,
    days: int = TICKET_DAYS,
) -> list[dict[str, object]]:
    """Q3: the org's tickets per day over as_of-days+1 .. as_of (inclusive; as_of defaults to
    the latest ticket date loaded, of any org), by day; days without tickets are omitted."""
    if as_of is None:
        as_of = latest_ticket_date(store)
        if as_of is None:
            return []
    start, end = window(as_of, days)
    by_day: dict[dt.date, list[Row]] = {}
    for row in store.read_slice(TICKETS_BY_ORG, (org_id,), (start,), (end,), columns=_TICKET_READS):
        by_day.setdefault(cast(dt.date, row["ticket_date"]), []).append(row)
    return [ticket_day(day, rows) for day, rows in sorted(by_day.items())]


def revenue(store: SliceReader, org_id: str | None = None) -> list[dict[str, object]]:
    """Q4: the org's monthly revenue rows by month, or (without an org) every org's, by org then
    month: one partition per org, the orgs read from the table's index."""
    orgs = [org_id] if org_id is not None else store.index_values(REVENUE_BY_ORG, "org_id")
    rows = [
        row
        for org in orgs
        for row in store.read_slice(REVENUE_BY_ORG, (org,), columns=REVENUE_COLUMNS)
    ]
    return sorted(rows, key=lambda row: (str(row["org_id"]), cast(dt.date, row["month"])))


def genai(
    store: SliceReader,
    org_id: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> list[dict[str, object]]:
    """Q5: the org's GenAI tokens, their cost and the cost per 1k tokens per day, with
    start <= usage_date <= end (either bound open when not given), by day."""
    if start is not None and end is not None and start > end:
        return []
    rows = store.read_slice(
        GENAI_TOKENS_BY_ORG,
        (org_id,),
        () if start is None else (start,),
        () if end is None else (end,),
        columns=GENAI_COLUMNS,
    )
    return sorted(rows, key=lambda row: cast(dt.date, row["usage_date"]))


def _within(day: dt.date, start: dt.date | None, end: dt.date | None) -> bool:
    return (start is None or day >= start) and (end is None or day <= end)


def anomalies(
    store: SliceReader,
    start: dt.date | None = None,
    end: dt.date | None = None,
    org_id: str | None = None,
    limit: int | None = None,
) -> list[dict[str, object]]:
    """The cost anomalies (org, service, day) with start <= usage_date <= end (either bound open
    when not given), of one org or of every org: largest impact first, ties by day, org and
    service; at most `limit` rows. The days come from the table's index (one partition), each
    day is one partition (one org's slice of it with `org_id`)."""
    if start is not None and end is not None and start > end:
        return []
    days = [
        day
        for day in cast(list[dt.date], store.index_values(ANOMALIES_BY_DAY, "usage_date"))
        if _within(day, start, end)
    ]
    org = () if org_id is None else (org_id,)
    rows = [
        row
        for day in days
        for row in store.read_slice(ANOMALIES_BY_DAY, (day,), org, org, columns=ANOMALY_COLUMNS)
    ]
    rows.sort(
        key=lambda row: (
            -cast(float, row["impact_usd"]),
            cast(dt.date, row["usage_date"]),
            str(row["org_id"]),
            str(row["service"]),
        )
    )
    return rows if limit is None else rows[:limit]


# ---- the reference slice reader ----------------------------------------------------------------


def _cut(row: Row, names: tuple[str, ...], length: int) -> tuple[object, ...]:
    return tuple(row[name] for name in names[:length])


def slice_rows(
    table: ServingTable,
    rows: Iterable[Row],
    partition: tuple[object, ...],
    start: tuple[object, ...] = (),
    end: tuple[object, ...] = (),
    *,
    columns: tuple[str, ...] | None = None,
    descending: bool = False,
    limit: int | None = None,
) -> list[dict[str, object]]:
    """What `read_slice` means, over plain rows."""
    clustering = table.clustering_key
    chosen = [
        row
        for row in rows
        if _cut(row, table.partition_key, len(table.partition_key)) == partition
        and (not start or _cut(row, clustering, len(start)) >= start)  # type: ignore[operator]
        and (not end or _cut(row, clustering, len(end)) <= end)  # type: ignore[operator]
    ]
    chosen.sort(key=lambda row: _cut(row, clustering, len(clustering)), reverse=descending)  # type: ignore[arg-type, return-value]
    if limit is not None:
        chosen = chosen[:limit]
    names = columns or table.columns
    return [{name: row[name] for name in names} for row in chosen]


def index_of(
    table: ServingTable, rows: Iterable[Row], column: str, limit: int | None = None
) -> list[object]:
    """What `index_values` means, over plain rows."""
    index = table.index(column)
    values = sorted({row[column] for row in rows}, reverse=index.descending)  # type: ignore[type-var]
    return values[:limit] if limit is not None else values


class RowsReader:
    """The questions' reference store: the rows of a serving table (`table`, and each of
    `tables`), in lists."""

    def __init__(
        self,
        rows: Iterable[Row] = (),
        table: ServingTable = DAILY,
        *,
        tables: Mapping[ServingTable, Iterable[Row]] | None = None,
    ) -> None:
        self._tables: dict[str, list[Row]] = {table.name: list(rows)}
        for other, held in (tables or {}).items():
            self._tables[other.name] = list(held)

    def rows_of(self, table: ServingTable) -> list[Row]:
        return self._tables.get(table.name, [])

    def read_slice(
        self,
        table: ServingTable,
        partition: tuple[object, ...],
        start: tuple[object, ...] = (),
        end: tuple[object, ...] = (),
        *,
        columns: tuple[str, ...] | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[dict[str, object]]:
        return slice_rows(
            table,
            self.rows_of(table),
            partition,
            start,
            end,
            columns=columns,
            descending=descending,
            limit=limit,
        )

    def index_values(
        self, table: ServingTable, column: str, limit: int | None = None
    ) -> list[object]:
        return index_of(table, self.rows_of(table), column, limit)

    def count(self, table: ServingTable) -> int:
        return len(self.rows_of(table))
