"""Q3 (tickets), Q4 (revenue), Q5 (GenAI tokens) and the anomalies over the reference reader,
against answers computed by hand, and what each question reads: slices of one partition and index
values only."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from finops_core import queries
from finops_core.anomaly import COST_ANOMALIES
from finops_core.marts import GENAI_TOKENS, REVENUE, TICKETS
from finops_core.serving import (
    ANOMALIES_BY_DAY,
    GENAI_TOKENS_BY_ORG,
    REVENUE_BY_ORG,
    TICKETS_BY_ORG,
    ServedSink,
    ServingTable,
    served_rows,
)

DAY = dt.date(2025, 7, 1)


def day(n: int) -> dt.date:
    return DAY + dt.timedelta(days=n)


def _ticket(org: str, n: int, severity: str, tickets: int, breached: int) -> dict[str, object]:
    return {
        "org_id": org,
        "ticket_date": day(n),
        "severity": severity,
        "tickets": tickets,
        "open_tickets": 0,
        "sla_breached": breached,
        "sla_breach_rate": breached / tickets,
        "avg_csat": None,
        "csat_responses": 0,
    }


def _invoice(org: str, month: int, currency: str, fx: float, net: float) -> dict[str, object]:
    return {
        "org_id": org,
        "month": dt.date(2025, month, 1),
        "invoice_id": f"inv_{org}_{month}",
        "currency": currency,
        "exchange_rate_to_usd": fx,
        "fx_applied": fx,
        "subtotal_usd": net,
        "credits_usd": 0.0,
        "taxes_usd": 0.0,
        "net_revenue_usd": net,
        "usd_rate_forced": False,
        "credit_note": net < 0,
        "invoice_count": 1,
    }


def _genai(org: str, n: int, tokens: int, cost: float) -> dict[str, object]:
    return {
        "org_id": org,
        "usage_date": day(n),
        "total_tokens": tokens,
        "genai_cost_usd": cost,
        "event_count": 1,
        "cost_per_1k_tokens_usd": cost / tokens * 1000.0 if tokens else None,
    }


def _scored(org: str, n: int, service: str, impact: float, flagged: list[str]) -> dict[str, object]:
    return {
        "org_id": org,
        "usage_date": day(n),
        "service": service,
        "daily_cost_usd": 10.0 + impact,
        "baseline_days": 9,
        "expected_cost_usd": 10.0,
        "impact_usd": impact,
        "z_score": 4.0 if "z_score" in flagged else 1.0,
        "mad_score": None,
        "p99_usd": 11.0,
        "methods_flagged": len(flagged),
        "flagged_methods": flagged,
        "is_anomaly": len(flagged) >= 2,
    }


BOTH = ["p99", "z_score"]
SCORED_ROWS = [
    _scored("a", 0, "compute", 5.0, BOTH),
    _scored("b", 0, "compute", 5.0, BOTH),  # the same impact: day, then org, then service
    _scored("a", 0, "storage", 90.0, ["z_score"]),  # flagged by one method: not an anomaly
    _scored("a", 2, "genai", 40.0, ["mad_score", "p99", "z_score"]),
    _scored("b", 1, "storage", 5.0, BOTH),
    _scored("a", 6, "network", 1.5, BOTH),
]


TICKET_ROWS = [
    _ticket("a", 0, "critical", 2, 1),
    _ticket("a", 0, "low", 3, 0),
    _ticket("a", 2, "high", 4, 4),
    _ticket("a", 35, "critical", 1, 1),  # outside a 30-day window ending on day 2
    _ticket("b", 40, "medium", 5, 1),  # the latest ticket date of every org
]
REVENUE_ROWS = [
    _invoice("b", 2, "EUR", 1.1, 110.0),
    _invoice("a", 3, "USD", 1.0, 30.0),
    _invoice("a", 1, "BRL", 0.2, -4.0),
]
GENAI_ROWS = [
    _genai("a", 0, 1000, 0.5),
    _genai("a", 1, 0, 0.25),
    _genai("a", 3, 4000, 1.0),
    _genai("b", 1, 10, 0.1),
]
READER = queries.RowsReader(
    tables={
        TICKETS_BY_ORG: TICKET_ROWS,
        REVENUE_BY_ORG: REVENUE_ROWS,
        GENAI_TOKENS_BY_ORG: GENAI_ROWS,
        ANOMALIES_BY_DAY: list(served_rows(ANOMALIES_BY_DAY, SCORED_ROWS)),
    }
)


def test_the_hand_rows_are_rows_of_their_marts() -> None:
    for rows, mart in ((TICKET_ROWS, TICKETS), (REVENUE_ROWS, REVENUE), (GENAI_ROWS, GENAI_TOKENS)):
        assert all(tuple(row) == mart.table.column_names for row in rows)
    assert all(tuple(row) == COST_ANOMALIES.table.column_names for row in SCORED_ROWS)


def test_the_anomalies_table_serves_only_the_rows_flagged_by_two_methods_or_more() -> None:
    served = READER.rows_of(ANOMALIES_BY_DAY)
    assert served == [row for row in SCORED_ROWS if row["flagged_methods"] != ["z_score"]]
    assert len(served) == 5
    handed: list[list[dict[str, object]]] = []

    def sink(rows: Any) -> int:
        handed.append(list(rows))
        return len(handed[-1])

    assert ServedSink(ANOMALIES_BY_DAY.name, sink)(iter(SCORED_ROWS)) == 5
    assert handed == [served]
    assert list(served_rows(TICKETS_BY_ORG, TICKET_ROWS)) == TICKET_ROWS  # no `where`: all


def _key(row: dict[str, object]) -> tuple[object, ...]:
    return (row["usage_date"], row["org_id"], row["service"], row["impact_usd"])


def test_anomalies_come_largest_impact_first_ties_by_day_org_and_service() -> None:
    answer = queries.anomalies(READER)
    assert [_key(row) for row in answer] == [
        (day(2), "a", "genai", 40.0),
        (day(0), "a", "compute", 5.0),
        (day(0), "b", "compute", 5.0),
        (day(1), "b", "storage", 5.0),
        (day(6), "a", "network", 1.5),
    ]
    assert tuple(answer[0]) == queries.ANOMALY_COLUMNS
    assert answer[0]["flagged_methods"] == ["mad_score", "p99", "z_score"]


def test_anomalies_of_a_range_an_org_and_a_limit() -> None:
    def keys(*args: Any, **kwargs: Any) -> list[tuple[object, ...]]:
        return [_key(row) for row in queries.anomalies(READER, *args, **kwargs)]

    assert keys(day(0), day(1)) == [
        (day(0), "a", "compute", 5.0),
        (day(0), "b", "compute", 5.0),
        (day(1), "b", "storage", 5.0),
    ]
    assert keys(org_id="a") == [
        (day(2), "a", "genai", 40.0),
        (day(0), "a", "compute", 5.0),
        (day(6), "a", "network", 1.5),
    ]
    assert keys(start=day(1), org_id="b") == [(day(1), "b", "storage", 5.0)]
    assert keys(end=day(0), limit=1) == [(day(0), "a", "compute", 5.0)]
    assert keys(day(3), day(5)) == [] and keys(day(2), day(1)) == []
    assert keys(org_id="c") == []


def test_tickets_sum_each_day_over_its_severities_and_omit_days_without_tickets() -> None:
    assert queries.tickets(READER, "a", as_of=day(2)) == [
        {
            "ticket_date": day(0),
            "critical_tickets": 2,
            "tickets": 5,
            "sla_breached": 1,
            "sla_breach_rate": 0.2,
        },
        {
            "ticket_date": day(2),
            "critical_tickets": 0,
            "tickets": 4,
            "sla_breached": 4,
            "sla_breach_rate": 1.0,
        },
    ]  # day 1 has no tickets: no row


def test_tickets_default_to_the_30_days_ending_at_the_latest_ticket_date_of_any_org() -> None:
    assert queries.latest_ticket_date(READER) == day(40)
    # Days 11 .. 40 (org b's last day, not org a's): org a's day 35 only.
    assert queries.tickets(READER, "a") == [
        {
            "ticket_date": day(35),
            "critical_tickets": 1,
            "tickets": 1,
            "sla_breached": 1,
            "sla_breach_rate": 1.0,
        }
    ]
    assert queries.tickets(READER, "a", days=5) == []  # days 36 .. 40, after a's last day
    assert [r["ticket_date"] for r in queries.tickets(READER, "a", day(35), days=36)] == [
        day(0),
        day(2),
        day(35),
    ]
    assert queries.tickets(READER, "c") == []
    assert queries.tickets(queries.RowsReader(), "a") == []  # no ticket loaded: no as-of
    with pytest.raises(ValueError, match="days must be at least 1"):
        queries.tickets(READER, "a", day(2), days=0)


def test_revenue_is_one_orgs_months_or_every_orgs_by_org_then_month() -> None:
    def shown(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
        return [(r["org_id"], r["month"], r["currency"], r["net_revenue_usd"]) for r in rows]

    assert shown(queries.revenue(READER, "a")) == [
        ("a", dt.date(2025, 1, 1), "BRL", -4.0),
        ("a", dt.date(2025, 3, 1), "USD", 30.0),
    ]
    assert shown(queries.revenue(READER)) == [
        ("a", dt.date(2025, 1, 1), "BRL", -4.0),
        ("a", dt.date(2025, 3, 1), "USD", 30.0),
        ("b", dt.date(2025, 2, 1), "EUR", 110.0),
    ]
    assert all(tuple(row) == queries.REVENUE_COLUMNS for row in queries.revenue(READER))
    assert queries.revenue(READER, "c") == []
    assert queries.revenue(queries.RowsReader()) == []


def test_genai_gives_the_days_of_an_inclusive_range_with_open_ends() -> None:
    def days_of(rows: list[dict[str, object]]) -> list[object]:
        return [r["usage_date"] for r in rows]

    assert queries.genai(READER, "a", day(1), day(3)) == [
        {
            "usage_date": day(1),
            "total_tokens": 0,
            "genai_cost_usd": 0.25,
            "cost_per_1k_tokens_usd": None,
        },
        {
            "usage_date": day(3),
            "total_tokens": 4000,
            "genai_cost_usd": 1.0,
            "cost_per_1k_tokens_usd": 0.25,
        },
    ]
    assert days_of(queries.genai(READER, "a")) == [day(0), day(1), day(3)]
    assert days_of(queries.genai(READER, "a", start=day(1))) == [day(1), day(3)]
    assert days_of(queries.genai(READER, "a", end=day(1))) == [day(0), day(1)]
    assert queries.genai(READER, "a", day(3), day(1)) == []
    assert queries.genai(READER, "c") == []


def test_the_answer_columns_are_the_marts_column_names() -> None:
    assert set(queries.TICKETS_COLUMNS) - set(TICKETS.table.column_names) == {"critical_tickets"}
    assert set(queries.ANOMALY_COLUMNS) <= set(COST_ANOMALIES.table.column_names)
    assert set(queries.REVENUE_COLUMNS) <= set(REVENUE.table.column_names)
    assert set(queries.GENAI_COLUMNS) <= set(GENAI_TOKENS.table.column_names)


class CountingReader:
    """A reader that records every read: (kind, table, partition or column)."""

    def __init__(self, inner: queries.RowsReader) -> None:
        self.inner = inner
        self.reads: list[tuple[str, str, object]] = []

    def read_slice(
        self, table: ServingTable, partition: tuple[object, ...], *args: Any, **kwargs: Any
    ) -> list[dict[str, object]]:
        self.reads.append(("slice", table.name, partition))
        return self.inner.read_slice(table, partition, *args, **kwargs)

    def index_values(
        self, table: ServingTable, column: str, limit: int | None = None
    ) -> list[object]:
        self.reads.append(("index", table.name, column))
        return self.inner.index_values(table, column, limit)

    def count(self, table: ServingTable) -> int:
        self.reads.append(("count", table.name, None))
        return self.inner.count(table)


def test_each_question_is_one_single_partition_slice_after_at_most_one_index_read() -> None:
    reader = CountingReader(READER)
    queries.tickets(reader, "a", as_of=day(2))
    queries.tickets(reader, "a")
    queries.revenue(reader, "a")
    queries.genai(reader, "a", day(0), day(3))
    assert reader.reads == [
        ("slice", "tickets_by_org", ("a",)),
        ("index", "tickets_by_org", "ticket_date"),
        ("slice", "tickets_by_org", ("a",)),
        ("slice", "revenue_by_org", ("a",)),
        ("slice", "genai_tokens_by_org", ("a",)),
    ]
    reader.reads.clear()
    # The days' index (latest first), then each day's partition of the range: day 0 is out.
    queries.anomalies(reader, day(1), day(6), "a")
    assert reader.reads == [
        ("index", "cost_anomalies_by_day", "usage_date"),
        ("slice", "cost_anomalies_by_day", (day(6),)),
        ("slice", "cost_anomalies_by_day", (day(2),)),
        ("slice", "cost_anomalies_by_day", (day(1),)),
    ]
    reader.reads.clear()
    queries.revenue(reader)  # every org: the index of orgs, then each org's partition
    assert reader.reads == [
        ("index", "revenue_by_org", "org_id"),
        ("slice", "revenue_by_org", ("a",)),
        ("slice", "revenue_by_org", ("b",)),
    ]
