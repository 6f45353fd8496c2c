"""The cost-anomaly mart (`finops_core.anomaly`) compiled to Spark Columns, without a Python UDF.

Each row's baseline is a window over its series ordered by day number, from `window_days` days
before to the day before (`rangeBetween`: calendar days, so a missing day is simply absent). The
baseline is collected and sorted once; every statistic is then read off the sorted array with
higher-order functions, in the same operations as the Python reference, so the median, MAD and
percentile are bit for bit the same. The mean is a left-to-right sum of the sorted array where
Python uses `math.fsum`: the two agree to a few ulps (both are deterministic), and the z-score's
"zero deviation" case is decided exactly, on equal first and last values, in both.

Spark 4 runs in ANSI mode (an array index out of range or a division by zero fails the query),
so every statistic is computed only under `when` guards that make its indexes and divisors valid.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from adapters.spark import schemas
from finops_core.anomaly import MAD_SCORE, METHODS, P99, Z_SCORE, AnomalyMart

_BASELINE, _N, _MEDIAN, _MAD, _MEAN, _STDEV = (
    "_baseline", "_n", "_median", "_mad", "_mean", "_stdev"
)  # fmt: skip


def _at(values: Column, position: Column) -> Column:
    """The element at a 1-based position (an int Column; it must be in range)."""
    return F.element_at(values, position.cast("int"))


def _median(values: Column, n: Column) -> Column:
    """`anomaly.median` of a sorted array of n >= 1 values."""
    half = F.floor(n / F.lit(2)).cast("int")
    middle = (_at(values, half) + _at(values, half + 1)) / F.lit(2.0)
    return F.when(n % 2 == 1, _at(values, half + 1)).otherwise(middle)


def _percentile(values: Column, n: Column, q: float) -> Column:
    """`anomaly.percentile` of a sorted array of n >= 1 values: the same position, floor and
    linear interpolation."""
    position = F.lit(q / 100.0) * (n - 1)
    below = F.floor(position)
    low = _at(values, below + 1)
    high = _at(values, F.least(below + 2, n))
    return low + (position - below) * (high - low)


def _total(values: Column) -> Column:
    return F.aggregate(values, F.lit(0.0), lambda total, v: total + v)


def anomaly_frame(mart: AnomalyMart, daily: DataFrame) -> DataFrame:
    """`anomaly.anomaly_rows` of a frame of the source mart (its gold table's columns): one row
    per daily row, the table's data columns in order cast to their Spark types, then the
    partition column."""
    policy = mart.policy
    x = F.col(mart.value).cast("double")
    day_number = F.unix_date(F.col(mart.date))  # days since 1970-01-01
    history = (
        Window.partitionBy(*mart.series).orderBy(day_number).rangeBetween(-policy.window_days, -1)
    )
    n = F.col(_N)
    baseline = F.col(_BASELINE)

    def scored(value: Column) -> Column:
        """`value` where the baseline is long enough to score, else null."""
        return F.when(n >= policy.min_history_days, value)

    frame = (
        daily.withColumn(_BASELINE, F.array_sort(F.collect_list(x).over(history)))
        .withColumn(_N, F.size(baseline))
        .withColumn(_MEDIAN, scored(_median(baseline, n)))
        .withColumn(_MEAN, scored(_total(baseline) / n))
    )
    deviations = F.array_sort(F.transform(baseline, lambda v: F.abs(v - F.col(_MEDIAN))))
    squares = F.transform(baseline, lambda v: (v - F.col(_MEAN)) * (v - F.col(_MEAN)))
    frame = frame.withColumn(_MAD, scored(_median(deviations, n))).withColumn(
        _STDEV,
        scored(
            F.when(n < 2, F.lit(None).cast("double"))
            .when(_at(baseline, F.lit(1)) == _at(baseline, n), F.lit(0.0))
            .otherwise(F.sqrt(_total(squares) / (n - 1)))
        ),
    )
    median, mad, stdev = F.col(_MEDIAN), F.col(_MAD), F.col(_STDEV)
    z = F.when(stdev != 0, (x - F.col(_MEAN)) / stdev)
    mad_score = F.when(mad != 0, F.lit(policy.mad_scale) * (x - median) / mad)
    p99 = scored(_percentile(baseline, n, policy.percentile))
    flags = {
        Z_SCORE: F.coalesce(z > policy.z_threshold, F.lit(False)),
        MAD_SCORE: F.coalesce(mad_score > policy.mad_threshold, F.lit(False)),
        P99: F.coalesce(x > p99, F.lit(False)),
    }
    flagged = F.filter(
        # A STRING_SET: the flagged ids in ascending order.
        F.array(*(F.when(flags[method], F.lit(method)) for method in sorted(METHODS))),
        lambda method: method.isNotNull(),
    )
    frame = frame.select(
        *daily.columns,
        n.alias("baseline_days"),
        median.alias("expected_cost_usd"),
        (x - median).alias("impact_usd"),
        z.alias(Z_SCORE),
        mad_score.alias(MAD_SCORE),
        p99.alias("p99_usd"),
        F.size(flagged).alias("methods_flagged"),
        flagged.alias("flagged_methods"),
        (F.size(flagged) >= policy.min_methods).alias("is_anomaly"),
    )
    table = mart.table
    data = [F.col(f.name).cast(f.dataType).alias(f.name) for f in schemas.spark_schema(table)]
    partition = schemas.spark_field(table.column(schemas.partition_column(table)))
    data.append(F.col(partition.name).cast(partition.dataType).alias(partition.name))
    return frame.select(*data)
