"""Spark schemas of the lake, derived from the core's table declarations, and CSV typing
compiled from `masters.typed_value`.

The only thing stated here is the LogicalType -> Spark type map; column lists, their order and
partition columns always come from `finops_core.tables` (and `finops_core.marts` for gold).
Every field is nullable, as Spark writes and reads parquet.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from adapters.spark import rules_compiler as rc
from finops_core.contracts import Column as ColumnSpec
from finops_core.contracts import LogicalType, SourceContract
from finops_core.masters import BOOLEAN_FALSE, BOOLEAN_TRUE
from finops_core.tables import Table

SPARK_TYPES: dict[LogicalType, T.DataType] = {
    LogicalType.STRING: T.StringType(),
    LogicalType.INTEGER: T.LongType(),
    LogicalType.FLOAT: T.DoubleType(),
    LogicalType.BOOLEAN: T.BooleanType(),
    LogicalType.DATE: T.DateType(),
    LogicalType.TIMESTAMP: T.TimestampType(),
    LogicalType.JSON: T.StringType(),
    LogicalType.NUMERIC_TEXT: T.StringType(),
    LogicalType.STRING_LIST: T.ArrayType(T.StringType(), True),
    LogicalType.STRING_SET: T.ArrayType(T.StringType(), True),
    LogicalType.COUNT_MAP: T.MapType(T.StringType(), T.LongType(), True),
}


def spark_type(logical_type: LogicalType) -> T.DataType:
    return SPARK_TYPES[logical_type]


def spark_field(column: ColumnSpec) -> T.StructField:
    return T.StructField(column.name, spark_type(column.type), True)


def spark_schema(table: Table) -> T.StructType:
    """The columns of the table's data files, in order (a partition column is not one of them)."""
    return T.StructType([spark_field(column) for column in table.data_columns])


def spark_schema_with_partition(table: Table) -> T.StructType:
    """The table as Spark reads hive-partitioned parquet: data columns, then the partition."""
    schema = spark_schema(table)
    if table.partition_by is None:
        return schema
    return T.StructType([*schema.fields, spark_field(table.column(table.partition_by))])


def partition_column(table: Table) -> str:
    """The partition column of a table that has one."""
    if table.partition_by is None:
        raise ValueError(f"{table.id} is not partitioned")
    return table.partition_by


def csv_text_schema(contract: SourceContract) -> T.StructType:
    """Every contract column as text: CSVs are read untyped, then typed by the core's rules."""
    return T.StructType([T.StructField(c.name, T.StringType(), True) for c in contract.columns])


# ---- typing text as masters.typed_value does ----------------------------------------------------


def typed_value(text: Column, logical_type: LogicalType) -> Column:
    """masters.typed_value compiled: empty is null, text that does not fit its type is null."""
    present = F.when(text != "", text)
    if logical_type in (LogicalType.STRING, LogicalType.JSON, LogicalType.NUMERIC_TEXT):
        return present
    if logical_type is LogicalType.FLOAT:
        return rc.parse_number(present)
    if logical_type is LogicalType.INTEGER:
        return rc.parse_integer(present)
    if logical_type is LogicalType.BOOLEAN:
        return F.when(present.isin(list(BOOLEAN_TRUE)), F.lit(True)).when(
            present.isin(list(BOOLEAN_FALSE)), F.lit(False)
        )
    if logical_type is LogicalType.DATE:
        return rc.parse_date(present)
    if logical_type is LogicalType.TIMESTAMP:
        return rc.parse_timestamp(present)
    raise ValueError(f"unknown logical type {logical_type}")


def typed_frame(text_frame: DataFrame, contract: SourceContract) -> DataFrame:
    """A frame of the contract's columns as text -> the same columns typed."""
    return text_frame.select(
        *(
            typed_value(F.col(c.name), c.type).cast(SPARK_TYPES[c.type]).alias(c.name)
            for c in contract.columns
        )
    )


def reference_text(column: Column, logical_type: LogicalType) -> Column:
    """A typed master value as the text the core's rules read (`pipeline._text`: isoformat/str)."""
    if logical_type in (
        LogicalType.STRING,
        LogicalType.JSON,
        LogicalType.NUMERIC_TEXT,
        LogicalType.INTEGER,
    ):
        return column.cast("string")
    if logical_type is LogicalType.DATE:
        return F.date_format(column, rc.ISO_DATE_FORMAT)
    if logical_type is LogicalType.BOOLEAN:
        return F.when(column, F.lit("True")).when(~column, F.lit("False"))
    # Python's float repr and datetime isoformat have no exact Spark spelling.
    raise NotImplementedError(
        f"a {logical_type.value} master field cannot be a rule reference in Spark"
    )
