"""The core's declarations of tables, marts, serving tables and runs, and their interpreters."""

from __future__ import annotations

import datetime as dt

import pytest

from finops_core import aggregate, queries, runs
from finops_core.anomaly import COST_ANOMALIES
from finops_core.contracts import Column, LogicalType
from finops_core.marts import (
    DAILY_USAGE,
    GENAI_TOKENS,
    MARTS,
    REVENUE,
    TICKETS,
    Count,
    Equals,
    FlagCounts,
    GroupColumn,
    Mart,
    Ratio,
    Sum,
)
from finops_core.serving import (
    ANOMALIES_BY_DAY,
    DAILY_USAGE_BY_ORG,
    GENAI_TOKENS_BY_ORG,
    REVENUE_BY_ORG,
    SERVING_TABLES,
    TICKETS_BY_ORG,
    ServingTable,
    ValueIndex,
    serving_table,
)
from finops_core.tables import LAKE_TABLES, SILVER_EVENTS, Layer, Table

DAY = dt.date(2025, 7, 1)


def test_every_declared_table_names_distinct_columns_and_a_key_among_them() -> None:
    for table in (*LAKE_TABLES, *(m.table for m in MARTS)):
        names = table.column_names
        assert len(set(names)) == len(names), table.id
        assert set(table.primary_key) <= set(names), table.id
        assert table.partition_by is None or table.partition_by in names, table.id
        assert table.partition_by not in {c.name for c in table.data_columns}
    assert len({t.id for t in LAKE_TABLES}) == len(LAKE_TABLES)


def test_a_table_that_keys_on_an_unknown_column_is_refused() -> None:
    with pytest.raises(ValueError, match="'nope' is not one of its columns"):
        Table("t", Layer.SILVER, (Column("a", LogicalType.STRING),), primary_key=("nope",))
    with pytest.raises(ValueError, match="repeats a column"):
        Table("t", Layer.SILVER, (Column("a", LogicalType.STRING),) * 2)


def test_the_daily_mart_table_is_its_grain_then_its_measures_with_their_types() -> None:
    table = DAILY_USAGE.table
    assert table.id == "gold/org_daily_usage_by_service"
    assert table.column_names == (
        "org_id",
        "usage_date",
        "service",
        "daily_cost_usd",
        "requests",
        "cpu_hours",
        "storage_gb_hours",
        "genai_tokens",
        "carbon_kg",
        "event_count",
        "cost_per_request_usd",
        "quality_flags",
    )
    assert table.primary_key == ("org_id", "usage_date", "service")
    assert table.partition_by == "usage_date"
    types = {c.name: (c.type, c.nullable) for c in table.columns}
    assert types["usage_date"] == (LogicalType.DATE, False)
    assert types["requests"] == (LogicalType.FLOAT, False)
    assert types["genai_tokens"] == (LogicalType.INTEGER, True)
    assert types["carbon_kg"] == (LogicalType.FLOAT, True)
    assert types["event_count"] == (LogicalType.INTEGER, False)
    assert types["cost_per_request_usd"] == (LogicalType.FLOAT, True)
    assert types["quality_flags"] == (LogicalType.COUNT_MAP, False)


def test_a_ratio_declared_before_its_inputs_is_refused() -> None:
    with pytest.raises(ValueError, match="needs"):
        Mart(
            "m",
            SILVER_EVENTS,
            (GroupColumn("org_id", "org_id"),),
            (Ratio("r", "cost", "n"), Sum("cost", "cost_usd_increment"), Count("n")),
        )


def test_a_serving_table_must_be_keyed_by_its_source_primary_key() -> None:
    with pytest.raises(ValueError, match="must be the primary key"):
        ServingTable("x", DAILY_USAGE.table, ("org_id",), ("usage_date",))
    with pytest.raises(KeyError):
        ServingTable(
            "x",
            DAILY_USAGE.table,
            ("org_id",),
            ("usage_date", "service"),
            (ValueIndex("i", "no_such_column"),),
        )
    assert all(set(t.primary_key) == set(t.source.primary_key) for t in SERVING_TABLES)


def test_each_served_mart_is_keyed_by_its_primary_key_one_partition_per_org_or_per_day() -> None:
    served = {t.name: t.source for t in SERVING_TABLES}
    assert served == {
        "daily_usage_by_org": DAILY_USAGE.table,
        "revenue_by_org": REVENUE.table,
        "tickets_by_org": TICKETS.table,
        "genai_tokens_by_org": GENAI_TOKENS.table,
        "cost_anomalies_by_day": COST_ANOMALIES.table,
    }
    assert {t.name: (t.partition_key, t.clustering_key) for t in SERVING_TABLES} == {
        "daily_usage_by_org": (("org_id",), ("usage_date", "service")),
        "revenue_by_org": (("org_id",), ("month",)),
        "tickets_by_org": (("org_id",), ("ticket_date", "severity")),
        "genai_tokens_by_org": (("org_id",), ("usage_date",)),
        "cost_anomalies_by_day": (("usage_date",), ("org_id", "service")),
    }
    for table in SERVING_TABLES:  # partition + clustering key = the mart's key
        order = table.primary_key == table.source.primary_key
        assert order or table is ANOMALIES_BY_DAY  # a day's anomalies are one partition
        assert sorted(table.primary_key) == sorted(table.source.primary_key)
        assert table.columns == table.source.column_names
        assert serving_table(table.name) is table
    assert [t.name for t in SERVING_TABLES if t.where is not None] == ["cost_anomalies_by_day"]
    assert ANOMALIES_BY_DAY.where == Equals("is_anomaly", True)


def test_a_serving_table_refuses_a_key_that_is_not_its_marts_or_a_where_on_an_unknown_column() -> (
    None
):
    with pytest.raises(ValueError, match="must be the primary key"):
        ServingTable("x", COST_ANOMALIES.table, ("usage_date",), ("org_id",))
    with pytest.raises(KeyError, match="no column 'anomalous'"):
        ServingTable(
            "x",
            COST_ANOMALIES.table,
            ("usage_date",),
            ("org_id", "service"),
            where=Equals("anomalous", True),
        )


def test_the_new_serving_tables_index_their_orgs_and_the_latest_ticket_date() -> None:
    def indexes(table: ServingTable) -> list[tuple[str, str, bool]]:
        return [(i.name, i.column, i.descending) for i in table.indexes]

    assert indexes(REVENUE_BY_ORG) == [("revenue_orgs", "org_id", False)]
    assert indexes(TICKETS_BY_ORG) == [
        ("ticket_dates", "ticket_date", True),
        ("ticket_orgs", "org_id", False),
    ]
    assert indexes(GENAI_TOKENS_BY_ORG) == [("genai_orgs", "org_id", False)]
    # Stores keep an index under its name (a Cassandra table): names are distinct everywhere.
    names = [n for t in SERVING_TABLES for n in (t.name, *(i.name for i in t.indexes))]
    assert len(set(names)) == len(names)


# ---- the monoid on hand-computed rows -----------------------------------------------------------

TOY = Mart(
    "toy",
    SILVER_EVENTS,
    (GroupColumn("org_id", "org_id"), GroupColumn("service", "service", default="unknown")),
    (
        Sum("cost", "cost_usd_increment"),
        Sum("requests", "value", where=Equals("metric", "requests")),
        Sum("tokens", "genai_tokens", type=LogicalType.INTEGER, empty_is_null=True),
        Count("events"),
        Ratio("cost_per_1k", "cost", "requests", scale=1000.0),
        FlagCounts("flags", "quality_flags", keys=("a", "b")),
    ),
)


def _event(
    org: str,
    service: str | None,
    metric: str,
    value: float | None,
    cost: float,
    tokens: int | None = None,
    flags: tuple[str, ...] = (),
) -> dict[str, object]:
    return {
        "org_id": org,
        "service": service,
        "metric": metric,
        "value": value,
        "cost_usd_increment": cost,
        "genai_tokens": tokens,
        "quality_flags": list(flags),
    }


def test_the_monoid_sums_filters_counts_and_derives_as_declared() -> None:
    rows = [
        _event("o1", "compute", "requests", 100.0, 0.1, flags=("a",)),
        _event("o1", "compute", "requests", 300.0, 0.2, tokens=5, flags=("a", "b")),
        _event("o1", "compute", "cpu_hours", 2.0, 0.3),
        _event("o1", None, "cpu_hours", None, 1.5, flags=("z",)),
    ]
    got = aggregate.aggregate(TOY, rows)
    assert got == [
        {
            "org_id": "o1",
            "service": "compute",
            # 0.1 + 0.2 + 0.3 exactly rounded (plain addition gives 0.6000000000000001)
            "cost": 0.6,
            "requests": 400.0,
            "tokens": 5,
            "events": 3,
            "cost_per_1k": 0.6 / 400.0 * 1000.0,
            "flags": {"a": 2, "b": 1},
        },
        {
            "org_id": "o1",
            "service": "unknown",
            "cost": 1.5,
            "requests": 0.0,
            "tokens": None,
            "events": 1,
            "cost_per_1k": None,
            "flags": {},
        },
    ]


def test_exact_sums_do_not_depend_on_the_order_or_the_split() -> None:
    costs = [0.1] * 10 + [1e16, -1e16, 0.3]
    rows = [_event("o", "s", "requests", 1.0, c) for c in costs]
    whole = aggregate.aggregate(TOY, rows)
    halves = aggregate.merge_partials(
        aggregate.partial_aggregate(TOY, rows[:5]), aggregate.partial_aggregate(TOY, rows[5:][::-1])
    )
    assert aggregate.mart_rows(TOY, halves) == whole
    assert whole[0]["cost"] == 1.3  # the exactly rounded sum: 10 x 0.1 + 0.3
    assert whole[0]["events"] == len(costs)


# ---- slices ------------------------------------------------------------------------------------


def _gold(org: str, day: int, service: str, cost: float) -> dict[str, object]:
    return {
        "org_id": org,
        "usage_date": DAY + dt.timedelta(days=day),
        "service": service,
        "daily_cost_usd": cost,
        "requests": 1.0,
        "cpu_hours": 0.0,
        "storage_gb_hours": 0.0,
        "genai_tokens": None,
        "carbon_kg": None,
        "event_count": 1,
        "cost_per_request_usd": cost,
        "quality_flags": {},
    }


ROWS = [
    _gold("a", 0, "x", 1.0),
    _gold("a", 0, "y", 2.0),
    _gold("a", 1, "x", 4.0),
    _gold("a", 3, "y", 8.0),
    _gold("b", 2, "x", 16.0),
]


def test_a_slice_is_one_partition_within_a_clustering_prefix_range() -> None:
    reader = queries.RowsReader(ROWS)
    table = DAILY_USAGE_BY_ORG
    day = lambda n: DAY + dt.timedelta(days=n)  # noqa: E731
    costs = lambda rows: [r["daily_cost_usd"] for r in rows]  # noqa: E731
    assert costs(reader.read_slice(table, ("a",))) == [1.0, 2.0, 4.0, 8.0]
    assert costs(reader.read_slice(table, ("a",), (day(1),), (day(3),))) == [4.0, 8.0]
    assert costs(reader.read_slice(table, ("a",), (day(0), "y"), (day(1),))) == [2.0, 4.0]
    assert costs(reader.read_slice(table, ("a",), descending=True, limit=2)) == [8.0, 4.0]
    assert reader.read_slice(table, ("b",), columns=("service",)) == [{"service": "x"}]
    assert reader.read_slice(table, ("c",)) == []
    assert reader.index_values(table, "usage_date") == [day(3), day(2), day(1), day(0)]
    assert reader.index_values(table, "org_id", limit=1) == ["a"]
    assert reader.count(table) == len(ROWS)


def test_the_questions_read_only_slices_and_agree_with_a_hand_count() -> None:
    reader = queries.RowsReader(ROWS)
    day = lambda n: DAY + dt.timedelta(days=n)  # noqa: E731
    assert [r["daily_cost_usd"] for r in queries.daily_usage(reader, "a", day(0), day(1), "x")] == [
        1.0,
        4.0,
    ]
    assert queries.daily_usage(reader, "a", day(2), day(1)) == []
    # The latest date loaded is day 3 (org a); b's window of 2 days to it holds its day-2 row.
    assert queries.top_services(reader, "b", days=2) == [queries.ServiceCost("x", 16.0)]
    assert queries.top_services(reader, "a", days=4) == [
        queries.ServiceCost("y", 10.0),
        queries.ServiceCost("x", 5.0),
    ]
    assert queries.latest_usage_date(reader) == day(3)
    assert queries.latest_usage_date(reader, "b") == day(2)
    assert queries.latest_usage_date(reader, "c") is None
    assert [r["service"] for r in queries.org_day(reader, "a", day(0))] == ["x", "y"]
    assert queries.row_count(reader) == 5


# ---- run records -------------------------------------------------------------------------------


def test_reconciliations_are_declared_checks_over_named_counts() -> None:
    counts = {
        "bronze_events.landing_lines": 10,
        "bronze_events.bronze_rows": 8,
        "bronze_events.malformed": 2,
        "silver.bronze_rows": 8,
        "silver.silver_rows": 5,
        "silver.quarantined": 2,
        "silver.duplicates": 0,
        "silver.silver_cost_usd": 3.004,
        "gold.gold_cost_usd": 3.0,
        "gold.gold_keys_unique": 1,
    }
    checks = {c.name: c for c in runs.reconcile(counts)}
    assert checks["landing lines = bronze rows + malformed + blank lines"].passed
    assert not checks["bronze = silver + quarantine + duplicates"].passed
    assert checks["bronze = silver + quarantine + duplicates"].right == 7
    assert checks["silver cost = gold cost (to the cent)"].passed  # within 0.005
    assert checks["gold keys unique"].passed
    assert "serving rows = gold rows" not in checks  # its counts are absent
    assert len(checks) == 4


def test_a_run_record_round_trips_through_json_and_old_records_still_read() -> None:
    started = dt.datetime(2025, 9, 1, 12, tzinfo=dt.timezone.utc)
    stage = runs.StageResult("gold", {"gold_rows": 3, "gold_cost_usd": 1.5}, 0.25)
    record = runs.RunRecord(
        "r1",
        "batch",
        "memory",
        started,
        (stage,),
        tuple(runs.reconcile(runs.merged_counts([stage]))),
    )
    again = runs.RunRecord.from_json(record.to_json())
    assert again == record
    assert again.counts == {"gold.gold_rows": 3, "gold.gold_cost_usd": 1.5}

    old_batch = {
        "run_id": "r0",
        "kind": "batch",
        "engine": "spark",
        "started_at": started.isoformat(),
        "stages": [
            {
                "stage": "silver",
                "seconds": 1.0,
                "skipped": False,
                "note": "",
                "counts": {"silver_rows": 7},
            }
        ],
        "reconciliations": [{"name": "n", "left": 1, "right": 2, "passed": False, "detail": "d"}],
    }
    read = runs.RunRecord.from_json(old_batch)
    assert read.counts == {"silver.silver_rows": 7} and read.finished
    assert not read.passed and read.reconciliations[0].detail == "d"
    old_stream = {
        "run_id": "s0",
        "kind": "stream",
        "started_at": started.isoformat(),
        "mode": "once",
        "batches": [{"batch_id": 0}],
        "totals": {"landing_lines": 4},
    }
    stream = runs.RunRecord.from_json(old_stream)
    assert stream.counts == {"stream.landing_lines": 4}
    assert stream.details["mode"] == "once" and stream.details["batches"] == [{"batch_id": 0}]
    with pytest.raises(ValueError, match="upgrade"):
        runs.RunRecord.from_json({**old_batch, "version": runs.RECORD_VERSION + 1})


def test_late_stream_rows_are_kept_so_they_do_not_count_against_the_streamed_lines() -> None:
    counts = {
        "stream.landing_lines": 10,
        "stream.bronze_rows": 7,  # 2 of them late: kept in bronze, counted apart
        "stream.malformed": 1,
        "stream.duplicates": 2,
        "stream.late": 2,
    }
    (check,) = runs.reconcile(counts)
    assert check.passed and check.left == 10 and check.right == 10
