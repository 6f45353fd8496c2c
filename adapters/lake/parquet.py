"""The on-disk parquet lake, read and written with pyarrow (the pure-Python engine's storage).

Partitioned tables use hive folders (`usage_date=2025-07-03/`), the same layout Spark writes, so
the two engines' outputs can be compared file for file.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from adapters.lake import schemas
from finops_core.contracts import MASTER_SOURCES
from finops_core.lake import (
    BRONZE_EVENTS,
    BRONZE_PARTITION,
    GOLD_DAILY,
    QUARANTINE_EVENTS,
    SILVER_EVENTS,
    SILVER_PARTITION,
    LakeLayout,
)

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


def table_schema(layer: str, table: str) -> tuple[pa.Schema, str | None]:
    """(schema without the partition column, partition column) of a lake table."""
    from adapters.lake.gold import GOLD_SCHEMA

    if layer == "bronze" and table == BRONZE_EVENTS:
        return schemas.BRONZE_EVENTS_SCHEMA, BRONZE_PARTITION
    if layer == "silver" and table == SILVER_EVENTS:
        return schemas.SILVER_EVENTS_SCHEMA, SILVER_PARTITION
    if layer == "quarantine" and table == QUARANTINE_EVENTS:
        return schemas.QUARANTINE_SCHEMA, None
    if layer == "gold" and table == GOLD_DAILY:
        return GOLD_SCHEMA, SILVER_PARTITION
    for contract in MASTER_SOURCES:
        if table == contract.name and layer == "bronze":
            return schemas.bronze_master_schema(contract), None
        if table == contract.name and layer == "silver":
            return schemas.silver_master_schema(contract), None
    raise KeyError(f"no schema for {layer}/{table}")


class ParquetLake:
    def __init__(self, layout: LakeLayout) -> None:
        self.layout = layout

    def _path(self, layer: str, table: str) -> Path:
        return self.layout.root / layer / table

    def landing_files(self, pattern: str) -> list[str]:
        root = self.layout.landing
        return sorted(str(p.relative_to(root)) for p in root.glob(pattern) if p.is_file())

    def read_landing(self, relative_path: str) -> bytes:
        return (self.layout.landing / relative_path).read_bytes()

    def has_table(self, layer: str, table: str) -> bool:
        path = self._path(layer, table)
        return path.exists() and any(path.rglob("*.parquet"))

    def read_table(self, layer: str, table: str) -> list[dict[str, object]]:
        path = self._path(layer, table)
        if not self.has_table(layer, table):
            return []
        schema, partition = table_schema(layer, table)
        files = sorted(
            str(p)
            for p in path.rglob("*.parquet")
            if not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        rows: list[dict[str, object]] = []
        for file in files:
            table_rows = _maps_to_dicts(pq.read_table(file, schema=schema).to_pylist(), schema)
            if partition:
                folder = Path(file).parent.name
                value = folder.split("=", 1)[1] if "=" in folder else None
                parsed: object = None if value in (None, NULL_PARTITION) else value
                if partition == SILVER_PARTITION and isinstance(parsed, str):
                    parsed = dt.date.fromisoformat(parsed)
                for row in table_rows:
                    row[partition] = parsed
            rows.extend(table_rows)
        return rows

    def write_table(
        self,
        layer: str,
        table: str,
        rows: list[dict[str, object]],
        partition_by: str | None = None,
        mode: str = "overwrite",
    ) -> int:
        schema, partition = table_schema(layer, table)
        partition = partition_by or partition
        rows = _dicts_to_maps(rows, schema)
        path = self._path(layer, table)
        if partition is None:
            data = pa.Table.from_pylist(rows, schema=schema)
            if mode == "append":
                path.mkdir(parents=True, exist_ok=True)
                if data.num_rows:
                    pq.write_table(data, path / f"part-{uuid.uuid4().hex}.parquet")
            else:
                _swap_in(path, data)
            return data.num_rows
        groups: dict[str, list[dict[str, object]]] = {}
        for row in rows:
            value = row.get(partition)
            key = (
                NULL_PARTITION
                if value is None
                else (value.isoformat() if isinstance(value, dt.date) else str(value))
            )
            groups.setdefault(key, []).append(row)
        if mode == "overwrite":
            shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)
        for key, group in sorted(groups.items()):
            data = pa.Table.from_pylist(group, schema=schema)
            target = path / f"{partition}={key}"
            if mode == "append":
                target.mkdir(parents=True, exist_ok=True)
                pq.write_table(data, target / f"part-{uuid.uuid4().hex}.parquet")
            else:
                _swap_in(target, data)
        return len(rows)


def _swap_in(directory: Path, data: pa.Table) -> None:
    """Replace a folder's content with one parquet file, via a staging folder and a rename."""
    staging = directory.with_name(f".{directory.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pq.write_table(data, staging / "part-00000.parquet")
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)


def _map_fields(schema: pa.Schema) -> list[str]:
    return [field.name for field in schema if pa.types.is_map(field.type)]


def _dicts_to_maps(rows: list[dict[str, object]], schema: pa.Schema) -> list[dict[str, object]]:
    """Arrow builds a map from (key, value) pairs: turn dict values of map columns into pairs."""
    names = _map_fields(schema)
    if not names:
        return rows
    return [
        {k: (list(v.items()) if k in names and isinstance(v, dict) else v) for k, v in row.items()}
        for row in rows
    ]


def _maps_to_dicts(rows: list[dict[str, object]], schema: pa.Schema) -> list[dict[str, object]]:
    for name in _map_fields(schema):
        for row in rows:
            value = row.get(name)
            row[name] = dict(value) if isinstance(value, list) else value
    return rows
