"""An in-memory serving store: rows of each serving table by primary key, read through the
reference slice semantics of `finops_core.queries`."""

from __future__ import annotations

from collections.abc import Iterable

from finops_core import queries
from finops_core.ports import PartitionSink, StoreDescription
from finops_core.serving import SERVING_TABLES, ServingTable
from finops_core.tables import Row


class InMemoryServingStore(queries.RowsReader):
    """Keeps rows per serving table by primary key, so an upsert of the same key replaces
    (tests may assert on `rows`); reads are the reference slices of `queries.RowsReader`."""

    kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[tuple[object, ...], dict[str, object]]] = {}

    def upsert(self, table: ServingTable, rows: Iterable[Row]) -> int:
        kept = self.rows.setdefault(table.name, {})
        count = 0
        for row in rows:
            kept[tuple(row[name] for name in table.primary_key)] = {
                name: row[name] for name in table.columns
            }
            count += 1
        return count

    def describe(self) -> StoreDescription:
        names = tuple(table.name for table in SERVING_TABLES)
        return StoreDescription(
            kind=self.kind,
            where="this process",
            server="in-memory store",
            namespace="this process",
            tables=tuple(name for name in names if name in self.rows),
            missing=tuple(name for name in names if name not in self.rows),
            schema_version=None,
        )

    def replace(self, table: ServingTable, rows: Iterable[Row]) -> int:
        """The table becomes exactly `rows`, swapped in at once when they are all read."""
        fresh = InMemoryServingStore()
        count = fresh.upsert(table, rows)
        self.rows[table.name] = fresh.rows.get(table.name, {})
        return count

    def prune(self, table: ServingTable, kept: Iterable[Row]) -> int:
        keys = {tuple(row[name] for name in table.primary_key) for row in kept}
        held = self.rows.get(table.name, {})
        stale = [key for key in held if key not in keys]
        for key in stale:
            del held[key]
        return len(stale)

    def count(self, table: ServingTable) -> int:
        return len(self.rows.get(table.name, {}))

    def partition_sink(self, table: ServingTable) -> PartitionSink | None:
        """None: the rows live in this process."""
        return None

    def close(self) -> None:
        """Nothing to release."""

    def rows_of(self, table: ServingTable) -> list[Row]:
        return list(self.rows.get(table.name, {}).values())
