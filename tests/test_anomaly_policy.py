"""The cost-anomaly mart as the issue defines it: its policy, its table, and the reference
interpretation (`finops_core.anomaly`) on hand-made daily rows, each expected figure worked out
from the definitions by another path (the `statistics` module); then Spark's compilation of the
same declaration (`adapters.spark.anomaly`) against the reference, row by row."""

from __future__ import annotations

import datetime as dt
import math
import random
import statistics
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finops_core.anomaly import (
    ANOMALY_POLICY,
    COST_ANOMALIES,
    METHODS,
    AnomalyMart,
    AnomalyPolicy,
    anomaly_rows,
    median,
    percentile,
    sample_stdev,
    score,
)
from finops_core.contracts import LogicalType
from finops_core.marts import DAILY_USAGE

DAY0 = dt.date(2025, 6, 1)
ORGS = ("org_a", "org_b")
SERVICES = ("compute", "storage")
SCORES = ("expected_cost_usd", "impact_usd", "z_score", "mad_score", "p99_usd")


def _daily(offset: int, cost: float, org: str = "org_a", service: str = "compute") -> dict:
    """A gold row of the daily mart, `offset` days after DAY0 (only what the scoring reads)."""
    return {
        "org_id": org,
        "usage_date": DAY0 + dt.timedelta(days=offset),
        "service": service,
        "daily_cost_usd": cost,
    }


def _series(costs: Sequence[float], days: Sequence[int] | None = None, **key: str) -> list[dict]:
    days = range(len(costs)) if days is None else days
    return [_daily(day, cost, **key) for day, cost in zip(days, costs, strict=True)]


def _on(rows: list[dict[str, object]], offset: int, **key: str) -> dict[str, object]:
    (row,) = (
        row
        for row in rows
        if row["usage_date"] == DAY0 + dt.timedelta(days=offset)
        and row["org_id"] == key.get("org", "org_a")
        and row["service"] == key.get("service", "compute")
    )
    return row


def _unscored(row: dict[str, object]) -> bool:
    return (
        all(row[name] is None for name in SCORES)
        and row["methods_flagged"] == 0
        and row["flagged_methods"] == []
        and row["is_anomaly"] is False
    )


# ---- the policy and the table -------------------------------------------------------------------


def test_the_default_policy_is_the_issues_window_history_and_thresholds() -> None:
    issue = AnomalyPolicy(
        window_days=28,
        min_history_days=7,
        z_threshold=3.0,
        mad_threshold=3.5,
        mad_scale=0.6745,
        percentile=99.0,
        min_methods=2,
    )
    assert issue == ANOMALY_POLICY
    assert COST_ANOMALIES.policy is ANOMALY_POLICY
    assert COST_ANOMALIES.source is DAILY_USAGE


@pytest.mark.parametrize(
    "bad",
    [
        {"window_days": 0},
        {"window_days": -28},
        {"window_days": 2.5},
        {"window_days": True},
        {"min_history_days": 0},
        {"min_history_days": 29},  # more history than the window holds
        {"percentile": 0.0},
        {"percentile": 100.0},
        {"percentile": -1.0},
        {"percentile": math.nan},
        {"min_methods": 0},
        {"min_methods": 4},
        {"z_threshold": math.inf},
        {"mad_scale": 0.0},
    ],
)
def test_a_policy_out_of_range_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        AnomalyPolicy(**bad)


def test_the_anomaly_table_is_the_daily_grain_its_cost_then_the_scores() -> None:
    table = COST_ANOMALIES.table
    assert table.id == "gold/cost_anomaly_mart"
    assert table.primary_key == ("org_id", "usage_date", "service")
    assert table.partition_by == "usage_date"
    types = {c.name: (c.type, c.nullable) for c in table.columns}
    F, N, B, L = (  # N: a whole number
        LogicalType.FLOAT,
        LogicalType.INTEGER,
        LogicalType.BOOLEAN,
        LogicalType.STRING_SET,
    )
    assert types == {
        "org_id": (LogicalType.STRING, False),
        "usage_date": (LogicalType.DATE, False),
        "service": (LogicalType.STRING, False),
        "daily_cost_usd": (F, False),
        "baseline_days": (N, False),
        "expected_cost_usd": (F, True),
        "impact_usd": (F, True),
        "z_score": (F, True),
        "mad_score": (F, True),
        "p99_usd": (F, True),
        "methods_flagged": (N, False),
        "flagged_methods": (L, False),
        "is_anomaly": (B, False),
    }
    assert table.column_names[:4] == ("org_id", "usage_date", "service", "daily_cost_usd")


def test_an_anomaly_mart_whose_series_and_date_are_not_the_source_grain_is_refused() -> None:
    with pytest.raises(ValueError, match="must be the grain"):
        AnomalyMart("m", DAILY_USAGE, "daily_cost_usd", ("org_id",), "usage_date")
    with pytest.raises(ValueError, match="required number"):
        AnomalyMart("m", DAILY_USAGE, "carbon_kg", ("org_id", "service"), "usage_date")


# ---- the statistics -----------------------------------------------------------------------------


def test_the_percentile_of_a_small_list_is_the_hand_computed_interpolation() -> None:
    values = [1.0, 2.0, 4.0, 7.0, 11.0]
    # position 0.99 * 4 = 3.96: between 7 and 11, 96% of the way.
    assert math.isclose(percentile(values, 99.0), 7.0 + 0.96 * (11.0 - 7.0), rel_tol=1e-12)
    assert math.isclose(percentile(values, 99.0), 10.84, rel_tol=1e-12)
    by_quantiles = statistics.quantiles(values, n=100, method="inclusive")[98]
    assert math.isclose(percentile(values, 99.0), by_quantiles, rel_tol=1e-12)
    assert percentile(values, 50.0) == median(values) == 4.0
    assert percentile(values, 0.0) == 1.0 and percentile(values, 100.0) == 11.0
    assert percentile([3.5], 99.0) == 3.5


_FLOATS = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(st.lists(_FLOATS, min_size=2, max_size=40))
def test_the_percentile_median_and_deviation_agree_with_the_statistics_module(
    values: list[float],
) -> None:
    ordered = sorted(values)
    expected = statistics.quantiles(ordered, n=100, method="inclusive")[98]
    assert math.isclose(percentile(ordered, 99.0), expected, rel_tol=1e-9, abs_tol=1e-6)
    assert median(ordered) == statistics.median(ordered)
    stdev = sample_stdev(values)
    assert stdev is not None
    assert math.isclose(stdev, statistics.stdev(values), rel_tol=1e-9, abs_tol=1e-6)


def test_a_deviation_needs_two_values_and_equal_values_deviate_by_exactly_zero() -> None:
    assert sample_stdev([4.2]) is None
    assert sample_stdev([0.1] * 10) == 0.0
    assert sample_stdev([0.1] * 3) == 0.0


# ---- the scoring --------------------------------------------------------------------------------

_DAYS = st.sets(st.integers(0, 90), min_size=1, max_size=40).map(sorted)


@given(st.one_of(st.sampled_from((0.1, 0.0, 1e-3, 12.5)), _FLOATS), _DAYS)
def test_a_constant_series_flags_nothing(cost: float, days: list[int]) -> None:
    rows = anomaly_rows(COST_ANOMALIES, _series([cost] * len(days), days))
    assert len(rows) == len(days)
    for row in rows:
        assert row["methods_flagged"] == 0 and row["flagged_methods"] == []
        assert row["is_anomaly"] is False
        assert row["z_score"] is None and row["mad_score"] is None  # no deviation at all
        if row["baseline_days"] >= 7:  # type: ignore[operator]
            assert row["expected_cost_usd"] == row["p99_usd"] == cost
            assert row["impact_usd"] == 0.0
        else:
            assert _unscored(row)


@given(
    st.lists(st.integers(-100, 100), min_size=7, max_size=28, unique=True),
    st.floats(min_value=5.0, max_value=5000.0),
)
def test_one_spike_on_a_noisy_flat_baseline_is_flagged_by_all_three_methods(
    cents: list[int], level: float
) -> None:
    baseline = [level + c / 100 for c in cents]  # within a dollar of the level, all distinct
    spike = level + 100.0
    rows = anomaly_rows(COST_ANOMALIES, _series([*baseline, spike]))
    row = _on(rows, len(baseline))
    assert row["baseline_days"] == len(baseline)
    assert row["flagged_methods"] == sorted(METHODS) == ["mad_score", "p99", "z_score"]
    assert row["methods_flagged"] == 3 and row["is_anomaly"] is True
    middle = statistics.median(baseline)
    mad = statistics.median([abs(v - middle) for v in baseline])
    z = (spike - statistics.fmean(baseline)) / statistics.stdev(baseline)
    assert row["expected_cost_usd"] == middle
    assert row["impact_usd"] == spike - middle
    assert math.isclose(row["z_score"], z, rel_tol=1e-9)  # type: ignore[arg-type]
    assert math.isclose(row["mad_score"], 0.6745 * (spike - middle) / mad, rel_tol=1e-12)  # type: ignore[arg-type]
    assert row["p99_usd"] < spike  # type: ignore[operator]


def test_fewer_than_seven_history_days_score_nothing_however_large_the_spike() -> None:
    normal = [10.0, 11.0, 9.0, 10.5, 9.5, 10.2, 9.8]
    rows = anomaly_rows(
        COST_ANOMALIES,
        [
            *_series([*normal[:6], 1000.0], org="org_a"),  # the spike has 6 days of history
            *_series([*normal, 1000.0], org="org_b"),  # the spike has 7
        ],
    )
    for offset in range(7):
        row = _on(rows, offset, org="org_a")
        assert row["baseline_days"] == offset
        assert _unscored(row)
    seventh = _on(rows, 7, org="org_b")
    assert seventh["baseline_days"] == 7
    assert seventh["expected_cost_usd"] == statistics.median(normal) == 10.0
    assert seventh["flagged_methods"] == ["mad_score", "p99", "z_score"]
    assert seventh["is_anomaly"] is True


def test_missing_days_are_absent_not_zero() -> None:
    costs = [100.0, 102.0, 98.0, 101.0, 99.0, 103.0, 97.0, 100.5, 99.5, 101.5]
    rows = anomaly_rows(
        COST_ANOMALIES,
        [
            # Days 0..9, then day 30: its window [2, 29] holds days 2..9, not 20 zero days.
            *_series([*costs, 100.0], [*range(10), 30], org="org_a"),
            # Days 0..9, then day 38: its window [10, 37] holds none of them.
            *_series([*costs, 100.0], [*range(10), 38], org="org_b"),
        ],
    )
    after_gap = _on(rows, 30, org="org_a")
    assert after_gap["baseline_days"] == 8
    # With the 20 missing days as zeros the median would be 0.
    assert after_gap["expected_cost_usd"] == statistics.median(costs[2:]) == 100.0
    assert after_gap["is_anomaly"] is False
    assert after_gap["flagged_methods"] == []
    past_window = _on(rows, 38, org="org_b")
    assert past_window["baseline_days"] == 0
    assert _unscored(past_window)


def test_the_window_and_history_are_read_from_the_policy() -> None:
    policy = AnomalyPolicy(window_days=5, min_history_days=3, min_methods=3)
    short = AnomalyMart(
        "short", DAILY_USAGE, "daily_cost_usd", ("org_id", "service"), "usage_date", policy
    )
    costs = [10.0, 11.0, 9.0, 10.5, 9.5, 10.2, 9.8, 10.1, 50.0]
    rows = anomaly_rows(short, _series(costs))
    assert [row["baseline_days"] for row in rows] == [0, 1, 2, 3, 4, 5, 5, 5, 5]
    assert _unscored(rows[2]) and not _unscored(rows[3])
    spike = rows[-1]
    assert spike["expected_cost_usd"] == statistics.median(costs[3:8])
    assert spike["methods_flagged"] == 3 and spike["is_anomaly"] is True
    scored = score(policy, 50.0, costs[3:8])
    assert scored == {name: spike[name] for name in scored}


def test_a_repeated_gold_key_is_refused() -> None:
    with pytest.raises(ValueError, match="repeats the key"):
        anomaly_rows(COST_ANOMALIES, _series([1.0, 2.0], [3, 3]))


_GOLD = st.dictionaries(
    st.tuples(st.sampled_from(ORGS), st.sampled_from(SERVICES), st.integers(0, 60)),
    st.one_of(st.sampled_from((0.0, 10.0, 10.0)), st.floats(-20.0, 500.0)).map(
        lambda cost: round(cost, 4)
    ),
    max_size=150,
)


@given(_GOLD, st.randoms(use_true_random=False))
def test_the_mart_does_not_depend_on_the_order_of_its_input_rows(
    gold: dict[tuple[str, str, int], float], rnd: random.Random
) -> None:
    rows = [_daily(day, cost, org, service) for (org, service, day), cost in gold.items()]
    expected = anomaly_rows(COST_ANOMALIES, rows)
    rnd.shuffle(rows)
    assert anomaly_rows(COST_ANOMALIES, rows) == expected
    table = COST_ANOMALIES.table
    keys = [table.key_of(row) for row in expected]
    assert keys == sorted(table.key_of(row) for row in rows)
    assert all(tuple(row) == table.column_names for row in expected)
    for row in expected:
        assert row["is_anomaly"] is (row["methods_flagged"] >= 2)  # type: ignore[operator]
        assert row["methods_flagged"] == len(row["flagged_methods"])  # type: ignore[arg-type]
        assert row["flagged_methods"] == sorted(set(row["flagged_methods"]))  # type: ignore[call-overload]


# ---- Spark computes the same mart ---------------------------------------------------------------


def _varied_gold() -> list[dict[str, object]]:
    """Daily gold rows of several kinds of series over ~60 days, with gaps and spikes: noisy,
    every other day, a gap longer than the window, constant (0.1 sums inexactly), ties (MAD 0),
    credits (negative costs), and too short to score."""
    rnd = random.Random(20250601)
    rows: list[dict[str, object]] = []

    def add(org: str, service: str, days: Sequence[int], cost: Any) -> None:
        rows.extend(_daily(day, round(float(cost(day)), 4), org, service) for day in days)

    spikes = {20: 4.0, 45: 6.0, 52: 0.2}
    add(
        "org_a",
        "compute",
        [d for d in range(60) if not 30 <= d <= 33],
        lambda d: (100 + rnd.gauss(0, 5)) * spikes.get(d, 1.0),
    )
    add("org_a", "storage", range(0, 60, 2), lambda d: 40 + rnd.random() + (200 if d == 36 else 0))
    add("org_b", "compute", [*range(6), *range(40, 60)], lambda d: 7 + rnd.gauss(0, 0.5))
    add("org_b", "genai", range(60), lambda d: 0.1)
    add("org_c", "storage", sorted(rnd.sample(range(60), 25)), lambda d: 12.5)
    add("org_c", "compute", range(5), lambda d: 3 + d)
    add("org_d", "network", range(60), lambda d: rnd.choice((10.0, 10.0, 10.0, 12.0, 30.0)))
    add("org_d", "compute", range(60), lambda d: rnd.uniform(-5, 5) + (80 if d % 17 == 0 else 0))
    return rows


def _gold_frame(spark: Any, rows: list[dict[str, object]]) -> Any:
    """A frame of the daily mart's gold table (every column; those not given are null)."""
    from adapters.spark import schemas

    schema = schemas.spark_schema_with_partition(DAILY_USAGE.table)
    return spark.createDataFrame(
        [tuple(row.get(field.name) for field in schema.fields) for row in rows], schema
    )


@pytest.mark.spark
def test_spark_computes_the_same_anomaly_mart_as_the_reference_row_by_row(spark: Any) -> None:
    from adapters.spark import schemas
    from adapters.spark.anomaly import anomaly_frame

    gold = _varied_gold()
    expected = anomaly_rows(COST_ANOMALIES, gold)
    assert sum(1 for row in expected if row["is_anomaly"]) >= 5  # the spikes are there
    assert any(row["mad_score"] is None and row["baseline_days"] >= 7 for row in expected)  # type: ignore[operator]
    frame = anomaly_frame(COST_ANOMALIES, _gold_frame(spark, gold))
    declared = schemas.spark_schema_with_partition(COST_ANOMALIES.table)
    assert [(f.name, f.dataType) for f in frame.schema.fields] == [
        (f.name, f.dataType) for f in declared.fields
    ]
    table = COST_ANOMALIES.table
    got = sorted((row.asDict() for row in frame.collect()), key=table.key_of)
    assert len(got) == len(expected) == len(gold)
    floats = {c.name for c in table.columns if c.type is LogicalType.FLOAT}
    for want, have in zip(expected, got, strict=True):
        for name in table.column_names:
            a, b = want[name], have[name]
            if name in floats and a is not None and b is not None:
                same = math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)  # type: ignore[arg-type]
            else:
                same = a == b
            assert same, f"{table.key_of(want)} {name}: reference {a!r}, spark {b!r}"
