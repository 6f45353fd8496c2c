"""One contract for every serving store: the answers of finops_core.queries over the store equal
its answers over the same rows in a list (`queries.RowsReader`) and, for Q3, Q4, Q5 and the
anomalies, answers computed by hand from those rows; the store's own slices and index values
equal the reference `queries.slice_rows` / `queries.index_of`, for every served mart."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from adapters.memory.serving import InMemoryServingStore
from adapters.sqlite.serving import SqliteServingStore
from finops_core import queries
from finops_core.anomaly import COST_ANOMALIES, METHODS
from finops_core.marts import DAILY_USAGE, GENAI_TOKENS, REVENUE, TICKETS, Mart
from finops_core.serving import (
    ANOMALIES_BY_DAY,
    DAILY_USAGE_BY_ORG,
    GENAI_TOKENS_BY_ORG,
    REVENUE_BY_ORG,
    SERVING_TABLES,
    TICKETS_BY_ORG,
    ServingTable,
    served_rows,
)
from tests.test_serving_cassandra import CassandraNode, cassandra_node, open_cassandra_store  # noqa: F401

DAILY = DAILY_USAGE_BY_ORG
COLUMNS = DAILY_USAGE.table.column_names
FIRST_DAY = dt.date(2025, 7, 1)
DAYS = 20
ORGS = ("org_alpha01", "org_beta002", "org_gamma03", "org_delta04")
# Upper/lower case and non-ASCII names: every store must order them as Python does (code points).
SERVICES = ("Zeta", "compute", "genai", "storage", "ß-archive", "network")


def gold_row(**values: object) -> dict[str, object]:
    """A row of the daily mart: every column of its declaration, in its order."""
    assert set(values) == set(COLUMNS)
    return {name: values[name] for name in COLUMNS}


def build_gold(seed: int = 7, days: int = DAYS) -> list[dict[str, object]]:
    """A seeded gold set: several orgs and services, `days` days, gaps, nulls, flags and ties.

    Costs are sums of tenths (0.1 is not exact in binary), so a store that adds in another order
    or with plain float addition gives different totals. Two services of each org get identical
    cost series, so Q2 has ties that only the service name can break.
    """
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for org in ORGS:
        twins = rng.sample(SERVICES, 2)
        for offset in range(days):
            day = FIRST_DAY + dt.timedelta(days=offset)
            twin_cost = round(rng.uniform(0, 50), 1) + 0.1
            for service in SERVICES:
                if service not in twins and rng.random() < 0.2:
                    continue  # a gap: no usage that day
                requests = 0.0 if rng.random() < 0.15 else float(rng.randint(1, 5000))
                cost = twin_cost if service in twins else round(rng.uniform(0, 80), 1) + 0.1
                rows.append(
                    gold_row(
                        org_id=org,
                        usage_date=day,
                        service=service,
                        daily_cost_usd=cost,
                        requests=requests,
                        cpu_hours=rng.uniform(0, 100),
                        storage_gb_hours=rng.uniform(0, 1e6),
                        genai_tokens=None if rng.random() < 0.5 else rng.randint(0, 10**12),
                        carbon_kg=None if rng.random() < 0.3 else rng.uniform(0, 3),
                        event_count=rng.randint(1, 400),
                        cost_per_request_usd=cost / requests if requests else None,
                        quality_flags=(
                            {}
                            if rng.random() < 0.6
                            else {
                                "cost_negative_clamped": rng.randint(1, 9),
                                "unit_imputed": rng.randint(1, 9),
                            }
                        ),
                    )
                )
    return rows


def mart_row(mart: Mart, **values: object) -> dict[str, object]:
    """A row of `mart`: every column of its declaration, in its order."""
    assert set(values) == set(mart.table.column_names)
    return {name: values[name] for name in mart.table.column_names}


def build_anomalies(seed: int = 19) -> list[dict[str, object]]:
    """Scored rows of the anomaly mart over GOLD's keys: about one in four flagged by 2 or 3
    methods, some by one (not anomalies), some impacts repeated (ties), some scores null."""
    rng = random.Random(seed)
    columns = COST_ANOMALIES.table.column_names
    rows: list[dict[str, object]] = []
    for gold in GOLD:
        if rng.random() < 0.5:
            continue
        flagged = sorted(rng.sample(METHODS, rng.choice((0, 1, 1, 2, 2, 3))))
        expected = round(rng.uniform(0, 50), 2)
        impact = rng.choice((12.5, 3.25, round(rng.uniform(-5, 80), 4)))
        values = {
            **{name: gold[name] for name in ("org_id", "usage_date", "service")},
            "daily_cost_usd": expected + impact,
            "baseline_days": rng.randint(7, 28),
            "expected_cost_usd": expected,
            "impact_usd": impact,
            "z_score": None if rng.random() < 0.2 else rng.uniform(-4, 9),
            "mad_score": None if rng.random() < 0.2 else rng.uniform(-4, 9),
            "p99_usd": expected + rng.uniform(0, 20),
            "methods_flagged": len(flagged),
            "flagged_methods": flagged,
            "is_anomaly": len(flagged) >= COST_ANOMALIES.policy.min_methods,
        }
        rows.append({name: values[name] for name in columns})
    return rows


# The tickets span 50 days to TICKETS_LATEST (ORGS[0]'s last day, not the other orgs'); ORGS[3]
# has no tickets. Severities include the mart's default, and many days have no ticket at all.
TICKETS_LATEST = FIRST_DAY + dt.timedelta(days=24)
TICKET_SPAN = 50
SEVERITIES = ("critical", "high", "low", "medium", "unknown")


def build_tickets(seed: int = 11) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for position, org in enumerate(ORGS[:3]):
        last = TICKETS_LATEST - dt.timedelta(days=4 * position)
        for back in range(TICKET_SPAN):
            if back and rng.random() < 0.35:
                continue  # a day without tickets (each org's last day has some)
            for severity in sorted(rng.sample(SEVERITIES, rng.randint(1, len(SEVERITIES)))):
                tickets = rng.randint(1, 9)
                breached = rng.randint(0, tickets)
                answered = rng.randint(0, tickets)
                rows.append(
                    mart_row(
                        TICKETS,
                        org_id=org,
                        ticket_date=last - dt.timedelta(days=back),
                        severity=severity,
                        tickets=tickets,
                        open_tickets=rng.randint(0, tickets),
                        sla_breached=breached,
                        sla_breach_rate=breached / tickets,
                        avg_csat=rng.uniform(1, 5) if answered else None,
                        csat_responses=answered,
                    )
                )
    return rows


# Revenue of orgs the daily mart lacks (org_epsilon5) and not of ORGS[1]: every org's revenue
# lists the revenue table's own orgs.
REVENUE_ORGS = (ORGS[0], ORGS[2], ORGS[3], "org_epsilon5")
MONTHS = tuple(dt.date(2025, month, 1) for month in range(1, 9))
RATES = {"USD": 0.97, "EUR": 1.0843, "BRL": 0.1821}


def build_revenue(seed: int = 13) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for org in REVENUE_ORGS:
        for month in MONTHS:
            if rng.random() < 0.2:
                continue  # no invoice that month
            currency = rng.choice(sorted(RATES))
            rate = RATES[currency] if rng.random() < 0.7 else 1.0
            fx = 1.0 if currency == "USD" else rate
            subtotal = round(rng.uniform(-200, 9000), 2)  # negative: a credit note
            credits = round(rng.uniform(0, 300), 2)
            taxes = None if rng.random() < 0.15 else round(rng.uniform(0, 900), 2)
            rows.append(
                mart_row(
                    REVENUE,
                    org_id=org,
                    month=month,
                    invoice_id=f"inv_{org}_{month:%Y%m}",
                    currency=currency,
                    exchange_rate_to_usd=rate,
                    fx_applied=fx,
                    subtotal_usd=subtotal * fx,
                    credits_usd=credits * fx,
                    taxes_usd=None if taxes is None else taxes * fx,
                    net_revenue_usd=None if taxes is None else (subtotal - credits + taxes) * fx,
                    usd_rate_forced=currency == "USD" and rate != 1.0,
                    credit_note=subtotal < 0,
                    invoice_count=1,
                )
            )
    return rows


def build_genai(seed: int = 17) -> list[dict[str, object]]:
    """GenAI days of ORGS[0..2] over the daily mart's days, with gaps and days of 0 tokens."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for org in ORGS[:3]:
        for offset in range(DAYS):
            if rng.random() < 0.25:
                continue
            tokens = 0 if rng.random() < 0.1 else rng.randint(1, 10**9)
            cost = round(rng.uniform(0, 40), 1) + 0.1
            rows.append(
                mart_row(
                    GENAI_TOKENS,
                    org_id=org,
                    usage_date=FIRST_DAY + dt.timedelta(days=offset),
                    total_tokens=tokens,
                    genai_cost_usd=cost,
                    event_count=rng.randint(1, 300),
                    cost_per_1k_tokens_usd=cost / tokens * 1000.0 if tokens else None,
                )
            )
    return rows


GOLD = build_gold()
TICKET_ROWS = build_tickets()
REVENUE_ROWS = build_revenue()
GENAI_ROWS = build_genai()
ANOMALY_ROWS = build_anomalies()
# Every served mart's rows, by serving table: what `loaded_store` holds.
SERVED: Mapping[ServingTable, list[dict[str, object]]] = {
    DAILY: GOLD,
    REVENUE_BY_ORG: REVENUE_ROWS,
    TICKETS_BY_ORG: TICKET_ROWS,
    GENAI_TOKENS_BY_ORG: GENAI_ROWS,
    ANOMALIES_BY_DAY: list(served_rows(ANOMALIES_BY_DAY, ANOMALY_ROWS)),
}
# Each served table's mart rows, as gold holds them (the anomalies table serves some of them).
MART_ROWS: Mapping[ServingTable, list[dict[str, object]]] = {
    **SERVED,
    ANOMALIES_BY_DAY: ANOMALY_ROWS,
}
REFERENCE = queries.RowsReader(GOLD, tables=SERVED)
LATEST = FIRST_DAY + dt.timedelta(days=DAYS - 1)  # the last day build_gold writes
# Q2 cases: (days, as_of, limit); as_of None means "the latest date loaded".
Q2_CASES = [
    (14, None, 5),
    (1, None, 3),
    (30, None, 100),
    (7, FIRST_DAY + dt.timedelta(days=9), 6),
    (14, FIRST_DAY + dt.timedelta(days=3), 2),
    (3, FIRST_DAY - dt.timedelta(days=1), 5),  # before any data
    (5, LATEST + dt.timedelta(days=10), 5),  # after any data
]


def key_of(row: dict[str, object]) -> tuple[object, ...]:
    return DAILY_USAGE.table.key_of(row)


def assert_same_rows(got: Sequence[dict[str, object]], want: Sequence[dict[str, object]]) -> None:
    """Equal rows in the same order, with the same columns and value types (1 == 1.0 in Python,
    so equality alone would let a store return an int for a float)."""
    assert got == want
    assert [[(k, type(v)) for k, v in row.items()] for row in got] == [
        [(k, type(v)) for k, v in row.items()] for row in want
    ]


def _store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if kind == "memory":
        yield InMemoryServingStore()
    elif kind == "sqlite":
        sqlite = SqliteServingStore(tmp_path / "serving" / "finops.sqlite")
        yield sqlite
        sqlite.close()
    else:
        node: CassandraNode = request.getfixturevalue("cassandra_node")
        cassandra = open_cassandra_store(node, keyspace=node.new_keyspace("contract"))
        yield cassandra
        cassandra.close()


STORE_KINDS = ["memory", "sqlite", pytest.param("cassandra", marks=pytest.mark.cassandra)]


@pytest.fixture(scope="module", params=STORE_KINDS)
def loaded_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """A store of each kind holding GOLD (loaded once per module; tests only read it)."""
    stores = _store(request.param, request, tmp_path_factory.mktemp(request.param))
    store = next(stores)
    assert store.kind == request.param
    for table, rows in SERVED.items():
        assert store.upsert(table, rows) == len(rows)
    yield store
    next(stores, None)


@pytest.fixture(params=STORE_KINDS)
def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from _store(request.param, request, tmp_path)


def test_the_gold_set_has_the_shapes_the_contract_needs() -> None:
    assert all(tuple(row) == COLUMNS for row in GOLD)
    assert len({row["org_id"] for row in GOLD}) == len(ORGS)
    assert len({row["usage_date"] for row in GOLD}) == DAYS
    assert max(str(row["usage_date"]) for row in GOLD) == LATEST.isoformat()
    assert any(row["carbon_kg"] is None for row in GOLD) and any(
        row["genai_tokens"] is None for row in GOLD
    )
    zero = [row for row in GOLD if row["requests"] == 0]
    assert zero and all(row["cost_per_request_usd"] is None for row in zero)
    assert any(row["quality_flags"] for row in GOLD) and any(
        not row["quality_flags"] for row in GOLD
    )
    ties = [
        answer
        for org, (days, as_of, limit) in itertools.product(ORGS, Q2_CASES)
        for answer in [queries.top_services(REFERENCE, org, days, as_of, limit)]
        if len({c.total_cost_usd for c in answer}) < len(answer)
    ]
    assert len(ties) >= len(ORGS)  # every org has a tie in some Q2 answer


def test_q1_gives_the_reference_rows_in_date_then_service_order(loaded_store: Any) -> None:
    ranges = [
        (FIRST_DAY, LATEST),
        (FIRST_DAY + dt.timedelta(days=4), FIRST_DAY + dt.timedelta(days=11)),
        (LATEST, LATEST),
        (LATEST + dt.timedelta(days=1), LATEST + dt.timedelta(days=5)),
        (FIRST_DAY + dt.timedelta(days=5), FIRST_DAY + dt.timedelta(days=2)),  # start after end
    ]
    compared = 0
    for org in (*ORGS, "org_unknown"):
        for start, end in ranges:
            for service in (None, "compute", "ß-archive", "no-such-service"):
                expected = queries.daily_usage(REFERENCE, org, start, end, service)
                assert_same_rows(
                    queries.daily_usage(loaded_store, org, start, end, service), expected
                )
                compared += len(expected)
    assert compared > len(GOLD)  # the comparisons covered real rows, not only empty answers


def test_q2_ranks_services_like_the_reference_with_and_without_as_of(loaded_store: Any) -> None:
    for org in (*ORGS, "org_unknown"):
        for days, as_of, limit in Q2_CASES:
            expected = queries.top_services(REFERENCE, org, days, as_of, limit)
            answer = queries.top_services(loaded_store, org, days=days, as_of=as_of, limit=limit)
            assert [c.service for c in answer] == [c.service for c in expected]
            for got, want in zip(answer, expected, strict=True):
                assert got.total_cost_usd == pytest.approx(want.total_cost_usd, rel=1e-9, abs=0)
            assert answer == expected


def test_q2_breaks_ties_by_service_name(loaded_store: Any) -> None:
    for org in ORGS:
        answer = queries.top_services(
            loaded_store, org, days=DAYS, as_of=LATEST, limit=len(SERVICES)
        )
        keys = [(-c.total_cost_usd, c.service) for c in answer]
        assert keys == sorted(keys)
        assert len({c.total_cost_usd for c in answer}) < len(answer)  # the twins tie


def test_the_day_detail_gives_every_service_of_the_org_day_by_service(loaded_store: Any) -> None:
    for org in ORGS:
        for offset in range(-1, DAYS + 1):
            day = FIRST_DAY + dt.timedelta(days=offset)
            assert_same_rows(
                queries.org_day(loaded_store, org, day), queries.org_day(REFERENCE, org, day)
            )
    assert queries.org_day(loaded_store, "org_unknown", LATEST) == []


def test_latest_usage_date_and_row_count_match_the_reference(loaded_store: Any) -> None:
    assert queries.latest_usage_date(loaded_store) == queries.latest_usage_date(REFERENCE) == LATEST
    for org in ORGS:
        assert queries.latest_usage_date(loaded_store, org) == queries.latest_usage_date(
            REFERENCE, org
        )
    assert queries.latest_usage_date(loaded_store, "org_unknown") is None
    assert queries.row_count(loaded_store) == loaded_store.count(DAILY) == len(GOLD)


# ---- Q3, Q4, Q5: against answers computed by hand from the rows --------------------------------


def hand_tickets(org: str, as_of: dt.date | None, days: int) -> list[dict[str, object]]:
    """Q3 by hand: the org's rows of the window, totalled per day."""
    rows: Sequence[Mapping[str, Any]] = TICKET_ROWS
    end = as_of or max(row["ticket_date"] for row in rows)
    start = end - dt.timedelta(days=days - 1)
    per_day: dict[dt.date, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["org_id"] == org and start <= row["ticket_date"] <= end:
            per_day[row["ticket_date"]].append(row)
    answer: list[dict[str, object]] = []
    for day, held in sorted(per_day.items()):
        tickets = sum(r["tickets"] for r in held)
        breached = sum(r["sla_breached"] for r in held)
        answer.append(
            {
                "ticket_date": day,
                "critical_tickets": sum(r["tickets"] for r in held if r["severity"] == "critical"),
                "tickets": tickets,
                "sla_breached": breached,
                "sla_breach_rate": breached / tickets,
            }
        )
    return answer


def hand_revenue(org: str | None) -> list[dict[str, object]]:
    """Q4 by hand: the org's (or every org's) rows by org then month, the answer's columns."""
    rows: Sequence[Mapping[str, Any]] = REVENUE_ROWS
    chosen = sorted(
        (row for row in rows if org is None or row["org_id"] == org),
        key=lambda row: (row["org_id"], row["month"]),
    )
    return [{name: row[name] for name in queries.REVENUE_COLUMNS} for row in chosen]


def hand_genai(org: str, start: dt.date | None, end: dt.date | None) -> list[dict[str, object]]:
    """Q5 by hand: the org's rows of start..end (open ends) by day, the answer's columns."""
    rows: Sequence[Mapping[str, Any]] = GENAI_ROWS
    chosen = sorted(
        (
            row
            for row in rows
            if row["org_id"] == org
            and (start is None or row["usage_date"] >= start)
            and (end is None or row["usage_date"] <= end)
        ),
        key=lambda row: row["usage_date"],
    )
    return [{name: row[name] for name in queries.GENAI_COLUMNS} for row in chosen]


def hand_anomalies(
    start: dt.date | None, end: dt.date | None, org: str | None, limit: int | None
) -> list[dict[str, object]]:
    """The anomalies question by hand: the mart's rows flagged by 2 methods or more, of the
    range (open ends) and org (or every org), largest impact first, ties by day, org, service."""
    rows: Sequence[Mapping[str, Any]] = ANOMALY_ROWS
    chosen = sorted(
        (
            row
            for row in rows
            if row["methods_flagged"] >= 2
            and (org is None or row["org_id"] == org)
            and (start is None or row["usage_date"] >= start)
            and (end is None or row["usage_date"] <= end)
        ),
        key=lambda row: (-row["impact_usd"], row["usage_date"], row["org_id"], row["service"]),
    )
    return [{name: row[name] for name in queries.ANOMALY_COLUMNS} for row in chosen][:limit]


# Q3 cases: (as_of, days); as_of None means "the latest ticket date loaded, of any org".
Q3_CASES = [
    (None, 30),
    (None, 1),
    (None, 365),
    (TICKETS_LATEST - dt.timedelta(days=8), 30),  # ORGS[2]'s own last day
    (TICKETS_LATEST - dt.timedelta(days=20), 7),
    (TICKETS_LATEST - dt.timedelta(days=TICKET_SPAN + 10), 5),  # before any ticket
    (TICKETS_LATEST + dt.timedelta(days=40), 30),  # after any ticket
]
ALL_ORGS = (*ORGS, "org_epsilon5", "org_unknown")


def test_the_new_mart_sets_have_the_shapes_the_contract_needs() -> None:
    def last_ticket(org: str) -> str:
        return max(str(row["ticket_date"]) for row in TICKET_ROWS if row["org_id"] == org)

    assert last_ticket(ORGS[0]) == TICKETS_LATEST.isoformat() > last_ticket(ORGS[2])
    assert {row["severity"] for row in TICKET_ROWS} == set(SEVERITIES)
    window = hand_tickets(ORGS[0], None, 30)
    assert len(window) < 30  # days without tickets
    assert any(d["critical_tickets"] == 0 for d in window) and any(
        d["critical_tickets"] for d in window
    )
    assert any(isinstance(rate := d["sla_breach_rate"], float) and 0 < rate < 1 for d in window)
    assert {row["org_id"] for row in REVENUE_ROWS} == set(REVENUE_ORGS)
    assert any(row["credit_note"] for row in REVENUE_ROWS)
    assert any(row["usd_rate_forced"] for row in REVENUE_ROWS)
    assert any(row["net_revenue_usd"] is None for row in REVENUE_ROWS)
    assert {row["currency"] for row in REVENUE_ROWS} == set(RATES)
    assert any(row["total_tokens"] == 0 for row in GENAI_ROWS)
    assert all(
        (row["cost_per_1k_tokens_usd"] is None) == (row["total_tokens"] == 0) for row in GENAI_ROWS
    )


def test_the_anomaly_set_has_the_shapes_the_contract_needs() -> None:
    served = SERVED[ANOMALIES_BY_DAY]
    assert 0 < len(served) < len(ANOMALY_ROWS)  # the rows flagged by one method are not served
    assert all(row["is_anomaly"] for row in served)
    assert {row["methods_flagged"] for row in served} == {2, 3}
    assert {row["methods_flagged"] for row in ANOMALY_ROWS} == {0, 1, 2, 3}
    impacts = [row["impact_usd"] for row in served]
    assert len(set(impacts)) < len(impacts)  # ties, broken by day, org and service
    assert any(row["z_score"] is None for row in served)
    days = {row["usage_date"] for row in served}
    assert any(sum(row["usage_date"] == day for row in served) > 2 for day in days)


def test_the_anomalies_question_gives_the_flagged_rows_largest_impact_first(
    loaded_store: Any,
) -> None:
    day_3, day_12 = FIRST_DAY + dt.timedelta(days=3), FIRST_DAY + dt.timedelta(days=12)
    ranges = [(None, None), (day_3, day_12), (day_3, None), (None, day_3), (LATEST, LATEST)]
    ranges += [(day_12, day_3), (LATEST + dt.timedelta(days=1), None)]
    compared = 0
    for org in (None, *ALL_ORGS):
        for (start, end), limit in itertools.product(ranges, (None, 1, 7)):
            expected = hand_anomalies(start, end, org, limit)
            assert_same_rows(queries.anomalies(loaded_store, start, end, org, limit), expected)
            assert_same_rows(queries.anomalies(REFERENCE, start, end, org, limit), expected)
            compared += len(expected)
    assert compared > len(SERVED[ANOMALIES_BY_DAY])
    everything = queries.anomalies(loaded_store)
    assert len(everything) == len(SERVED[ANOMALIES_BY_DAY])
    assert all(isinstance(row["flagged_methods"], list) for row in everything)


def test_the_anomalies_table_slices_and_indexes_like_the_reference(loaded_store: Any) -> None:
    """One partition per day, clustered by org then service; the days index descending."""
    rows = SERVED[ANOMALIES_BY_DAY]
    compared = 0
    for offset in range(-1, DAYS + 1):
        day = FIRST_DAY + dt.timedelta(days=offset)
        for start, end in [((), ()), ((ORGS[1],), (ORGS[2],)), ((ORGS[0], "genai"), ())]:
            for descending, limit in itertools.product((False, True), (None, 2)):
                options: dict[str, Any] = {"descending": descending, "limit": limit}
                expected = queries.slice_rows(ANOMALIES_BY_DAY, rows, (day,), start, end, **options)
                got = loaded_store.read_slice(ANOMALIES_BY_DAY, (day,), start, end, **options)
                assert_same_rows(got, expected)
                compared += len(expected)
    assert compared > len(rows)
    for limit in (None, 1):
        expected_days = queries.index_of(ANOMALIES_BY_DAY, rows, "usage_date", limit)
        assert loaded_store.index_values(ANOMALIES_BY_DAY, "usage_date", limit) == expected_days
    assert loaded_store.index_values(ANOMALIES_BY_DAY, "usage_date", 1) == [
        max(row["usage_date"] for row in rows)  # type: ignore[type-var]
    ]
    assert loaded_store.count(ANOMALIES_BY_DAY) == len(rows)


def test_q3_tickets_per_day_equal_a_hand_count_with_and_without_as_of(loaded_store: Any) -> None:
    compared = 0
    for org in ALL_ORGS:
        for as_of, days in Q3_CASES:
            expected = hand_tickets(org, as_of, days)
            assert_same_rows(queries.tickets(loaded_store, org, as_of, days), expected)
            assert_same_rows(queries.tickets(REFERENCE, org, as_of, days), expected)
            compared += len(expected)
    assert compared > 100


def test_q3_defaults_to_the_latest_ticket_date_of_every_org(loaded_store: Any) -> None:
    assert queries.latest_ticket_date(loaded_store) == TICKETS_LATEST
    own_last = TICKETS_LATEST - dt.timedelta(days=8)  # ORGS[2]'s last ticket day
    assert queries.tickets(loaded_store, ORGS[2]) == queries.tickets(
        loaded_store, ORGS[2], TICKETS_LATEST, 30
    )
    assert queries.tickets(loaded_store, ORGS[2], days=5) == []  # its tickets end before
    assert queries.tickets(loaded_store, ORGS[2], own_last, 5) != []


def test_q3_omits_the_days_without_tickets(loaded_store: Any) -> None:
    for org in ORGS[:3]:
        answer = queries.tickets(loaded_store, org, TICKETS_LATEST, TICKET_SPAN)
        days = [row["ticket_date"] for row in answer]
        first = TICKETS_LATEST - dt.timedelta(days=TICKET_SPAN - 1)
        held = {
            day
            for row in TICKET_ROWS
            if row["org_id"] == org
            and isinstance(day := row["ticket_date"], dt.date)
            and day >= first
        }
        assert days == sorted(held)
        assert 0 < len(days) < TICKET_SPAN
    assert queries.tickets(loaded_store, ORGS[3]) == []  # an org with no ticket at all


def test_q4_gives_one_orgs_months_and_every_orgs_by_org_then_month(loaded_store: Any) -> None:
    for org in ALL_ORGS:
        expected = hand_revenue(org)
        assert_same_rows(queries.revenue(loaded_store, org), expected)
        assert_same_rows(queries.revenue(REFERENCE, org), expected)
    everything = queries.revenue(loaded_store)
    assert_same_rows(everything, hand_revenue(None))
    assert len(everything) == len(REVENUE_ROWS)
    assert queries.revenue(loaded_store, ORGS[1]) == []  # an org without invoices


def test_q5_gives_the_orgs_genai_days_of_the_range(loaded_store: Any) -> None:
    day_3, day_12 = FIRST_DAY + dt.timedelta(days=3), FIRST_DAY + dt.timedelta(days=12)
    ranges = [
        (None, None),
        (day_3, day_12),
        (day_3, None),
        (None, day_3),
        (LATEST, LATEST),
        (day_12, day_3),  # start after end
        (LATEST + dt.timedelta(days=1), None),
    ]
    compared = 0
    for org in ALL_ORGS:
        for start, end in ranges:
            expected = hand_genai(org, start, end)
            assert_same_rows(queries.genai(loaded_store, org, start, end), expected)
            assert_same_rows(queries.genai(REFERENCE, org, start, end), expected)
            compared += len(expected)
    assert compared > len(GENAI_ROWS)


# ---- the slices themselves -----------------------------------------------------------------------

DAY_4, DAY_11 = FIRST_DAY + dt.timedelta(days=4), FIRST_DAY + dt.timedelta(days=11)
# (start, end): whole partition, one-column and two-column clustering prefixes, mixed lengths,
# open ends, an empty range and a range inverted on its second column.
SLICE_RANGES: list[tuple[tuple[object, ...], tuple[object, ...]]] = [
    ((), ()),
    ((DAY_4,), (DAY_11,)),
    ((DAY_4,), ()),
    ((), (DAY_4,)),
    ((LATEST,), (LATEST,)),
    ((DAY_4, "compute"), (DAY_11, "network")),
    ((DAY_4, "ß-archive"), (DAY_11,)),
    ((DAY_4,), (DAY_11, "Zeta")),
    ((DAY_4, "genai"), (DAY_4, "storage")),
    ((DAY_4, "storage"), (DAY_4, "genai")),  # start after end on the service
    ((DAY_11,), (DAY_4,)),  # start after end
    ((LATEST + dt.timedelta(days=1),), ()),
]
SLICE_SHAPES: list[tuple[tuple[str, ...] | None, bool, int | None]] = [
    (None, False, None),
    (None, True, None),
    (None, True, 3),
    (None, False, 1),
    (None, True, 0),
    (("service", "daily_cost_usd"), False, None),
    (("usage_date",), True, 1),
    (("quality_flags", "carbon_kg", "genai_tokens", "cost_per_request_usd"), True, 7),
    (("service", "org_id", "usage_date"), False, 1000),
]


def test_read_slice_equals_the_reference_slice_of_the_same_rows(loaded_store: Any) -> None:
    compared = 0
    for org in (*ORGS, "org_unknown"):
        for (start, end), (columns, descending, limit) in itertools.product(
            SLICE_RANGES, SLICE_SHAPES
        ):
            options: dict[str, Any] = {"columns": columns, "descending": descending, "limit": limit}
            expected = queries.slice_rows(DAILY, GOLD, (org,), start, end, **options)
            got = loaded_store.read_slice(DAILY, (org,), start, end, **options)
            assert_same_rows(got, expected)
            if columns is not None:
                assert all(tuple(row) == columns for row in got)
            compared += len(expected)
    assert compared > 5 * len(GOLD)


NEW_TABLE_RANGES: dict[str, list[tuple[tuple[object, ...], tuple[object, ...]]]] = {
    REVENUE_BY_ORG.name: [((), ()), ((MONTHS[2],), (MONTHS[5],)), ((MONTHS[6],), ())],
    TICKETS_BY_ORG.name: [
        ((), ()),
        ((TICKETS_LATEST - dt.timedelta(days=29),), (TICKETS_LATEST,)),
        ((TICKETS_LATEST - dt.timedelta(days=9), "high"), (TICKETS_LATEST, "low")),
        ((TICKETS_LATEST,), (TICKETS_LATEST - dt.timedelta(days=1),)),  # start after end
    ],
    GENAI_TOKENS_BY_ORG.name: [((), ()), ((DAY_4,), (DAY_11,)), ((), (DAY_4,))],
}


@pytest.mark.parametrize(
    "table", [REVENUE_BY_ORG, TICKETS_BY_ORG, GENAI_TOKENS_BY_ORG], ids=lambda t: t.name
)
def test_read_slice_of_each_new_table_equals_the_reference_slice(
    loaded_store: Any, table: ServingTable
) -> None:
    """Every column back with its type (booleans, dates, nulls, floats bit for bit)."""
    rows = SERVED[table]
    compared = 0
    for org in ALL_ORGS:
        for (start, end), descending, limit in itertools.product(
            NEW_TABLE_RANGES[table.name], (False, True), (None, 2)
        ):
            options: dict[str, Any] = {"descending": descending, "limit": limit}
            expected = queries.slice_rows(table, rows, (org,), start, end, **options)
            assert_same_rows(
                loaded_store.read_slice(table, (org,), start, end, **options), expected
            )
            compared += len(expected)
    assert compared > len(rows)
    for index in table.indexes:
        for limit in (None, 1):
            expected_values = queries.index_of(table, rows, index.column, limit)
            assert loaded_store.index_values(table, index.column, limit) == expected_values
    assert loaded_store.count(table) == len(rows)


def test_a_descending_limited_slice_is_the_end_of_the_partition(loaded_store: Any) -> None:
    org = ORGS[2]
    everything = loaded_store.read_slice(DAILY, (org,))
    last = loaded_store.read_slice(DAILY, (org,), descending=True, limit=4)
    assert len(everything) > 4
    assert last == everything[::-1][:4]
    assert [key_of(row) for row in everything] == sorted(key_of(row) for row in everything)


def test_index_values_equal_the_reference_index_of_the_same_rows(loaded_store: Any) -> None:
    for column in ("usage_date", "org_id"):
        for limit in (None, 1, 3, 1000):
            expected = queries.index_of(DAILY, GOLD, column, limit)
            assert loaded_store.index_values(DAILY, column, limit) == expected
            assert [type(v) for v in loaded_store.index_values(DAILY, column, limit)] == [
                type(v) for v in expected
            ]
    assert loaded_store.index_values(DAILY, "usage_date", 1) == [LATEST]
    assert loaded_store.index_values(DAILY, "org_id") == sorted(ORGS)


# ---- writes --------------------------------------------------------------------------------------


def test_an_empty_store_answers_nothing(empty_store: Any) -> None:
    assert queries.row_count(empty_store) == 0
    assert queries.latest_usage_date(empty_store) is None
    assert queries.top_services(empty_store, ORGS[0]) == []
    assert queries.daily_usage(empty_store, ORGS[0], FIRST_DAY, LATEST) == []
    assert empty_store.read_slice(DAILY, (ORGS[0],), descending=True, limit=1) == []
    assert empty_store.index_values(DAILY, "usage_date") == []
    assert empty_store.index_values(DAILY, "org_id", 5) == []
    assert queries.latest_ticket_date(empty_store) is None
    assert queries.tickets(empty_store, ORGS[0]) == []
    assert queries.tickets(empty_store, ORGS[0], TICKETS_LATEST) == []
    assert queries.revenue(empty_store) == [] and queries.revenue(empty_store, ORGS[0]) == []
    assert queries.genai(empty_store, ORGS[0]) == []
    assert (
        queries.anomalies(empty_store) == []
        and queries.anomalies(empty_store, org_id=ORGS[0]) == []
    )
    assert all(empty_store.count(table) == 0 for table in SERVING_TABLES)


def test_upserting_the_same_rows_twice_keeps_one_row_per_key(empty_store: Any) -> None:
    assert empty_store.upsert(DAILY, GOLD) == len(GOLD)
    assert empty_store.upsert(DAILY, iter(GOLD)) == len(GOLD)
    assert queries.row_count(empty_store) == len(GOLD)
    for org in ORGS:
        assert_same_rows(
            queries.daily_usage(empty_store, org, FIRST_DAY, LATEST),
            queries.daily_usage(REFERENCE, org, FIRST_DAY, LATEST),
        )
    assert empty_store.index_values(DAILY, "org_id") == sorted(ORGS)


def test_upserting_a_changed_row_replaces_it(empty_store: Any) -> None:
    empty_store.upsert(DAILY, GOLD)
    original = next(row for row in GOLD if row["carbon_kg"] is not None and row["quality_flags"])
    changed = {
        **original,
        "daily_cost_usd": original["daily_cost_usd"] + 1000.25,  # type: ignore[operator]
        "carbon_kg": None,
        "genai_tokens": 42,
        "quality_flags": {},
        "requests": 0.0,
        "cost_per_request_usd": None,
    }
    assert empty_store.upsert(DAILY, [changed]) == 1
    assert queries.row_count(empty_store) == len(GOLD)
    updated = queries.RowsReader(
        [changed if key_of(row) == key_of(original) else row for row in GOLD]
    )
    org, day = str(original["org_id"]), original["usage_date"]
    assert isinstance(day, dt.date)
    assert_same_rows(queries.org_day(empty_store, org, day), queries.org_day(updated, org, day))
    assert changed in queries.org_day(empty_store, org, day)
    assert original not in queries.org_day(empty_store, org, day)
    assert queries.top_services(empty_store, org, days=DAYS) == queries.top_services(
        updated, org, days=DAYS
    )


def test_embedded_stores_give_no_partition_sink(tmp_path: Path) -> None:
    """Only a store that other processes can reach ships a sink; the rest stream rows here."""
    assert InMemoryServingStore().partition_sink(DAILY) is None
    with SqliteServingStore(tmp_path / "finops.sqlite") as store:
        assert store.partition_sink(DAILY) is None


def _without(rows: Sequence[dict[str, object]], day: dt.date, org: str) -> list[dict[str, object]]:
    """The rows a new gold keeps when `day` left the landing and `org` has no usage any more."""
    return [row for row in rows if row["usage_date"] != day and row["org_id"] != org]


def _assert_holds_exactly(store: Any, rows: Sequence[dict[str, object]]) -> None:
    reference = queries.RowsReader(list(rows))
    assert queries.row_count(store) == len(rows)
    for column in ("usage_date", "org_id"):
        assert store.index_values(DAILY, column) == reference.index_values(DAILY, column)
    for org in ORGS:
        assert_same_rows(store.read_slice(DAILY, (org,)), reference.read_slice(DAILY, (org,)))
    assert queries.latest_usage_date(store) == queries.latest_usage_date(reference)


def test_a_load_replaces_the_table_and_keeps_no_row_the_new_gold_lacks(empty_store: Any) -> None:
    assert empty_store.upsert(DAILY, GOLD) == len(GOLD)
    kept = _without(GOLD, LATEST, ORGS[1])
    assert 0 < len(kept) < len(GOLD)
    assert empty_store.replace(DAILY, iter(kept)) == len(kept)
    _assert_holds_exactly(empty_store, kept)
    assert queries.latest_usage_date(empty_store) == LATEST - dt.timedelta(days=1)
    assert ORGS[1] not in empty_store.index_values(DAILY, "org_id")

    assert empty_store.replace(DAILY, GOLD) == len(GOLD)  # the rows come back with a later load
    _assert_holds_exactly(empty_store, GOLD)


def test_pruning_after_a_sink_load_deletes_the_rows_and_index_values_the_load_lacks(
    empty_store: Any,
) -> None:
    empty_store.upsert(DAILY, GOLD)
    kept = _without(GOLD, FIRST_DAY, ORGS[2])
    assert empty_store.prune(DAILY, iter(kept)) == len(GOLD) - len(kept)
    _assert_holds_exactly(empty_store, kept)
    assert empty_store.prune(DAILY, kept) == 0  # nothing left to prune
    _assert_holds_exactly(empty_store, kept)


@pytest.mark.parametrize(
    "table", [REVENUE_BY_ORG, TICKETS_BY_ORG, GENAI_TOKENS_BY_ORG], ids=lambda t: t.name
)
def test_a_load_of_each_new_table_holds_exactly_the_rows_loaded_and_a_rerun_changes_nothing(
    empty_store: Any, table: ServingTable
) -> None:
    rows = SERVED[table]
    first = rows[0]["org_id"]
    kept = [row for row in rows if row["org_id"] != first][::2]  # an org gone, rows gone
    assert 0 < len(kept) < len(rows)
    for load in (rows, kept, kept):  # the third load is a rerun of the second
        assert empty_store.replace(table, iter(load)) == len(load)
        reference = queries.RowsReader(load, table)
        assert empty_store.count(table) == len(load)
        for index in table.indexes:
            assert empty_store.index_values(table, index.column) == reference.index_values(
                table, index.column
            )
        for org in ALL_ORGS:
            assert_same_rows(
                empty_store.read_slice(table, (org,)), reference.read_slice(table, (org,))
            )
    assert empty_store.count(DAILY) == 0  # a load of one table leaves the others
    empty_store.upsert(table, rows)
    assert empty_store.prune(table, kept) == len(rows) - len(kept)
    assert empty_store.count(table) == len(kept)
