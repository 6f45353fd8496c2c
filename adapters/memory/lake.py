"""An in-memory lake: tables are lists of dicts keyed by their declaration; landing is a dict of
bytes. For tests.

Rows are kept as a file would keep them: keyed by the table's columns in order (a missing column
is null, an unknown one dropped), lists and maps copied, so no caller shares state with the lake.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from finops_core.lake import LakeLayout
from finops_core.tables import Row, Table, WriteMode


class InMemoryLake:
    def __init__(
        self, landing: dict[str, bytes] | None = None, layout: LakeLayout | None = None
    ) -> None:
        self.layout = layout or LakeLayout("memory-lake")
        self.landing = dict(landing or {})
        self.tables: dict[Table, list[dict[str, object]]] = {}

    def landing_files(self, pattern: str) -> list[str]:
        return sorted(name for name in self.landing if fnmatch.fnmatch(name, pattern))

    def read_landing(self, relative_path: str) -> bytes:
        return self.landing[relative_path]

    def has_table(self, table: Table) -> bool:
        """As on disk: a written table exists, except a partitioned one without rows (no
        partition folder holds a file)."""
        return table in self.tables and (table.partition_by is None or bool(self.tables[table]))

    def read_table(self, table: Table) -> list[dict[str, object]]:
        return [_copy(table, row) for row in self.tables.get(table, [])]

    def write_table(
        self, table: Table, rows: Iterable[Row], mode: WriteMode = WriteMode.OVERWRITE
    ) -> int:
        new = [_copy(table, row) for row in rows]
        current = self.tables.get(table, [])
        if mode is WriteMode.APPEND:
            self.tables[table] = current + new
        elif mode is WriteMode.OVERWRITE_PARTITIONS and table.partition_by is not None:
            column = table.partition_by
            replaced = {row[column] for row in new}
            kept = [row for row in current if row[column] not in replaced]
            self.tables[table] = kept + new
        else:
            self.tables[table] = new
        return len(new)


def _copy(table: Table, row: Row) -> dict[str, object]:
    return {name: _value(row.get(name)) for name in table.column_names}


def _value(value: object) -> object:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value
