"""Declared lake tables as Delta tables: where they are, whether they exist, how they read and
commit.

The folder of a table is `LakeLayout.table(table)`; its schema is `schemas.spark_schema...`.
Every write below is one Delta commit: a reader sees the table's previous version or the new
one, and a writer killed mid-way leaves only files no version refers to (until VACUUM).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from adapters.spark import schemas
from adapters.spark.driver_rows import frame_of
from finops_core.lake import LakeLayout
from finops_core.tables import Table

DELTA = "delta"


def is_delta_table(folder: Path) -> bool:
    """Whether the folder holds a Delta table (a transaction log with at least one commit)."""
    log = folder / "_delta_log"
    return log.is_dir() and any(log.glob("*.json"))


def has_table(lake: LakeLayout, table: Table) -> bool:
    return is_delta_table(lake.table(table))


def columns(table: Table) -> list[str]:
    """The table's columns as Spark writes them: data columns, then the partition column."""
    return schemas.spark_schema_with_partition(table).fieldNames()


def read_table(spark: SparkSession, lake: LakeLayout, table: Table) -> DataFrame:
    """The table's latest version with its declared columns (data columns, then the partition
    column); an absent table reads as no rows."""
    schema = schemas.spark_schema_with_partition(table)
    path = lake.table(table)
    if not is_delta_table(path):
        return frame_of(spark, [], schema)
    return spark.read.format(DELTA).load(str(path)).select(*schema.fieldNames())


def sql_in(column: str, values: Iterable[str]) -> str:
    """`column IN ('a', 'b')` as a SQL predicate (Delta's replaceWhere takes SQL text)."""
    literals = ", ".join(_sql_string(value) for value in sorted(values))
    return f"`{column}` IN ({literals})" if literals else "false"


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def overwrite(
    frame: DataFrame, lake: LakeLayout, table: Table, *, replace_where: str | None = None
) -> None:
    """Commit `frame` as the whole table (or, with `replace_where`, as the rows matching that
    predicate: every written row must match it), partitioned as declared."""
    path = lake.table(table)
    writer = frame.select(*columns(table)).write.format(DELTA).mode("overwrite")
    if replace_where is not None and is_delta_table(path):
        writer = writer.option("replaceWhere", replace_where)
    if table.partition_by is not None:
        writer = writer.partitionBy(table.partition_by)
    writer.save(str(path))


def append_new(frame: DataFrame, lake: LakeLayout, table: Table) -> int:
    """Append the rows whose primary key the table lacks (rows of `frame` sharing a key are
    deduplicated first) in one commit (an empty one when no row is new); returns the rows
    appended. An absent table is created with them.

    An anti-join on the table's key columns and a blind append rather than a MERGE: on the real
    dataset, adding the 211 quarantined rows took 4-6 s with a MERGE (plus a cache and a count
    of the new rows). Two writers could both append a key, so the caller holds the lake's lock
    (every lake-writing command does: `FlockLakeLock`)."""
    key = list(table.primary_key)
    fresh = frame.select(*columns(table)).dropDuplicates(key)
    exists = is_delta_table(lake.table(table))
    if exists:
        existing = read_table(frame.sparkSession, lake, table).select(*key)
        same_key = [fresh[name].eqNullSafe(existing[name]) for name in key]
        fresh = fresh.join(existing, same_key, "left_anti")
    observation = Observation(f"append_new_{table.name}")
    counted = fresh.observe(observation, F.count(F.lit(1)).alias("rows"))
    if exists:
        append(counted, lake, table)
    else:
        overwrite(counted, lake, table)
    return int(observation.get.get("rows") or 0)


def append(frame: DataFrame, lake: LakeLayout, table: Table) -> None:
    """Commit `frame`'s rows as new rows of the table, partitioned as declared."""
    writer = frame.select(*columns(table)).write.format(DELTA).mode("append")
    if table.partition_by is not None:
        writer = writer.partitionBy(table.partition_by)
    writer.save(str(lake.table(table)))
