"""An in-memory lake: tables are lists of dicts, landing is a dict of bytes. For tests."""

from __future__ import annotations

import fnmatch

from finops_core.lake import LakeLayout


class InMemoryLake:
    def __init__(
        self, landing: dict[str, bytes] | None = None, layout: LakeLayout | None = None
    ) -> None:
        self.layout = layout or LakeLayout("memory-lake")
        self.landing = dict(landing or {})
        self.tables: dict[tuple[str, str], list[dict[str, object]]] = {}

    def landing_files(self, pattern: str) -> list[str]:
        return sorted(name for name in self.landing if fnmatch.fnmatch(name, pattern))

    def read_landing(self, relative_path: str) -> bytes:
        return self.landing[relative_path]

    def has_table(self, layer: str, table: str) -> bool:
        return (layer, table) in self.tables

    def read_table(self, layer: str, table: str) -> list[dict[str, object]]:
        return [dict(row) for row in self.tables.get((layer, table), [])]

    def write_table(
        self,
        layer: str,
        table: str,
        rows: list[dict[str, object]],
        partition_by: str | None = None,
        mode: str = "overwrite",
    ) -> int:
        current = self.tables.get((layer, table), [])
        if mode == "append":
            self.tables[(layer, table)] = current + [dict(r) for r in rows]
        elif mode == "overwrite_partitions" and partition_by:
            replaced = {row[partition_by] for row in rows}
            kept = [row for row in current if row[partition_by] not in replaced]
            self.tables[(layer, table)] = kept + [dict(r) for r in rows]
        else:
            self.tables[(layer, table)] = [dict(r) for r in rows]
        return len(rows)
