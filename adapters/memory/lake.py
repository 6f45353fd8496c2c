"""An in-memory lake: tables are lists of dicts keyed by their declaration; landing is a dict of
bytes. For tests.

Rows are kept as a Delta table would keep them: keyed by the table's columns in order (a missing
column is null, an unknown one dropped, an empty partition text null), lists and maps copied, so
no caller shares state with the lake. Each write replaces the table's list at once, as a commit.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

from finops_core.lake import LakeLayout
from finops_core.tables import Replace, Row, Table, WriteMode


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
        """As a Delta table: a table exists once written, even without rows."""
        return table in self.tables

    def read_table(
        self, table: Table, columns: Sequence[str] | None = None
    ) -> list[dict[str, object]]:
        rows = [_copy(table, row) for row in self.tables.get(table, [])]
        if columns is None:
            return rows
        for name in columns:
            table.column(name)  # a column of the table
        return [{name: row[name] for name in columns} for row in rows]

    def write_table(
        self,
        table: Table,
        rows: Iterable[Row],
        mode: WriteMode = WriteMode.OVERWRITE,
        *,
        where: Replace | None = None,
    ) -> int:
        if where is not None and mode is not WriteMode.OVERWRITE:
            raise ValueError(f"a replacement of {table.id} by {where.column} must be an OVERWRITE")
        if mode is WriteMode.MERGE_NEW and not table.primary_key:
            raise ValueError(f"{table.id} has no primary key to merge new rows on")
        new = [_copy(table, row) for row in rows]
        if not new and mode in (WriteMode.APPEND, WriteMode.MERGE_NEW):
            return 0  # nothing to add: no commit (an absent table stays absent)
        current = self.tables.get(table, [])
        if where is not None:
            outside = [row for row in new if row[where.column] not in where.values]
            if outside:
                raise ValueError(f"a row of {table.id} is outside the rows it replaces")
            kept = [row for row in current if row[where.column] not in where.values]
            self.tables[table] = kept + new
        elif mode is WriteMode.MERGE_NEW:
            known = {table.key_of(row) for row in current}
            added = []
            for row in new:
                if table.key_of(row) not in known:
                    known.add(table.key_of(row))
                    added.append(row)
            self.tables[table] = current + added
            return len(added)
        elif mode is WriteMode.APPEND:
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
    copied = {name: _value(row.get(name)) for name in table.column_names}
    if table.partition_by is not None and copied[table.partition_by] == "":
        copied[table.partition_by] = None  # Delta's null partition
    return copied


def _value(value: object) -> object:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value
