"""Arrow schemas of the lake's tables, derived from the declarations in `finops_core.tables`.

One type map; every field nullable, as the files have always been written, so the files pyarrow
and Spark write stay alike (`Column.nullable` is for serving stores, not for parquet).
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from finops_core.contracts import Column, LogicalType
from finops_core.tables import Table

ARROW_TYPES: Mapping[LogicalType, pa.DataType] = {
    LogicalType.STRING: pa.string(),
    LogicalType.JSON: pa.string(),
    LogicalType.NUMERIC_TEXT: pa.string(),
    LogicalType.INTEGER: pa.int64(),
    LogicalType.FLOAT: pa.float64(),
    LogicalType.BOOLEAN: pa.bool_(),
    LogicalType.DATE: pa.date32(),
    LogicalType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    LogicalType.STRING_LIST: pa.list_(pa.string()),
    LogicalType.COUNT_MAP: pa.map_(pa.string(), pa.int64()),
}


def arrow_field(column: Column) -> pa.Field:
    return pa.field(column.name, ARROW_TYPES[column.type], nullable=True)


def arrow_schema(table: Table) -> pa.Schema:
    """The schema of the table's data files: its columns less the partition column, in order."""
    return pa.schema([arrow_field(column) for column in table.data_columns])
