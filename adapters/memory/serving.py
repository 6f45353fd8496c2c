"""An in-memory serving store: the queries of `finops_core.queries` over a dict of gold rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from finops_core import queries
from finops_core.aggregate import GoldRow
from finops_core.ports import ServiceCost


class InMemoryServingStore:
    """Keeps rows by gold key, so an upsert of the same key replaces (tests assert on `rows`)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, dt.date, str], GoldRow] = {}

    def upsert(self, rows: Iterable[GoldRow]) -> int:
        count = 0
        for row in rows:
            self.rows[row.key] = row
            count += 1
        return count

    def daily_usage(
        self, org_id: str, start: dt.date, end: dt.date, service: str | None = None
    ) -> list[GoldRow]:
        return queries.daily_usage(self.rows.values(), org_id, start, end, service)

    def top_services(
        self,
        org_id: str,
        days: int = queries.DEFAULT_DAYS,
        as_of: dt.date | None = None,
        limit: int = queries.DEFAULT_LIMIT,
    ) -> list[ServiceCost]:
        # queries.top_services already defaults as_of to the latest date among these rows.
        return queries.top_services(self.rows.values(), org_id, days, as_of, limit)

    def org_day(self, org_id: str, usage_date: dt.date) -> list[GoldRow]:
        return queries.org_day(self.rows.values(), org_id, usage_date)

    def latest_usage_date(self, org_id: str | None = None) -> dt.date | None:
        return queries.latest_usage_date(self.rows.values(), org_id)

    def row_count(self) -> int:
        return len(self.rows)
