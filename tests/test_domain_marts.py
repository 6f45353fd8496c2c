"""The revenue, support and GenAI marts as the issue defines them, on hand-made silver rows
(every expected figure below is worked out by hand from the definitions), and the row
expressions they are built from."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from finops_core import aggregate
from finops_core.contracts import LogicalType
from finops_core.expressions import (
    All,
    Arithmetic,
    Below,
    Coalesce,
    Col,
    Equals,
    If,
    IsNull,
    Lit,
    Not,
    columns_read,
    holds,
    plus,
    times,
    value_of,
)
from finops_core.marts import GENAI_TOKENS, MARTS, REVENUE, TICKETS, Derive, Mart, Min

JUNE, JULY = dt.date(2025, 6, 1), dt.date(2025, 7, 1)


def _invoice(**values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "invoice_id": "inv_1",
        "org_id": "org_a",
        "month": JUNE,
        "subtotal": 100.0,
        "credits": 0.0,
        "taxes": 21.0,
        "currency": "USD",
        "exchange_rate_to_usd": 1.0,
        "quality_flags": [],
        "ingest_ts": None,
        "source_file": "billing_monthly.csv",
    }
    row.update(values)
    return row


def _by_key(mart: Mart, rows: list[dict[str, object]]) -> dict[tuple[object, ...], dict]:
    return {mart.table.key_of(row): row for row in aggregate.aggregate(mart, rows)}


# ---- expressions --------------------------------------------------------------------------------


def test_a_value_is_null_when_what_it_is_computed_from_is_null_and_a_predicate_never_is() -> None:
    row = {"a": 2.0, "b": None, "c": "USD"}
    assert value_of(times(Col("a"), Lit(3)), row) == 6.0
    assert value_of(plus(Col("a"), Col("b")), row) is None
    assert value_of(Coalesce(Col("b"), Lit(7.5)), row) == 7.5
    assert value_of(If(Equals("c", "USD"), Lit(1.0), Col("a")), row) == 1.0
    assert value_of(If(Equals("b", "USD"), Lit(1.0), Col("a")), row) == 2.0
    assert holds(Equals("b", 1.0), row) is False
    assert holds(Not(Equals("b", 1.0)), row) is True
    assert holds(Below("b", 0.0), row) is False and holds(Below("a", 2.5), row) is True
    assert holds(All((IsNull("b"), Equals("c", "USD"))), row) is True
    assert holds(All(()), row) is True
    assert columns_read(If(Below("x", 0), Col("y"), Coalesce(Col("z"), Lit(0)))) == {"x", "y", "z"}
    with pytest.raises(ValueError, match="unknown operator"):
        Arithmetic("/", Col("a"), Col("b"))


def test_a_mart_that_reads_a_column_its_source_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="reads unknown"):
        Mart(
            "bad",
            REVENUE.source,
            grain=REVENUE.grain,
            measures=(),
            derive=(Derive("x", LogicalType.FLOAT, Col("nope")),),
        )
    with pytest.raises(ValueError, match="not columns of"):
        Mart("bad", REVENUE.source, grain=REVENUE.grain, measures=(Min("m", "nope"),))


def test_every_mart_reads_only_columns_of_its_source_table() -> None:
    for mart in MARTS:
        assert set(mart.source_columns) <= set(mart.source.column_names), mart.name
        assert mart.table.primary_key == tuple(g.name for g in mart.grain)


# ---- revenue ------------------------------------------------------------------------------------


def test_revenue_forces_usd_rates_to_one_and_converts_other_currencies_by_their_rate() -> None:
    rows = [
        _invoice(exchange_rate_to_usd=0.97684),  # USD with a rate that is not 1
        _invoice(
            invoice_id="inv_2",
            org_id="org_b",
            subtotal=540.0,
            credits=40.0,
            taxes=100.0,
            currency="EUR",
            exchange_rate_to_usd=1.1,
        ),
        _invoice(invoice_id="inv_3", month=JULY, subtotal=-20.0, taxes=0.0),  # a credit note
    ]
    mart = _by_key(REVENUE, rows)
    assert len(mart) == 3
    usd = mart[("org_a", JUNE)]
    assert usd["fx_applied"] == 1.0 and usd["exchange_rate_to_usd"] == 0.97684
    assert usd["usd_rate_forced"] is True and usd["credit_note"] is False
    assert usd["subtotal_usd"] == 100.0 and usd["taxes_usd"] == 21.0
    assert usd["net_revenue_usd"] == 121.0 and usd["credits_usd"] == 0.0
    assert usd["invoice_id"] == "inv_1" and usd["currency"] == "USD"
    eur = mart[("org_b", JUNE)]
    assert eur["fx_applied"] == 1.1 and eur["usd_rate_forced"] is False
    assert eur["subtotal_usd"] == pytest.approx(594.0)
    assert eur["credits_usd"] == pytest.approx(44.0)
    assert eur["taxes_usd"] == pytest.approx(110.0)
    assert eur["net_revenue_usd"] == pytest.approx((540.0 - 40.0 + 100.0) * 1.1)
    note = mart[("org_a", JULY)]
    assert note["credit_note"] is True and note["net_revenue_usd"] == -20.0
    assert [row["invoice_count"] for row in mart.values()] == [1, 1, 1]


def test_a_null_credits_counts_as_no_credit_and_an_invoice_of_no_org_is_left_out() -> None:
    rows = [_invoice(credits=None, subtotal=50.0, taxes=5.0), _invoice(org_id=None)]
    (row,) = aggregate.aggregate(REVENUE, rows)
    assert row["credits_usd"] == 0.0 and row["net_revenue_usd"] == 55.0


# ---- tickets ------------------------------------------------------------------------------------


def _ticket(number: int, **values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "ticket_id": f"tkt_{number}",
        "org_id": "org_a",
        "category": "billing",
        "severity": "critical",
        "created_at": JUNE,
        "resolved_at": dt.date(2025, 6, 3),
        "csat": 4.0,
        "sla_breached": False,
        "quality_flags": [],
        "ingest_ts": None,
        "source_file": "support_tickets.csv",
    }
    row.update(values)
    return row


def test_tickets_count_open_breached_and_average_only_the_csat_given() -> None:
    rows = [
        _ticket(1),
        _ticket(2, resolved_at=None, csat=None, sla_breached=True),
        _ticket(3, csat=2.0, sla_breached=True),
        _ticket(4, severity="low", csat=None),
        _ticket(5, severity=None),
    ]
    mart = _by_key(TICKETS, rows)
    critical = mart[("org_a", JUNE, "critical")]
    assert critical["tickets"] == 3 and critical["open_tickets"] == 1
    assert critical["sla_breached"] == 2 and critical["sla_breach_rate"] == pytest.approx(2 / 3)
    assert critical["avg_csat"] == 3.0 and critical["csat_responses"] == 2
    low = mart[("org_a", JUNE, "low")]
    assert low["avg_csat"] is None and low["csat_responses"] == 0 and low["sla_breach_rate"] == 0
    assert mart[("org_a", JUNE, "unknown")]["tickets"] == 1
    assert sum(row["tickets"] for row in mart.values()) == len(rows)


# ---- GenAI --------------------------------------------------------------------------------------


def _event(number: int, **values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "event_id": f"e{number}",
        "org_id": "org_a",
        "usage_date": JUNE,
        "service": "genai",
        "cost_usd_increment": 0.5,
        "genai_tokens": 1000,
    }
    row.update(values)
    return row


def test_genai_sums_tokens_and_cost_of_genai_events_that_carry_tokens_only() -> None:
    rows = [
        _event(1),
        _event(2, genai_tokens=3000, cost_usd_increment=1.5),
        _event(3, genai_tokens=None, cost_usd_increment=9.0),  # no tokens: not counted
        _event(4, service="compute", genai_tokens=10),  # not GenAI
        _event(5, usage_date=JULY, genai_tokens=0, cost_usd_increment=0.25),
    ]
    mart = _by_key(GENAI_TOKENS, rows)
    assert set(mart) == {("org_a", JUNE), ("org_a", JULY)}
    june = mart[("org_a", JUNE)]
    assert june["total_tokens"] == 4000 and june["genai_cost_usd"] == 2.0
    assert june["event_count"] == 2 and june["cost_per_1k_tokens_usd"] == 0.5
    july = mart[("org_a", JULY)]
    assert july["total_tokens"] == 0 and july["cost_per_1k_tokens_usd"] is None


def test_the_kept_rows_a_gold_stage_counts_are_the_rows_the_where_keeps_with_their_derived_columns() -> (  # noqa: E501
    None
):
    rows = [
        _event(1, genai_tokens=5, cost_usd_increment=0.5),
        _event(2, genai_tokens=None),  # no tokens: not kept
        _event(3, service="compute", genai_tokens=10),  # not GenAI: not kept
        _event(4, usage_date=JULY, genai_tokens=0, cost_usd_increment=0.25),
    ]
    kept, mart_rows = aggregate.aggregate_kept(GENAI_TOKENS, rows)
    assert [row["event_id"] for row in kept] == [rows[0]["event_id"], rows[3]["event_id"]]
    assert all(set(row) >= set(rows[0]) for row in kept)
    assert mart_rows == aggregate.aggregate(GENAI_TOKENS, rows)
    assert [row["total_tokens"] for row in mart_rows] == [5, 0]
    invoices = [_invoice(), _invoice(invoice_id="inv_2", org_id=None)]  # no org: not kept
    (kept_invoice,), (revenue,) = aggregate.aggregate_kept(REVENUE, invoices)
    assert kept_invoice["invoice_id"] == "inv_1"
    assert {d.name for d in REVENUE.derive} <= set(kept_invoice)  # derived once, kept
    assert kept_invoice["fx_applied"] == revenue["fx_applied"]


def test_each_new_mart_gives_the_same_rows_whatever_the_order_or_split_of_its_source() -> None:
    sources = {
        REVENUE: [
            _invoice(
                invoice_id=f"inv_{n}",
                org_id=f"org_{n % 3}",
                month=dt.date(2025, 1 + n % 5, 1),
                subtotal=10.0 * n + 0.1,
            )
            for n in range(15)
        ],  # noqa: E501
        TICKETS: [
            _ticket(n, csat=float(1 + n % 5) if n % 4 else None, sla_breached=n % 3 == 0)
            for n in range(30)
        ],  # noqa: E501
        GENAI_TOKENS: [
            _event(n, genai_tokens=n * 7, cost_usd_increment=0.1 * n) for n in range(30)
        ],  # noqa: E501
    }
    for mart, rows in sources.items():
        whole = aggregate.aggregate(mart, rows)
        shuffled = list(rows)
        random.Random(7).shuffle(shuffled)
        halves = aggregate.merge_partials(
            aggregate.partial_aggregate(mart, shuffled[:11]),
            aggregate.partial_aggregate(mart, shuffled[11:]),
        )
        assert aggregate.mart_rows(mart, halves) == whole, mart.name
