"""Declared lake tables as Delta tables: where they are, whether they exist, how they read and
commit.

The folder of a table is `LakeLayout.table(table)`; its schema is `schemas.spark_schema...`.
Every write below is one Delta commit: a reader sees the table's previous version or the new
one, and a writer killed mid-way leaves only files no version refers to (until VACUUM).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from adapters.spark import schemas
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
        return spark.createDataFrame([], schema)
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


def merge_new(spark: SparkSession, frame: DataFrame, lake: LakeLayout, table: Table) -> int:
    """Insert the rows whose primary key the table lacks (one MERGE commit; rows of `frame`
    sharing a key are deduplicated first); returns the rows inserted."""
    from delta.tables import DeltaTable

    key = list(table.primary_key)
    fresh = frame.select(*columns(table)).dropDuplicates(key)
    path = lake.table(table)
    if not is_delta_table(path):
        counted = fresh.persist()
        try:
            rows = counted.count()
            overwrite(counted, lake, table)
        finally:
            counted.unpersist()
        return rows
    condition = " AND ".join(f"t.`{name}` <=> s.`{name}`" for name in key)
    result = (
        DeltaTable.forPath(spark, str(path))
        .alias("t")
        .merge(fresh.alias("s"), condition)
        .whenNotMatchedInsertAll()
        .execute()
        .select(F.col("num_inserted_rows"))
        .first()
    )
    return int(result[0]) if result is not None and result[0] is not None else 0
