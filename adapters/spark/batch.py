"""The batch stages' reads and writes on the lake (the transforms themselves are I/O-free).

Every write is one Delta commit (`storage`): masters, silver and gold replace their whole table;
bronze events replace the rows of the landing files the intake plan names (`replaceWhere`);
quarantine only ever gains rows whose key it lacks (an anti-join and an append).

Counts come from `Observation`s riding on the writes, so a stage runs as few Spark jobs as it can:
no separate count() passes over the big tables and no cache of them (the driver heap is small).
Silver makes two passes over bronze, both without a full shuffle: the silver write (nearly every
row, carrying the stage's counts) and the few quarantined rows; only rows whose event_id repeats
or is missing are ranked (see `transforms.judge`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from adapters.spark import anomaly as spark_anomaly
from adapters.spark import rules_compiler as rc
from adapters.spark import schemas, storage, transforms
from adapters.spark.driver_rows import frame_of
from adapters.spark.events import BLANK, MALFORMED, RAW, SOURCE_FILE, bronze_of, classify_lines
from adapters.spark.storage import read_table
from finops_core import catalogue
from finops_core.anomaly import COST_ANOMALIES, anomalies_count
from finops_core.anomaly import rows_count as anomaly_rows_count
from finops_core.contracts import MASTER_SOURCES, SourceContract
from finops_core.events import (
    UTF8_BOM,
    LandingLine,
    QuarantineEntry,
    is_blank,
    malformed_entry,
    split_lines,
    with_occurrences,
)
from finops_core.intake import IntakePlan, LandingFile
from finops_core.lake import LakeLayout
from finops_core.marts import (
    DAILY_USAGE,
    MARTS,
    Mart,
    Sum,
    counted_count,
    counted_measure,
    kept_count,
    reconciled_marts,
    reconciled_sums,
    rows_count,
    source_sum_count,
    sum_count,
)
from finops_core.ports import RunContext
from finops_core.tables import (
    BRONZE_EVENTS,
    BRONZE_MASTERS,
    LANDING_FILES,
    QUARANTINE_EVENTS,
    SILVER_EVENTS,
    SILVER_MASTERS,
)


def _stamp(run: RunContext) -> dict[str, Column]:
    return {"run_id": F.lit(run.run_id), "ingest_ts": F.lit(run.started_at).cast("timestamp")}


def _metric(observation: Observation, name: str) -> float:
    value = observation.get.get(name)
    return 0 if value is None else value


# ---- bronze -------------------------------------------------------------------------------------


def write_bronze_master(
    spark: SparkSession, lake: LakeLayout, contract: SourceContract, run: RunContext
) -> int:
    """One CSV (RFC 4180: quote and escape are both '"', a quoted field may hold a line break:
    multiLine) typed by the core's rules, replaced. The header line, BOM and all, is skipped;
    blank lines are no rows (as `finops_core.masters.csv_records` reads them)."""
    text = spark.read.csv(
        str(lake.landing / contract.file_pattern),
        schema=schemas.csv_text_schema(contract),
        header=True,
        quote='"',
        escape='"',
        multiLine=True,
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
    table = BRONZE_MASTERS[contract.name]
    storage.overwrite(
        typed.observe(observation, F.count(F.lit(1)).alias("rows")).coalesce(1), lake, table
    )
    return int(_metric(observation, "rows"))


_LINES_SCHEMA = T.StructType(
    [T.StructField(RAW, T.StringType()), T.StructField(SOURCE_FILE, T.StringType())]
)


def landing_lines(spark: SparkSession, files: Sequence[Path]) -> DataFrame:
    """Landing JSONL lines as (raw, source_file): split on "\\n" only, the file's base name."""
    if not files:
        return frame_of(spark, [], _LINES_SCHEMA)
    return (
        spark.read.option("lineSep", "\n")
        .text([str(path) for path in files])
        .select(F.col("value").alias(RAW), F.col("_metadata.file_name").alias(SOURCE_FILE))
    )


def bronze_events(
    spark: SparkSession, lake: LakeLayout, plan: IntakePlan, run: RunContext
) -> dict[str, float]:
    """Replace the bronze rows of `plan.drop` by the rows parsed from `plan.ingest` (the whole
    table when `plan.full`) in one commit; malformed lines go to quarantine (the keys it lacks);
    then the ledger's rows of `plan.drop` are replaced by one row per ingested file.

    The landing is read and parsed once: the bronze write carries an observation that counts
    the lines and collects the malformed ones (the exception: they are few), whose quarantine
    entries are then keyed on the driver by the core's own functions, and the names of the files
    with blank lines (rarer still), which the driver counts per file as the core does."""
    files = [lake.landing / landing_file.path for landing_file in plan.ingest]
    classified = classify_lines(landing_lines(spark, files))
    observation = Observation("bronze_events")
    observed = classified.observe(
        observation,
        F.count(F.lit(1)).alias("lines"),
        F.count_if(~F.col(MALFORMED) & ~F.col(BLANK)).alias("bronze_rows"),
        F.collect_list(F.when(F.col(MALFORMED), F.struct(SOURCE_FILE, RAW))).alias("malformed"),
        F.count_if(F.col(BLANK)).alias("blank_lines"),
        F.collect_set(F.when(F.col(BLANK), F.col(SOURCE_FILE))).alias("blank_files"),
    )
    replace = None if plan.full else storage.sql_in(SOURCE_FILE, plan.drop)
    storage.overwrite(
        bronze_of(observed).withColumns(_stamp(run)), lake, BRONZE_EVENTS, replace_where=replace
    )
    metrics = observation.get
    malformed_lines = [(str(row[SOURCE_FILE]), str(row[RAW])) for row in metrics["malformed"]]
    malformed_per_file = Counter(source_file for source_file, _ in malformed_lines)
    candidates = len(malformed_lines)
    appended = append_quarantine(lake, malformed_frame(spark, malformed_lines, run), candidates)
    blank_files = {str(name) for name in metrics["blank_files"]}
    ledger = [
        _ledger_row(
            landing_file,
            *_line_counts(lake, landing_file, landing_file.name in blank_files),
            malformed_per_file[landing_file.name],
            run,
        )
        for landing_file in plan.ingest
    ]
    write_ledger(spark, lake, ledger, replace_files=None if plan.full else plan.drop)
    return {
        "files": len(files),
        "landing_lines": metrics["lines"],
        "bronze_rows": metrics["bronze_rows"],
        "malformed": candidates,
        "blank_lines": metrics["blank_lines"],
        "quarantine_appended": appended,
    }


def _ledger_row(
    landing_file: LandingFile, lines: int, blank: int, malformed: int, run: RunContext
) -> dict[str, object]:
    """The ledger's row of one ingested file (a batch keeps every copy in bronze: no
    duplicates; silver drops them)."""
    return {
        "source_file": landing_file.name,
        "path": landing_file.path,
        "size": landing_file.size,
        "sha256": landing_file.sha256,
        "lines": lines,
        "blank": blank,
        "malformed": malformed,
        "duplicates": 0,
        "bronze_rows": lines - blank - malformed,
        "run_id": run.run_id,
        "ingest_ts": run.started_at,
    }


def _line_counts(lake: LakeLayout, landing_file: LandingFile, has_blank: bool) -> tuple[int, int]:
    """(lines, blank lines) of a landing file: the listing's line count when it has one and
    Spark saw no blank line in the file, else both counted here by the core's functions. (A file
    of nothing but a BOM has no line, but a listing that counts "\\n"s counts one.)"""
    if landing_file.lines is not None and not has_blank and landing_file.size != len(UTF8_BOM):
        return landing_file.lines, 0
    lines = split_lines((lake.landing / landing_file.path).read_bytes())
    return len(lines), sum(1 for line in lines if is_blank(line))


def malformed_frame(
    spark: SparkSession, lines: Sequence[tuple[str, str]], run: RunContext
) -> DataFrame:
    """Quarantine rows (`tables.QUARANTINE_EVENTS`) of malformed (source_file, raw) lines, keyed
    as the core keys them (`events.malformed_entry`: identical lines numbered in turn)."""
    entries = [
        malformed_entry(LandingLine(source_file, raw), occurrence)
        for (source_file, raw), occurrence in zip(lines, with_occurrences(lines), strict=True)
    ]
    schema = schemas.spark_schema_with_partition(QUARANTINE_EVENTS)
    stamp = {"run_id": run.run_id, "ingest_ts": run.started_at}
    rows = [
        tuple(
            stamp[name] if name in stamp else _entry_value(entry, name)
            for name in schema.fieldNames()
        )
        for entry in entries
    ]
    return frame_of(spark, rows, schema)


def _entry_value(entry: QuarantineEntry, name: str) -> object:
    value = getattr(entry, name)
    return list(value) if isinstance(value, tuple) else value


def write_ledger(
    spark: SparkSession,
    lake: LakeLayout,
    rows: Sequence[Mapping[str, object]],
    *,
    replace_files: Iterable[str] | None,
) -> None:
    """Commit ledger rows (`tables.LANDING_FILES`): the rows of `replace_files` are replaced by
    `rows` (every row of `rows` must name one of them); the whole ledger when None."""
    schema = schemas.spark_schema_with_partition(LANDING_FILES)
    frame = frame_of(
        spark, [tuple(row[name] for name in schema.fieldNames()) for row in rows], schema
    )
    replace = None if replace_files is None else storage.sql_in("source_file", replace_files)
    storage.overwrite(frame.coalesce(1), lake, LANDING_FILES, replace_where=replace)


def append_quarantine(lake: LakeLayout, entries: DataFrame, count: int) -> int:
    """Add the entries whose quarantine_key is not there yet, in one commit; the rows appended.

    `count` is the number of entries, which each stage already knows (bronze holds its malformed
    lines, silver's observation counts its quarantined rows): no entry, no commit, and no cache
    and count of the entries, which would run the whole silver plan once more (3-4 s on the
    real dataset)."""
    if not count:
        return 0
    return storage.append_new(entries.coalesce(1), lake, QUARANTINE_EVENTS)


# ---- silver -------------------------------------------------------------------------------------


def _read_bronze_master(
    spark: SparkSession, lake: LakeLayout, contract: SourceContract
) -> DataFrame:
    return read_table(spark, lake, BRONZE_MASTERS[contract.name])


def silver_events(spark: SparkSession, lake: LakeLayout, run: RunContext) -> dict[str, float]:
    """Judge bronze events: silver (replaced) and quarantine (appended without repeats)."""
    bronze = read_table(spark, lake, BRONZE_EVENTS)
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
        storage.overwrite(transforms.silver_rows(observed), lake, SILVER_EVENTS)
        # Pass 2: the few quarantined candidates, as many as pass 1 counted.
        appended = append_quarantine(
            lake,
            transforms.quarantine_rows(judged).withColumns(_stamp(run)),
            int(totals.get["quarantined"]),
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
    storage.overwrite(
        transforms.silver_master(bronze, contract).coalesce(1),
        lake,
        SILVER_MASTERS[contract.name],
    )


# ---- gold ---------------------------------------------------------------------------------------


def gold(spark: SparkSession, lake: LakeLayout) -> dict[str, float]:
    """Every declared mart, and the cost anomalies scored from the daily mart's rows; the daily
    mart's counts keep their names (runs.GOLD_ROWS, ...), the others are named by the core
    (`marts.rows_count`, `anomaly.rows_count`, ...).

    The marts are independent, so each is written from a thread of its own: their small jobs,
    Delta log reads and commits overlap instead of queueing one after the other."""
    counts: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=len(MARTS), thread_name_prefix="gold") as pool:
        futures = [pool.submit(write_mart, spark, lake, mart) for mart in MARTS]
        results = [future.result() for future in futures]
    for mart, stats in zip(MARTS, results, strict=True):
        if mart is DAILY_USAGE:
            counts.update(
                {
                    "silver_rows": stats["source_rows"],
                    "gold_rows": stats["rows"],
                    "gold_cost_usd": stats["sum.daily_cost_usd"],
                    "gold_keys_unique": stats["keys_unique"],
                    **{k: v for k, v in stats.items() if k.startswith(COST_ANOMALIES.name)},
                }
            )
            continue
        counts[rows_count(mart)] = stats["rows"]
        counts[kept_count(mart)] = stats["kept"]
        if "source_rows" in stats:
            counts[counted_count(mart)] = stats["source_rows"]
        for measure in reconciled_sums(mart):
            counts[sum_count(mart, measure)] = stats[f"sum.{measure.name}"]
            counts[source_sum_count(mart, measure)] = stats[f"source_sum.{measure.name}"]
    return counts


def write_anomalies(lake: LakeLayout, daily: DataFrame) -> dict[str, float]:
    """The cost-anomaly mart scored from the daily mart's rows, replacing its table in one
    commit; its rows and anomalies (anomaly.anomaly_counts)."""
    scored = spark_anomaly.anomaly_frame(COST_ANOMALIES, daily)
    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        seen = scored.agg(
            F.count(F.lit(1)).alias("rows"), F.count_if(F.col("is_anomaly")).alias("anomalies")
        ).first()
        assert seen is not None
        table = COST_ANOMALIES.table
        storage.overwrite(scored.repartition(schemas.partition_column(table)), lake, table)
    finally:
        scored.unpersist()
    return {
        anomaly_rows_count(COST_ANOMALIES): int(seen["rows"]),
        anomalies_count(COST_ANOMALIES): int(seen["anomalies"]),
    }


def write_mart(spark: SparkSession, lake: LakeLayout, mart: Mart) -> dict[str, float]:
    """Aggregate the mart's (fully rebuilt) source into its table, replacing the whole table in
    one commit (a day the source lost leaves the mart too); its rows, key uniqueness, the sum of
    its Count measure and of each Sum measure, and (for the marts the audit reconciles) the
    source rows it kept with the sum of each unfiltered Sum's column over them."""
    source = read_table(spark, lake, mart.source)
    kept = transforms.kept_rows(mart, source)
    reconciled = mart in reconciled_marts()
    kept_stats: dict[str, float] = {}
    if reconciled:  # counted on the kept rows themselves, not on the mart computed from them
        kept = kept.persist(StorageLevel.MEMORY_AND_DISK)
        seen = kept.agg(
            F.count(F.lit(1)).alias("kept"),
            *(F.sum(m.source).alias(f"source_sum.{m.name}") for m in reconciled_sums(mart)),
        ).first()
        assert seen is not None
        kept_stats = {name: float(seen[name] or 0) for name in seen.asDict()}
        kept_stats["kept"] = int(seen["kept"])
    rows = transforms.grouped_rows(mart, kept).persist(StorageLevel.MEMORY_AND_DISK)
    counted_by = counted_measure(mart)
    counted = counted_by.name if counted_by is not None else None
    sums = [m.name for m in mart.accumulating if isinstance(m, Sum)]
    try:
        stats = rows.agg(
            F.count(F.lit(1)).alias("rows"),
            F.count_distinct(*(F.col(name) for name in mart.key_columns)).alias("keys"),
            (F.sum(counted) if counted else F.lit(None)).alias("source_rows"),
            *(F.sum(name).alias(f"sum.{name}") for name in sums),
        ).first()
        assert stats is not None
        table = mart.table
        writer = rows
        if table.partition_by is not None:
            writer = rows.repartition(table.partition_by)
        storage.overwrite(writer, lake, table)
        scored = write_anomalies(lake, rows) if mart is COST_ANOMALIES.source else {}
    finally:
        rows.unpersist()
        if reconciled:
            kept.unpersist()
    counts: dict[str, float] = {
        "rows": int(stats["rows"]),
        "keys_unique": int(stats["keys"] == stats["rows"]),
        **kept_stats,
        **scored,
    }
    if counted:
        counts["source_rows"] = int(stats["source_rows"] or 0)
    counts.update({f"sum.{name}": float(stats[f"sum.{name}"] or 0.0) for name in sums})
    return counts
