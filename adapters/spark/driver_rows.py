"""DataFrames of rows the driver holds (the ledger, malformed lines, an absent table's no rows).

`spark.createDataFrame(list_of_tuples)` pickles the rows into an RDD that a Python worker
re-serialises before the JVM reads them: every such frame starts Python workers (0.5 s per
job once warm, 2.4 s for the first). An Arrow table is handed to the JVM as Arrow batches,
with no Python worker: 0.05 s for the same empty frame, measured in one warm session.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructType


def frame_of(
    spark: SparkSession, rows: Sequence[Sequence[object]], schema: StructType
) -> DataFrame:
    """The rows (each a sequence of plain values in `schema`'s field order: timestamps as
    timezone-aware datetimes, arrays as lists) as a DataFrame of `schema`."""
    arrow_schema = to_arrow_schema(schema)
    width = len(arrow_schema)
    for row in rows:
        if len(row) != width:
            raise ValueError(f"a row of {len(row)} values for {width} columns: {row!r}")
    columns = [
        pa.array([row[index] for row in rows], type=field.type)
        for index, field in enumerate(arrow_schema)
    ]
    return spark.createDataFrame(pa.Table.from_arrays(columns, schema=arrow_schema), schema)
