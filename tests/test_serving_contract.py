"""One contract for every serving store: the answers of finops_core.queries on the same rows."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters.memory.serving import InMemoryServingStore
from adapters.sqlite.serving import SqliteServingStore
from finops_core import queries
from finops_core.aggregate import GoldRow
from tests.test_serving_cassandra import CassandraNode, cassandra_node, open_cassandra_store  # noqa: F401

FIRST_DAY = dt.date(2025, 7, 1)
DAYS = 20
ORGS = ("org_alpha01", "org_beta002", "org_gamma03", "org_delta04")
# Upper/lower case and non-ASCII names: every store must order them as Python does (code points).
SERVICES = ("Zeta", "compute", "genai", "storage", "ß-archive", "network")


def build_gold(seed: int = 7, days: int = DAYS) -> list[GoldRow]:
    """A seeded gold set: several orgs and services, `days` days, gaps, nulls, flags and ties.

    Costs are sums of tenths (0.1 is not exact in binary), so a store that adds in another order
    or with plain float addition gives different totals. Two services of each org get identical
    cost series, so Q2 has ties that only the service name can break.
    """
    rng = random.Random(seed)
    rows: list[GoldRow] = []
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
                    GoldRow(
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


GOLD = build_gold()
LATEST = max(row.usage_date for row in GOLD)
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
    assert store.upsert(GOLD) == len(GOLD)
    yield store
    next(stores, None)


@pytest.fixture(params=STORE_KINDS)
def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from _store(request.param, request, tmp_path)


def test_the_gold_set_has_the_shapes_the_contract_needs() -> None:
    assert len({row.org_id for row in GOLD}) == len(ORGS)
    assert len({row.usage_date for row in GOLD}) == DAYS
    assert any(row.carbon_kg is None for row in GOLD) and any(
        row.genai_tokens is None for row in GOLD
    )
    zero = [row for row in GOLD if row.requests == 0]
    assert zero and all(row.cost_per_request_usd is None for row in zero)
    assert any(row.quality_flags for row in GOLD) and any(not row.quality_flags for row in GOLD)
    ties = [
        answer
        for org, (days, as_of, limit) in itertools.product(ORGS, Q2_CASES)
        for answer in [queries.top_services(GOLD, org, days, as_of, limit)]
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
                expected = queries.daily_usage(GOLD, org, start, end, service)
                assert loaded_store.daily_usage(org, start, end, service) == expected
                compared += len(expected)
    assert compared > len(GOLD)  # the comparisons covered real rows, not only empty answers


def test_q2_ranks_services_like_the_reference_with_and_without_as_of(loaded_store: Any) -> None:
    for org in (*ORGS, "org_unknown"):
        for days, as_of, limit in Q2_CASES:
            expected = queries.top_services(GOLD, org, days, as_of, limit)
            answer = loaded_store.top_services(org, days=days, as_of=as_of, limit=limit)
            assert [c.service for c in answer] == [c.service for c in expected]
            for got, want in zip(answer, expected, strict=True):
                assert got.total_cost_usd == pytest.approx(want.total_cost_usd, rel=1e-9, abs=0)
            assert answer == expected


def test_q2_breaks_ties_by_service_name(loaded_store: Any) -> None:
    for org in ORGS:
        answer = loaded_store.top_services(org, days=DAYS, as_of=LATEST, limit=len(SERVICES))
        keys = [(-c.total_cost_usd, c.service) for c in answer]
        assert keys == sorted(keys)
        assert len({c.total_cost_usd for c in answer}) < len(answer)  # the twins tie


def test_q3_gives_every_service_of_the_org_day_by_service(loaded_store: Any) -> None:
    for org in ORGS:
        for offset in range(-1, DAYS + 1):
            day = FIRST_DAY + dt.timedelta(days=offset)
            assert loaded_store.org_day(org, day) == queries.org_day(GOLD, org, day)
    assert loaded_store.org_day("org_unknown", LATEST) == []


def test_latest_usage_date_and_row_count_match_the_reference(loaded_store: Any) -> None:
    assert loaded_store.latest_usage_date() == queries.latest_usage_date(GOLD) == LATEST
    for org in ORGS:
        assert loaded_store.latest_usage_date(org) == queries.latest_usage_date(GOLD, org)
    assert loaded_store.latest_usage_date("org_unknown") is None
    assert loaded_store.row_count() == len(GOLD)


def test_an_empty_store_answers_nothing(empty_store: Any) -> None:
    assert empty_store.row_count() == 0
    assert empty_store.latest_usage_date() is None
    assert empty_store.top_services(ORGS[0]) == []
    assert empty_store.daily_usage(ORGS[0], FIRST_DAY, LATEST) == []


def test_upserting_the_same_rows_twice_keeps_one_row_per_key(empty_store: Any) -> None:
    assert empty_store.upsert(GOLD) == len(GOLD)
    assert empty_store.upsert(iter(GOLD)) == len(GOLD)
    assert empty_store.row_count() == len(GOLD)
    for org in ORGS:
        assert empty_store.daily_usage(org, FIRST_DAY, LATEST) == queries.daily_usage(
            GOLD, org, FIRST_DAY, LATEST
        )


def test_upserting_a_changed_row_replaces_it(empty_store: Any) -> None:
    empty_store.upsert(GOLD)
    original = next(row for row in GOLD if row.carbon_kg is not None and row.quality_flags)
    changed = attrs.evolve(
        original,
        daily_cost_usd=original.daily_cost_usd + 1000.25,
        carbon_kg=None,
        genai_tokens=42,
        quality_flags={},
        requests=0.0,
        cost_per_request_usd=None,
    )
    assert empty_store.upsert([changed]) == 1
    assert empty_store.row_count() == len(GOLD)
    updated = [changed if row.key == original.key else row for row in GOLD]
    assert empty_store.org_day(original.org_id, original.usage_date) == queries.org_day(
        updated, original.org_id, original.usage_date
    )
    assert changed in empty_store.org_day(original.org_id, original.usage_date)
    assert empty_store.top_services(original.org_id, days=DAYS) == queries.top_services(
        updated, original.org_id, days=DAYS
    )
