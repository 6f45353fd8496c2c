"""The batch stages' reads and writes on the lake (the transforms themselves are I/O-free).

Counts come from `Observation`s riding on the writes, so a stage runs as few Spark jobs as it can:
no separate count() passes over the big tables and no cache of them (the driver heap is small).
Silver makes two passes over bronze, both without a full shuffle: the silver write (nearly every
row, carrying the stage's counts) and the few quarantined rows; only rows whose event_id repeats
or is missing are ranked (see `transforms.judge`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from adapters.spark import rules_compiler as rc
from adapters.spark import schemas, transforms
from adapters.spark.events import RAW, SOURCE_FILE, parse_event_lines
from finops_core import catalogue
from finops_core.contracts import MASTER_SOURCES, SourceContract
from finops_core.lake import (
    BRONZE_EVENTS,
    BRONZE_PARTITION,
    GOLD_DAILY,
    QUARANTINE_EVENTS,
    SILVER_EVENTS,
    SILVER_PARTITION,
    LakeLayout,
)
from finops_core.ports import RunContext


def _has_parquet(path: Path) -> bool:
    return path.exists() and any(path.rglob("*.parquet"))


def _stamp(run: RunContext) -> dict[str, Column]:
    return {"run_id": F.lit(run.run_id), "ingest_ts": F.lit(run.started_at).cast("timestamp")}


def _metric(observation: Observation, name: str) -> float:
    value = observation.get.get(name)
    return 0 if value is None else value


# ---- bronze -------------------------------------------------------------------------------------


def write_bronze_master(
    spark: SparkSession, lake: LakeLayout, contract: SourceContract, run: RunContext
) -> int:
    """One CSV (RFC 4180: quote and escape are both '"') typed by the core's rules, replaced."""
    text = spark.read.csv(
        str(lake.landing / contract.file_pattern),
        schema=schemas.csv_text_schema(contract),
        header=True,
        quote='"',
        escape='"',
        multiLine=False,
        mode="PERMISSIVE",
        encoding="UTF-8",
        enforceSchema=True,
    )
    typed = schemas.typed_frame(text, contract).withColumns(
        {
            "ingest_ts": F.lit(run.started_at).cast("timestamp"),
            "source_file": F.lit(contract.file_pattern),
        }
    )
    observation = Observation(f"bronze_{contract.name}")
    typed.observe(observation, F.count(F.lit(1)).alias("rows")).coalesce(1).write.mode(
        "overwrite"
    ).parquet(str(lake.bronze(contract.name)))
    return int(_metric(observation, "rows"))


def landing_lines(spark: SparkSession, files: Sequence[Path]) -> DataFrame:
    """Landing JSONL lines as (raw, source_file): split on "\\n" only, the file's base name."""
    if not files:
        return spark.createDataFrame([], f"{RAW} string, {SOURCE_FILE} string")
    return (
        spark.read.option("lineSep", "\n")
        .text([str(path) for path in files])
        .select(F.col("value").alias(RAW), F.col("_metadata.file_name").alias(SOURCE_FILE))
    )


def backfill_bronze_events(
    spark: SparkSession, lake: LakeLayout, files: Sequence[Path], run: RunContext
) -> dict[str, float]:
    """Rebuild bronze usage events from every landing file; malformed lines go to quarantine."""
    lines = landing_lines(spark, files)
    observed_lines = Observation("landing_lines")
    bronze, _ = parse_event_lines(lines.observe(observed_lines, F.count(F.lit(1)).alias("lines")))
    observed_bronze = Observation("bronze_rows")
    columns = [f.name for f in schemas.bronze_events_schema().fields]
    (
        bronze.withColumns(_stamp(run))
        .select(*columns, BRONZE_PARTITION)
        .observe(observed_bronze, F.count(F.lit(1)).alias("rows"))
        .write.mode("overwrite")
        .partitionBy(BRONZE_PARTITION)
        .parquet(str(lake.bronze(BRONZE_EVENTS)))
    )
    _, malformed = parse_event_lines(lines)
    candidates, appended = append_quarantine(spark, lake, malformed.withColumns(_stamp(run)))
    return {
        "files": len(files),
        "landing_lines": _metric(observed_lines, "lines"),
        "bronze_rows": _metric(observed_bronze, "rows"),
        "malformed": candidates,
        "quarantine_appended": appended,
    }


def append_quarantine(spark: SparkSession, lake: LakeLayout, entries: DataFrame) -> tuple[int, int]:
    """(entries, appended): append the entries whose quarantine_key is not there yet.

    Entries are few (quarantine is the exception), so they are cached and counted directly.
    """
    path = lake.quarantine(QUARANTINE_EVENTS)
    columns = [f.name for f in schemas.quarantine_schema().fields]
    candidates = entries.select(*columns).persist(StorageLevel.MEMORY_AND_DISK)
    fresh: DataFrame | None = None
    try:
        count = candidates.count()
        if not count:
            return 0, 0
        fresh = candidates.dropDuplicates(["quarantine_key"])
        if _has_parquet(path):
            existing = _read(spark, schemas.quarantine_schema(), path).select("quarantine_key")
            fresh = fresh.join(existing, "quarantine_key", "left_anti")
        fresh = fresh.persist(StorageLevel.MEMORY_AND_DISK)
        appended = fresh.count()
        if appended:
            fresh.coalesce(1).write.mode("append").parquet(str(path))
        return count, appended
    finally:
        candidates.unpersist()
        if fresh is not None:
            fresh.unpersist()


def _read(spark: SparkSession, schema: T.StructType, path: Path) -> DataFrame:
    """A lake table with its schema; an absent or empty table reads as no rows."""
    if not _has_parquet(path):
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).parquet(str(path))


# ---- silver -------------------------------------------------------------------------------------


def _read_bronze_master(
    spark: SparkSession, lake: LakeLayout, contract: SourceContract
) -> DataFrame:
    return _read(spark, schemas.bronze_master_schema(contract), lake.bronze(contract.name))


def silver_events(spark: SparkSession, lake: LakeLayout, run: RunContext) -> dict[str, float]:
    """Judge bronze events: silver (replaced) and quarantine (appended without repeats)."""
    bronze = _read(spark, schemas.bronze_events_schema(), lake.bronze(BRONZE_EVENTS))
    masters = {
        reference.name: _read_bronze_master(
            spark, lake, next(c for c in MASTER_SOURCES if c.name == reference.name)
        )
        for reference in catalogue.REFERENCES
    }
    bronze_text = bronze.select(*transforms.BRONZE_TEXT_COLUMNS)
    joined = transforms.join_references(bronze_text, masters)
    repeated = transforms.repeated_event_ids(bronze_text).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        judged = transforms.judge(joined, repeated)
        candidate = ~F.col("_duplicate")
        quarantined = candidate & (F.size("reasons") > 0)
        passed = candidate & (F.size("reasons") == 0)
        totals = Observation("silver_totals")
        observed = judged.observe(
            totals,
            F.count(F.lit(1)).alias("bronze_rows"),
            F.count_if(passed).alias("silver_rows"),
            F.count_if(quarantined).alias("quarantined"),
            F.count_if(F.col("_duplicate")).alias("duplicates"),
            F.sum(F.when(passed, rc.parse_number("cost_usd_increment"))).alias("silver_cost_usd"),
            *(
                F.count_if(quarantined & F.array_contains("reasons", rule.id)).alias(
                    f"reason.{rule.id}"
                )
                for rule in catalogue.QUARANTINE_RULES
            ),
            *(
                F.count_if(passed & F.array_contains("flags", flag)).alias(f"flag.{flag}")
                for flag in catalogue.FLAG_IDS
            ),
        )
        # Pass 1: silver (nearly every row) with the stage's counts riding on it.
        transforms.silver_rows(observed).write.mode("overwrite").partitionBy(
            SILVER_PARTITION
        ).parquet(str(lake.silver(SILVER_EVENTS)))
        # Pass 2: the few quarantined candidates.
        _, appended = append_quarantine(
            spark, lake, transforms.quarantine_rows(judged).withColumns(_stamp(run))
        )
    finally:
        repeated.unpersist()
    values = totals.get
    counts: dict[str, float] = {
        name: values[name] for name in ("bronze_rows", "silver_rows", "quarantined", "duplicates")
    }
    counts["quarantine_appended"] = appended
    counts["silver_cost_usd"] = values["silver_cost_usd"] or 0.0
    counts.update({k: v for k, v in values.items() if k.startswith(("reason.", "flag.")) and v})
    return counts


def write_silver_master(spark: SparkSession, lake: LakeLayout, contract: SourceContract) -> None:
    bronze = _read_bronze_master(spark, lake, contract)
    transforms.silver_master(bronze, contract).coalesce(1).write.mode("overwrite").parquet(
        str(lake.silver(contract.name))
    )


# ---- gold ---------------------------------------------------------------------------------------


def gold_daily(spark: SparkSession, lake: LakeLayout) -> dict[str, float]:
    """Aggregate silver into gold, replacing only the usage_date partitions present."""
    schema = schemas.with_partition(schemas.silver_events_schema(), SILVER_PARTITION, T.DateType())
    silver = _read(spark, schema, lake.silver(SILVER_EVENTS))
    gold = transforms.gold_rows(silver).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        stats = gold.agg(
            F.count(F.lit(1)).alias("gold_rows"),
            F.sum("event_count").alias("silver_rows"),
            F.sum("daily_cost_usd").alias("gold_cost_usd"),
            F.count_distinct("org_id", SILVER_PARTITION, "service").alias("keys"),
        ).first()
        assert stats is not None
        (
            gold.repartition(SILVER_PARTITION)
            .write.mode("overwrite")
            .option("partitionOverwriteMode", "dynamic")
            .partitionBy(SILVER_PARTITION)
            .parquet(str(lake.gold(GOLD_DAILY)))
        )
    finally:
        gold.unpersist()
    return {
        "silver_rows": int(stats["silver_rows"] or 0),
        "gold_rows": int(stats["gold_rows"]),
        "gold_cost_usd": float(stats["gold_cost_usd"] or 0.0),
        "gold_keys_unique": int(stats["keys"] == stats["gold_rows"]),
    }
