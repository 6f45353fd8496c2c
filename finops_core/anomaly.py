"""The cost-anomaly mart as data: a policy, a declaration over the daily mart, and the reference
interpretation in pure Python (the Spark adapter compiles the same declaration to Columns).

Each gold row of the source mart (one organisation, day and service) is scored against its
*baseline*: the same series' values (same organisation and service) on the `window_days`
calendar days before its day that have a gold row. A missing day is absent, not zero. With fewer
than `min_history_days` such days nothing is scored and nothing is flagged. Three methods:

- `z_score`: (x - mean) / sample standard deviation; flagged above `z_threshold`. Null when the
  deviation is 0 (a constant baseline) or undefined (fewer than two days).
- `mad_score`: `mad_scale` * (x - median) / MAD, where MAD is the median of the absolute
  deviations from the median; flagged above `mad_threshold`. Null when the MAD is 0.
- `p99`: x above the baseline's `percentile`-th percentile (`p99_usd`, linear interpolation
  between closest ranks: numpy's default method).

"Above" is strictly greater. `expected_cost_usd` is the median, `impact_usd` is x - median, a
row `is_anomaly` when at least `min_methods` methods flag it. Every figure is a function of the
sorted baseline (sums through `math.fsum`), so the mart is the same whatever the order of the
gold rows, on every run and engine.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import operator
from collections.abc import Iterable, Sequence

import attrs

from finops_core.contracts import Column, LogicalType
from finops_core.marts import DAILY_USAGE, Mart
from finops_core.tables import Layer, Row, Table, text_set

# The methods' ids; `flagged_methods` is a set of them (held in ascending order, the order a
# store's set gives them back in).
Z_SCORE, MAD_SCORE, P99 = "z_score", "mad_score", "p99"
METHODS: tuple[str, ...] = (Z_SCORE, MAD_SCORE, P99)

_NUMERIC = (LogicalType.FLOAT, LogicalType.INTEGER)


def _positive_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer, not {value!r}")


def _finite(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be a finite number, not {value!r}")


@attrs.frozen
class AnomalyPolicy:
    """How a value is judged against its baseline: the window, the history it needs, and each
    method's threshold (rules are data: engines read these, never restate them)."""

    window_days: int = attrs.field(default=28, validator=_positive_int)  # calendar days before
    min_history_days: int = attrs.field(default=7, validator=_positive_int)  # to score at all
    z_threshold: float = attrs.field(default=3.0, validator=_finite)
    mad_threshold: float = attrs.field(default=3.5, validator=_finite)
    mad_scale: float = attrs.field(default=0.6745, validator=_finite)  # MAD -> sigma of a normal
    percentile: float = attrs.field(default=99.0, validator=_finite)  # in (0, 100)
    min_methods: int = attrs.field(default=2, validator=_positive_int)  # flags for an anomaly

    def __attrs_post_init__(self) -> None:
        if not 0.0 < self.percentile < 100.0:
            raise ValueError(
                f"percentile must be strictly between 0 and 100, not {self.percentile}"
            )
        if self.min_methods > len(METHODS):
            raise ValueError(f"min_methods must be 1..{len(METHODS)}, not {self.min_methods}")
        if self.min_history_days > self.window_days:
            raise ValueError(
                f"min_history_days ({self.min_history_days}) cannot exceed the "
                f"window_days ({self.window_days}) that hold them"
            )
        if self.mad_scale <= 0.0:
            raise ValueError(f"mad_scale must be positive, not {self.mad_scale}")


ANOMALY_POLICY = AnomalyPolicy()

# The columns the scoring adds after the key and the value; every score is null when the
# baseline is too short, the counts and flags always have a value.
SCORE_COLUMNS: tuple[Column, ...] = (
    Column("baseline_days", LogicalType.INTEGER, nullable=False),  # history days in the window
    Column("expected_cost_usd", LogicalType.FLOAT),  # the baseline's median
    Column("impact_usd", LogicalType.FLOAT),  # x - median
    Column(Z_SCORE, LogicalType.FLOAT),
    Column(MAD_SCORE, LogicalType.FLOAT),
    Column("p99_usd", LogicalType.FLOAT),  # the baseline's `percentile`-th percentile
    Column("methods_flagged", LogicalType.INTEGER, nullable=False),  # 0..3
    Column("flagged_methods", LogicalType.STRING_SET, nullable=False),  # the methods' ids
    Column("is_anomaly", LogicalType.BOOLEAN, nullable=False),  # >= min_methods flagged
)


@attrs.frozen
class AnomalyMart:
    """A mart with one row per row of `source`: its key, its value, and the value's scores
    against the same series' history. The grain of `source` must be `series` plus `date`."""

    name: str
    source: Mart
    value: str  # the source column scored, e.g. daily_cost_usd
    series: tuple[str, ...]  # the source columns one history follows, e.g. (org_id, service)
    date: str  # the source's day column: the history runs over its calendar days
    policy: AnomalyPolicy = ANOMALY_POLICY
    description: str = ""
    table: Table = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        source = self.source.table
        grain = set(self.source.key_columns)
        if set(self.series) | {self.date} != grain or self.date in self.series:
            raise ValueError(
                f"{self.name}: series {list(self.series)} and date {self.date!r} must be the "
                f"grain of {source.id} ({list(self.source.key_columns)})"
            )
        if source.column(self.date).type is not LogicalType.DATE:
            raise ValueError(f"{self.name}: {source.id}.{self.date} is not a DATE")
        value = source.column(self.value)
        if value.type not in _NUMERIC or value.nullable or self.value in grain:
            raise ValueError(
                f"{self.name}: {source.id}.{self.value} must be a required number outside the key"
            )
        keys = tuple(c for c in source.columns if c.name in grain)  # in source order
        table = Table(
            name=self.name,
            layer=Layer.GOLD,
            columns=(*keys, value, *SCORE_COLUMNS),
            primary_key=self.source.key_columns,
            partition_by=self.date,
            description=self.description,
        )
        object.__setattr__(self, "table", table)

    @property
    def key_columns(self) -> tuple[str, ...]:
        return self.table.primary_key


COST_ANOMALIES = AnomalyMart(
    name="cost_anomaly_mart",
    source=DAILY_USAGE,
    value="daily_cost_usd",
    series=("org_id", "service"),
    date="usage_date",
    description="each organisation, day and service's cost scored against its last 28 days",
)

# ---- the statistics, over plain floats ----------------------------------------------------------


def median(sorted_values: Sequence[float]) -> float:
    """The middle value of sorted values, or the mean of the two middle ones."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("the median of no value")
    half = n // 2
    if n % 2:
        return sorted_values[half]
    return (sorted_values[half - 1] + sorted_values[half]) / 2


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (q in [0, 100]) of sorted values, interpolated linearly between the
    closest ranks (numpy's default "linear" method): at position p = q/100 * (n - 1),
    v[floor p] + (p - floor p) * (v[floor p + 1] - v[floor p])."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("the percentile of no value")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"a percentile is in [0, 100], not {q}")
    position = q / 100.0 * (n - 1)
    below = math.floor(position)
    low = sorted_values[below]
    high = sorted_values[min(below + 1, n - 1)]
    return low + (position - below) * (high - low)


def sample_stdev(values: Sequence[float]) -> float | None:
    """The sample standard deviation (n - 1 degrees of freedom), None for fewer than two values.
    Exactly 0 when every value is equal (a float mean of equal values may miss them by an ulp);
    sums through `math.fsum`, so the order of the values does not matter."""
    n = len(values)
    if n < 2:
        return None
    if min(values) == max(values):
        return 0.0
    mean = math.fsum(values) / n
    return math.sqrt(math.fsum([(v - mean) * (v - mean) for v in values]) / (n - 1))


def score(policy: AnomalyPolicy, x: float, baseline: Iterable[float]) -> dict[str, object]:
    """The score columns (`SCORE_COLUMNS`, in order) of value `x` against its baseline values
    (in any order)."""
    history = sorted(baseline)
    n = len(history)
    if n < policy.min_history_days:
        return {
            "baseline_days": n,
            "expected_cost_usd": None,
            "impact_usd": None,
            Z_SCORE: None,
            MAD_SCORE: None,
            "p99_usd": None,
            "methods_flagged": 0,
            "flagged_methods": [],
            "is_anomaly": False,
        }
    middle = median(history)
    mad = median(sorted([abs(v - middle) for v in history]))
    stdev = sample_stdev(history)
    z = None if not stdev else (x - math.fsum(history) / n) / stdev
    mad_score = None if mad == 0 else policy.mad_scale * (x - middle) / mad
    p99 = percentile(history, policy.percentile)
    flagged = [
        method
        for method, flags in (
            (Z_SCORE, z is not None and z > policy.z_threshold),
            (MAD_SCORE, mad_score is not None and mad_score > policy.mad_threshold),
            (P99, x > p99),
        )
        if flags
    ]
    return {
        "baseline_days": n,
        "expected_cost_usd": middle,
        "impact_usd": x - middle,
        Z_SCORE: z,
        MAD_SCORE: mad_score,
        "p99_usd": p99,
        "methods_flagged": len(flagged),
        "flagged_methods": text_set(flagged),
        "is_anomaly": len(flagged) >= policy.min_methods,
    }


# ---- the mart's rows ----------------------------------------------------------------------------


def anomaly_rows(mart: AnomalyMart, daily_rows: Iterable[Row]) -> list[dict[str, object]]:
    """One row per source row, sorted by key, columns in `mart.table` order. Each series is
    sorted by day once; a row's baseline is the slice of its series' days in
    [day - window_days, day - 1], found by bisection."""
    source = mart.source.table
    window, value, date = mart.policy.window_days, mart.value, mart.date
    keys = tuple(name for name in mart.table.column_names if name in mart.key_columns)
    series: dict[tuple[object, ...], list[tuple[int, Row]]] = {}
    for row in daily_rows:
        day = row[date]
        if not isinstance(day, dt.date):
            raise ValueError(f"{source.id}.{date} is not a date: {day!r}")
        series.setdefault(tuple(row[name] for name in mart.series), []).append(
            (day.toordinal(), row)
        )
    rows: list[dict[str, object]] = []
    for members in series.values():
        members.sort(key=lambda member: member[0])
        days = [day for day, _ in members]
        values = [float(row[value]) for _, row in members]  # type: ignore[arg-type]
        for index in range(1, len(days)):
            if days[index] == days[index - 1]:
                raise ValueError(f"{source.id} repeats the key {source.key_of(members[index][1])}")
        for index, (day, row) in enumerate(members):
            first = bisect.bisect_left(days, day - window, 0, index)
            out: dict[str, object] = {name: row[name] for name in keys}  # the table's order:
            out[value] = row[value]  # keys, value, then the score columns
            out.update(score(mart.policy, values[index], values[first:index]))
            rows.append(out)
    rows.sort(key=operator.itemgetter(*mart.key_columns))
    return rows


# ---- what the gold stage counts of it -----------------------------------------------------------


def rows_count(mart: AnomalyMart) -> str:
    """The mart's rows: one per source row."""
    return f"{mart.name}_rows"


def anomalies_count(mart: AnomalyMart) -> str:
    """The mart's rows that are anomalies."""
    return f"{mart.name}.anomalies"


def anomaly_counts(mart: AnomalyMart, rows: Sequence[Row]) -> dict[str, float]:
    return {
        rows_count(mart): len(rows),
        anomalies_count(mart): sum(1 for row in rows if row["is_anomaly"]),
    }
