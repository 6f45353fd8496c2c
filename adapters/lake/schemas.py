"""Arrow schemas of the lake's tables, derived from the declarations in `finops_core.tables`.

One type map; every field nullable, as the tables have always been written, so the Delta tables
the deltalake package and Spark create stay alike (`Column.nullable` is for serving stores: a
NOT NULL column would add a Delta invariant the other writer must honour).
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
    # Delta `timestamp` (UTC instants); a naive timestamp would be `timestamp_ntz`, a table
    # feature (reader 3 / writer 7) this lake does not use.
    LogicalType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    LogicalType.STRING_LIST: pa.list_(pa.string()),
    LogicalType.STRING_SET: pa.list_(pa.string()),
    LogicalType.COUNT_MAP: pa.map_(pa.string(), pa.int64()),
}


def arrow_field(column: Column) -> pa.Field:
    return pa.field(column.name, ARROW_TYPES[column.type], nullable=True)


def arrow_schema(table: Table) -> pa.Schema:
    """The schema of the table: every column in declared order (Delta keeps the partition
    column's value in its log, not in the data files)."""
    return pa.schema([arrow_field(column) for column in table.columns])
