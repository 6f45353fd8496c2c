"""Load a gold Spark DataFrame into Cassandra/AstraDB, one session per executor partition.

The settings value is picklable and travels to the executors; each partition opens its own
session, upserts its rows with the prepared concurrent loader and closes the session. pyspark is
imported only for type checking, so importing this module needs no Spark.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from adapters.cassandra.settings import CassandraSettings
from finops_core.aggregate import GOLD_COLUMNS, GoldRow

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row


def gold_row_of(record: Mapping[str, Any]) -> GoldRow:
    """A Spark Row's dict (gold columns, quality_flags a map) -> GoldRow."""
    values = {name: record[name] for name in GOLD_COLUMNS}
    flags = values.pop("quality_flags") or {}
    return GoldRow(quality_flags=dict(sorted(dict(flags).items())), **values)


def _load_partition(settings: CassandraSettings, rows: Iterable[Row]) -> None:
    """Runs on an executor: its own session, its own prepared statements."""
    from adapters.cassandra.serving import CassandraServingStore
    from adapters.cassandra.session import close_session, connect

    session = connect(settings)
    try:
        store = CassandraServingStore(session, settings.keyspace, where=settings.hosts)
        store.upsert(gold_row_of(row.asDict()) for row in rows)
    finally:
        close_session(session)


def load_gold_dataframe(df: DataFrame, settings: CassandraSettings) -> None:
    """Create the schema if missing (from the driver), then upsert every partition of `df`."""
    from adapters.cassandra.schema import apply_schema
    from adapters.cassandra.session import close_session, connect

    session = connect(settings)
    try:
        apply_schema(session, settings.keyspace, create_keyspace=not settings.is_astra)
    finally:
        close_session(session)
    df.select(*GOLD_COLUMNS).foreachPartition(functools.partial(_load_partition, settings))
