"""One contract for every serving store: the answers of finops_core.queries over the store equal
its answers over the same rows in a list (`queries.RowsReader`), and the store's own slices and
index values equal the reference `queries.slice_rows` / `queries.index_of`."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from adapters.memory.serving import InMemoryServingStore
from adapters.sqlite.serving import SqliteServingStore
from finops_core import queries
from finops_core.marts import DAILY_USAGE
from finops_core.serving import DAILY_USAGE_BY_ORG
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


GOLD = build_gold()
REFERENCE = queries.RowsReader(GOLD)
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
    assert store.upsert(DAILY, GOLD) == len(GOLD)
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


def test_q3_gives_every_service_of_the_org_day_by_service(loaded_store: Any) -> None:
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
