"""The plain-Spark reference job (issue 12): the naive Spark script of the gold mart.

    .venv/bin/python benchmarks/plain_spark_reference.py LANDING_DIR OUT_DIR

`spark.read.json` of LANDING_DIR/usage_events_stream/*.jsonl with an explicit schema, duplicate
`event_id`s dropped, `cost_usd_increment >= -0.01` kept, grouped by org, usage day (UTC) and
service (cost summed; requests, cpu_hours and storage_gb_hours values summed by metric; events
counted), written as parquet partitioned by `usage_date` into OUT_DIR (replaced). Prints the
gold row count and total cost.

No tuning beyond the explicit schema, `local[*]` and 4 shuffle partitions: every other setting is
Spark's default. The session time zone is set to UTC for correctness (the usage day of an
instant), not speed. pyspark only: no project import, no Delta. Java is found as pyspark finds
it, as the project's session does (adapters/spark/session.py): $JAVA_HOME/bin/java when
JAVA_HOME is set, else `java` on the PATH; it must be Java 17.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession
    from pyspark.sql.types import StructType

SHUFFLE_PARTITIONS = 4
VALUE_METRICS = ("requests", "cpu_hours", "storage_gb_hours")
MIN_COST_USD = -0.01


def event_schema() -> StructType:
    """The landing event's fields: strings as string, numbers as double (integers as long)."""
    from pyspark.sql.types import (
        DoubleType,
        LongType,
        StringType,
        StructField,
        StructType,
        TimestampType,
    )

    fields = [
        ("event_id", StringType()),
        ("timestamp", TimestampType()),
        ("org_id", StringType()),
        ("resource_id", StringType()),
        ("service", StringType()),
        ("region", StringType()),
        ("metric", StringType()),
        ("value", DoubleType()),
        ("unit", StringType()),
        ("cost_usd_increment", DoubleType()),
        ("schema_version", LongType()),
        ("carbon_kg", DoubleType()),
        ("genai_tokens", LongType()),
    ]
    return StructType([StructField(name, kind, nullable=True) for name, kind in fields])


def gold(spark: SparkSession, landing: Path) -> DataFrame:
    from pyspark.sql import functions as F

    events = spark.read.schema(event_schema()).json(
        str(landing / "usage_events_stream" / "*.jsonl")
    )
    kept = events.dropDuplicates(["event_id"]).where(F.col("cost_usd_increment") >= MIN_COST_USD)
    return gold_of(kept)


def gold_of(kept: DataFrame) -> DataFrame:
    """The gold mart of the kept (deduplicated, cost-filtered) events."""
    from pyspark.sql import functions as F

    value_sums = [
        F.coalesce(F.sum(F.when(F.col("metric") == metric, F.col("value"))), F.lit(0.0)).alias(
            metric
        )
        for metric in VALUE_METRICS
    ]
    return (
        kept.withColumn("usage_date", F.to_date("timestamp"))
        .groupBy("org_id", "usage_date", "service")
        .agg(
            F.sum("cost_usd_increment").alias("daily_cost_usd"),
            *value_sums,
            F.count(F.lit(1)).alias("event_count"),
        )
    )


def gold_totals(gold: DataFrame) -> Row | None:
    """The written gold's row count (`rows`) and total cost (`cost`), read back."""
    from pyspark.sql import functions as F

    return gold.agg(F.count(F.lit(1)).alias("rows"), F.sum("daily_cost_usd").alias("cost")).first()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("landing", type=Path, metavar="LANDING_DIR")
    parser.add_argument("out", type=Path, metavar="OUT_DIR")
    args = parser.parse_args(argv)

    from pyspark.sql import SparkSession

    started = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[*]")
        .appName("plain-spark-reference")
        .config("spark.sql.shuffle.partitions", str(SHUFFLE_PARTITIONS))
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session_seconds = time.perf_counter() - started
    try:
        started = time.perf_counter()
        gold(spark, args.landing).write.mode("overwrite").partitionBy("usage_date").parquet(
            str(args.out)
        )
        job_seconds = time.perf_counter() - started
        totals = gold_totals(spark.read.parquet(str(args.out)))
    finally:
        spark.stop()
    assert totals is not None
    print(
        f"plain-Spark reference: gold rows {totals['rows']}, total cost {totals['cost']:.2f} USD "
        f"(session {session_seconds:.1f} s, job {job_seconds:.1f} s)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
