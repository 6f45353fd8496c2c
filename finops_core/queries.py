"""The business questions, defined once over any serving store's slices.

Every store answers through these functions: a store only reads a slice of one partition
(`ServingStore.read_slice`), the values of an index, or a row count; windows, as-of defaults,
filters, exact sums and ranking happen here, so every store gives the same answers. `RowsReader`
is the reference slice reader over plain rows (the in-memory store and the tests use it).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

from finops_core.ports import ServiceCost, SliceReader
from finops_core.serving import DAILY_USAGE_BY_ORG, ServingTable
from finops_core.tables import Row

DEFAULT_DAYS = 14
DEFAULT_LIMIT = 5
DAILY = DAILY_USAGE_BY_ORG


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


def row_count(store: SliceReader) -> int:
    return store.count(DAILY)


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
    """The questions' reference store: the rows of one serving table, in a list."""

    def __init__(self, rows: Iterable[Row] = (), table: ServingTable = DAILY) -> None:
        self._tables: dict[str, list[Row]] = {table.name: list(rows)}

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
