"""Declared lake tables as DataFrames: where they are, whether they hold data, how they read.

The folder of a table is `LakeLayout.table(table)`; its schema is `schemas.spark_schema...`.
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from adapters.spark import schemas
from finops_core.lake import LakeLayout
from finops_core.tables import Table


def _visible(path: Path, folder: Path) -> bool:
    """Spark skips files below a folder (or named) starting with "." or "_"."""
    return not any(part.startswith((".", "_")) for part in path.relative_to(folder).parts)


def has_parquet(folder: Path) -> bool:
    """Whether the folder holds a parquet file Spark would read."""
    return folder.exists() and any(_visible(path, folder) for path in folder.rglob("*.parquet"))


def has_table(lake: LakeLayout, table: Table) -> bool:
    return has_parquet(lake.table(table))


def read_table(spark: SparkSession, lake: LakeLayout, table: Table) -> DataFrame:
    """The table with its declared schema (data columns, then the partition column, as Spark
    reads hive-partitioned parquet); an absent or empty table reads as no rows."""
    schema = schemas.spark_schema_with_partition(table)
    path = lake.table(table)
    if not has_parquet(path):
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).parquet(str(path))
