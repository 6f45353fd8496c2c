"""The business questions the serving layer answers, defined once over gold rows.

Every serving store must give these answers; the in-memory store is exactly these functions.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

from finops_core.aggregate import GoldRow
from finops_core.ports import ServiceCost

DEFAULT_DAYS = 14
DEFAULT_LIMIT = 5


def daily_usage(
    rows: Iterable[GoldRow], org_id: str, start: dt.date, end: dt.date, service: str | None = None
) -> list[GoldRow]:
    """Q1: the org's rows with start <= usage_date <= end (one service if given), by date, service."""
    chosen = [
        row
        for row in rows
        if row.org_id == org_id
        and start <= row.usage_date <= end
        and (service is None or row.service == service)
    ]
    return sorted(chosen, key=lambda row: (row.usage_date, row.service))


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
    rows: Iterable[GoldRow],
    org_id: str,
    days: int = DEFAULT_DAYS,
    as_of: dt.date | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[ServiceCost]:
    """Q2: top services by cost over the window ending at as_of (default: latest date loaded)."""
    materialised = list(rows)
    if as_of is None:
        as_of = latest_usage_date(materialised)
        if as_of is None:
            return []
    start, end = window(as_of, days)
    costs: dict[str, list[float]] = {}
    for row in materialised:
        if row.org_id == org_id and start <= row.usage_date <= end:
            costs.setdefault(row.service, []).append(row.daily_cost_usd)
    return rank_services({service: math.fsum(values) for service, values in costs.items()}, limit)


def org_day(rows: Iterable[GoldRow], org_id: str, usage_date: dt.date) -> list[GoldRow]:
    """Q3: every service of one org on one day, by service."""
    return daily_usage(rows, org_id, usage_date, usage_date)


def latest_usage_date(rows: Iterable[GoldRow], org_id: str | None = None) -> dt.date | None:
    dates = [row.usage_date for row in rows if org_id is None or row.org_id == org_id]
    return max(dates) if dates else None
