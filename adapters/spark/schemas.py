"""Spark schemas of the lake, derived from the core's contracts (through the arrow schemas that
`adapters.lake.schemas` derives from them), and CSV typing compiled from `masters.typed_value`.

The only thing stated here is the LogicalType -> Spark type mapping (and arrow -> Spark, its
physical twin); column lists always come from the contracts.
"""

from __future__ import annotations

import functools

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from adapters.lake import schemas as lake_schemas
from adapters.spark import rules_compiler as rc
from finops_core.contracts import LogicalType, SourceContract
from finops_core.masters import BOOLEAN_FALSE, BOOLEAN_TRUE

SPARK_TYPES: dict[LogicalType, T.DataType] = {
    LogicalType.STRING: T.StringType(),
    LogicalType.INTEGER: T.LongType(),
    LogicalType.FLOAT: T.DoubleType(),
    LogicalType.BOOLEAN: T.BooleanType(),
    LogicalType.DATE: T.DateType(),
    LogicalType.TIMESTAMP: T.TimestampType(),
    LogicalType.JSON: T.StringType(),
    LogicalType.NUMERIC_TEXT: T.StringType(),
}


def spark_type_of_arrow(arrow_type: pa.DataType) -> T.DataType:
    """The Spark type a parquet column of this arrow type round-trips as."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return T.StringType()
    if pa.types.is_int64(arrow_type):
        return T.LongType()
    if pa.types.is_int32(arrow_type):
        return T.IntegerType()
    if pa.types.is_float64(arrow_type):
        return T.DoubleType()
    if pa.types.is_boolean(arrow_type):
        return T.BooleanType()
    if pa.types.is_date32(arrow_type):
        return T.DateType()
    if pa.types.is_timestamp(arrow_type):
        return T.TimestampType() if arrow_type.tz else T.TimestampNTZType()
    if pa.types.is_list(arrow_type):
        return T.ArrayType(spark_type_of_arrow(arrow_type.value_type), True)
    if pa.types.is_map(arrow_type):
        return T.MapType(
            spark_type_of_arrow(arrow_type.key_type),
            spark_type_of_arrow(arrow_type.item_type),
            True,
        )
    raise TypeError(f"no Spark type for arrow type {arrow_type}")


def from_arrow(schema: pa.Schema) -> T.StructType:
    return T.StructType([T.StructField(f.name, spark_type_of_arrow(f.type), True) for f in schema])


def with_partition(schema: T.StructType, column: str, data_type: T.DataType) -> T.StructType:
    return T.StructType([*schema.fields, T.StructField(column, data_type, True)])


@functools.cache
def bronze_events_schema() -> T.StructType:
    return from_arrow(lake_schemas.BRONZE_EVENTS_SCHEMA)


@functools.cache
def silver_events_schema() -> T.StructType:
    return from_arrow(lake_schemas.SILVER_EVENTS_SCHEMA)


@functools.cache
def quarantine_schema() -> T.StructType:
    return from_arrow(lake_schemas.QUARANTINE_SCHEMA)


@functools.cache
def gold_schema() -> T.StructType:
    from adapters.lake.gold import GOLD_SCHEMA

    return from_arrow(GOLD_SCHEMA)


def bronze_master_schema(contract: SourceContract) -> T.StructType:
    return from_arrow(lake_schemas.bronze_master_schema(contract))


def silver_master_schema(contract: SourceContract) -> T.StructType:
    return from_arrow(lake_schemas.silver_master_schema(contract))


def contract_schema(contract: SourceContract) -> T.StructType:
    """The contract's columns with their Spark types."""
    return T.StructType(
        [T.StructField(c.name, SPARK_TYPES[c.type], True) for c in contract.columns]
    )


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
