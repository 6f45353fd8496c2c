"""The on-disk parquet lake, read and written with pyarrow (the pure-Python engine's storage).

Each declared table is a folder `<root>/<layer>/<name>`. A partitioned table has one hive folder
per value of its partition column (`usage_date=2025-07-03/`, the null value as
`__HIVE_DEFAULT_PARTITION__`), the layout Spark writes, so the two engines' outputs can be
compared file for file. An overwrite swaps in one part file per folder through a staging folder
and a rename; an append adds a part file.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq

from adapters.lake.schemas import ARROW_TYPES, arrow_schema
from finops_core.contracts import LogicalType
from finops_core.lake import LakeLayout
from finops_core.tables import Row, Table, WriteMode

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
# Folders and files below a table that hold no data: staging folders, Spark's _temporary.
HIDDEN_PREFIXES = (".", "_")
# The characters Spark escapes (%XX) in a partition folder name.
_ESCAPED = frozenset({*map(chr, range(0x01, 0x20)), *"\"#%'*/:=?\\\x7f{[]^"})

_PARTITION_VALUES: dict[LogicalType, Callable[[str], object]] = {
    LogicalType.STRING: str,
    LogicalType.JSON: str,
    LogicalType.NUMERIC_TEXT: str,
    LogicalType.INTEGER: int,
    LogicalType.BOOLEAN: lambda text: text.lower() == "true",
    LogicalType.DATE: dt.date.fromisoformat,
}


def data_files(folder: Path) -> list[Path]:
    """The parquet files of a table folder, sorted; hidden folders and files are not data."""
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.rglob("*.parquet")
        if not any(part.startswith(HIDDEN_PREFIXES) for part in path.relative_to(folder).parts)
    )


def has_parquet(folder: Path) -> bool:
    """Whether a table folder holds at least one data file."""
    return bool(data_files(folder))


def partition_text(value: object) -> str:
    """A partition value as its hive folder text (Spark's escaping; null and "" are the null
    partition)."""
    if value is None or value == "":
        return NULL_PARTITION
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        text = value.isoformat()
    else:
        text = str(value)
    return "".join(f"%{ord(c):02X}" if c in _ESCAPED else c for c in text)


def partition_value(text: str, logical_type: LogicalType) -> object:
    """A hive folder's text parsed by the partition column's logical type."""
    if text == NULL_PARTITION:
        return None
    parse = _PARTITION_VALUES.get(logical_type)
    if parse is None:
        raise ValueError(f"a {logical_type.value} column cannot partition a parquet table")
    return parse(unquote(text))


class ParquetLake:
    def __init__(self, layout: LakeLayout) -> None:
        self.layout = layout

    def landing_files(self, pattern: str) -> list[str]:
        root = self.layout.landing
        return sorted(str(p.relative_to(root)) for p in root.glob(pattern) if p.is_file())

    def read_landing(self, relative_path: str) -> bytes:
        return (self.layout.landing / relative_path).read_bytes()

    def has_table(self, table: Table) -> bool:
        return has_parquet(self.layout.table(table))

    def read_table(self, table: Table) -> list[dict[str, object]]:
        """Every row, file by file (partitions in folder order), keyed by the table's columns."""
        root = self.layout.table(table)
        schema = arrow_schema(table)
        maps = _map_columns(table)
        rows: list[dict[str, object]] = []
        for file in data_files(root):
            data = pq.read_table(file, schema=schema)
            if table.partition_by is not None:
                data = _with_partition(table, data, _partition_of(table, file.relative_to(root)))
            records = data.to_pylist()
            for name in maps:
                for record in records:
                    record[name] = _as_dict(record[name])
            rows.extend(records)
        return rows

    def write_table(
        self, table: Table, rows: Iterable[Row], mode: WriteMode = WriteMode.OVERWRITE
    ) -> int:
        schema = arrow_schema(table)
        root = self.layout.table(table)
        maps = _map_columns(table)
        encoded = [_with_map_entries(row, maps) for row in rows]
        if table.partition_by is None:
            data = pa.Table.from_pylist(encoded, schema=schema)
            if mode is WriteMode.APPEND:
                _append(root, data)
            else:
                _swap_in(root, data)
            return int(data.num_rows)
        groups: dict[str, list[Row]] = {}
        for row in encoded:
            groups.setdefault(partition_text(row.get(table.partition_by)), []).append(row)
        if mode is WriteMode.OVERWRITE:
            shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
        for key, group in sorted(groups.items()):
            data = pa.Table.from_pylist(group, schema=schema)
            target = root / f"{table.partition_by}={key}"
            if mode is WriteMode.APPEND:
                _append(target, data)
            else:
                _swap_in(target, data)
        return len(encoded)


def _partition_of(table: Table, relative: Path) -> object:
    if table.partition_by is None:
        return None
    prefix = f"{table.partition_by}="
    for part in relative.parts[:-1]:
        if part.startswith(prefix):
            return partition_value(part[len(prefix) :], table.column(table.partition_by).type)
    return None


def _with_partition(table: Table, data: pa.Table, value: object) -> pa.Table:
    """The file's rows with the partition column put back in its place."""
    assert table.partition_by is not None
    column = table.column(table.partition_by)
    values = pa.repeat(pa.scalar(value, ARROW_TYPES[column.type]), data.num_rows)
    return data.add_column(table.column_names.index(column.name), column.name, values)


def _append(directory: Path, data: pa.Table) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if data.num_rows:
        pq.write_table(data, directory / f"part-{uuid.uuid4().hex}.parquet")


def _swap_in(directory: Path, data: pa.Table) -> None:
    """Replace a folder's content with one parquet file, via a staging folder and a rename."""
    staging = directory.with_name(f".{directory.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pq.write_table(data, staging / "part-00000.parquet")
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)


def _map_columns(table: Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.data_columns if c.type is LogicalType.COUNT_MAP)


def _with_map_entries(row: Row, maps: tuple[str, ...]) -> Row:
    """Arrow builds a map from (key, value) pairs: a dict value of a map column becomes pairs."""
    if not maps:
        return row
    converted = dict(row)
    for name in maps:
        value = converted.get(name)
        if isinstance(value, dict):
            converted[name] = list(value.items())
    return converted


def _as_dict(value: object) -> object:
    """A map column read back (a list of pairs) as a dict, keys sorted."""
    if isinstance(value, list):
        return dict(sorted(value))
    return value
