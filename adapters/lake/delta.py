"""The lake's tables as Delta tables, read and written with the `deltalake` package (no JVM).

Each declared table is a Delta table in its folder `<root>/<layer>/<name>`: parquet files plus a
`_delta_log/` of commits. Every write is one commit, so a reader sees the version before it or
the one after, and a writer killed mid-way leaves files no commit names (invisible; `vacuum`
removes them). The Spark engine reads and writes the same tables through delta-spark: the
tables keep to the protocol both support (reader 1 / writer 2: no deletion vectors, no column
mapping, no timestamp_ntz). A table that was never written reads as no rows.
"""

from __future__ import annotations

import contextlib
import errno
import math
import operator
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError

from adapters.lake.schemas import arrow_schema
from finops_core.contracts import LogicalType
from finops_core.lake import LakeLayout
from finops_core.tables import Replace, Row, Table, WriteMode

__all__ = ["DeltaLake", "delta_tables", "vacuum"]

DELTA_LOG = "_delta_log"
# Delta's default retention of removed files (delta.deletedFileRetentionDuration): 7 days.
DEFAULT_RETENTION_HOURS = 168.0
# How the deltalake package reports the OS error under its own (DeltaError) exceptions.
_OS_ERROR = re.compile(r"\(os error (\d+)\)|Os \{ code: (\d+)")


class DeltaLake:
    def __init__(self, layout: LakeLayout) -> None:
        self.layout = layout

    def landing_files(self, pattern: str) -> list[str]:
        root = self.layout.landing
        return sorted(str(p.relative_to(root)) for p in root.glob(pattern) if p.is_file())

    def read_landing(self, relative_path: str) -> bytes:
        return (self.layout.landing / relative_path).read_bytes()

    def has_table(self, table: Table) -> bool:
        """Whether the table has been committed (it may hold no rows)."""
        return DeltaTable.is_deltatable(str(self.layout.table(table)))

    def read_table(
        self, table: Table, columns: Sequence[str] | None = None
    ) -> list[dict[str, object]]:
        """Every row of the current version, keyed by the table's columns in order (only
        `columns`, in that order, when given)."""
        return list(self.scan(table, columns))

    def scan(
        self, table: Table, columns: Sequence[str] | None = None
    ) -> Iterator[dict[str, object]]:
        """The rows of the current version, batch by batch, in no particular order."""
        names = list(table.column_names if columns is None else columns)
        for name in names:
            table.column(name)  # a column of the table
        if not self.has_table(table):
            return
        maps = set(_map_columns(table))
        path = self.layout.table(table)
        with _os_errors(path):
            dataset = DeltaTable(str(path)).to_pyarrow_dataset()
            for batch in dataset.to_batches(columns=names):
                # Column by column: Arrow converts a whole column to Python values at once.
                values = [
                    _column_values(batch.column(index), name in maps)
                    for index, name in enumerate(names)
                ]
                for record in zip(*values, strict=True):
                    yield dict(zip(names, record, strict=True))

    def write_table(
        self,
        table: Table,
        rows: Iterable[Row],
        mode: WriteMode = WriteMode.OVERWRITE,
        *,
        where: Replace | None = None,
    ) -> int:
        """One commit of `rows`; the rows written (for MERGE_NEW, the rows added)."""
        if where is not None and mode is not WriteMode.OVERWRITE:
            raise ValueError(f"a replacement of {table.id} by {where.column} must be an OVERWRITE")
        encoded = _encoded(table, rows)
        if mode is WriteMode.MERGE_NEW:
            encoded = _first_of_each_key(table, encoded)
        if where is not None:
            _check_replaced(table, where, encoded)
        schema = arrow_schema(table)
        data = pa.Table.from_arrays(
            [pa.array(encoded[field.name], type=field.type) for field in schema], schema=schema
        )
        path = self.layout.table(table)
        with _os_errors(path):
            return self._commit(table, str(path), data, mode, where)

    def _commit(
        self, table: Table, path: str, data: pa.Table, mode: WriteMode, where: Replace | None
    ) -> int:
        partition_by = [table.partition_by] if table.partition_by else None
        written = int(data.num_rows)
        if not written and mode in (WriteMode.APPEND, WriteMode.MERGE_NEW):
            return 0  # nothing to add: no commit (an absent table stays absent)
        if not DeltaTable.is_deltatable(path):
            # The first write creates the table from its declaration, whatever the mode.
            write_deltalake(path, data, mode="overwrite", partition_by=partition_by)
            return written
        if mode is WriteMode.APPEND:
            write_deltalake(path, data, mode="append", partition_by=partition_by)
            return written
        if mode is WriteMode.MERGE_NEW:
            matched = " AND ".join(f't."{key}" = s."{key}"' for key in table.primary_key)
            metrics = (
                DeltaTable(path)
                .merge(data, matched, source_alias="s", target_alias="t")
                .when_not_matched_insert_all()
                .execute()
            )
            return int(metrics["num_target_rows_inserted"])
        if where is not None:
            predicate = _is_one_of(table, where.column, where.values)
        elif mode is WriteMode.OVERWRITE_PARTITIONS and table.partition_by is not None:
            predicate = _is_one_of(table, table.partition_by, data[table.partition_by].to_pylist())
        else:
            write_deltalake(
                path, data, mode="overwrite", partition_by=partition_by, schema_mode="overwrite"
            )
            return written
        if predicate is None:
            return 0  # no value given: no row is replaced
        if written:
            write_deltalake(
                path, data, mode="overwrite", partition_by=partition_by, predicate=predicate
            )
        else:
            DeltaTable(path).delete(predicate)  # the rows replaced by none: one commit
        return written


def delta_tables(layout: LakeLayout) -> dict[str, Path]:
    """Every Delta table below the lake's root (a folder holding a `_delta_log/`), by its path
    relative to the root (`layer/name` for a declared table)."""
    root = layout.root
    if not root.is_dir():
        return {}
    found: dict[str, Path] = {}
    for folder, children, _files in os.walk(root):
        if DELTA_LOG in children:
            here = Path(folder)
            found[here.relative_to(root).as_posix()] = here
            children.clear()  # a Delta table holds no other table
        else:
            children[:] = sorted(child for child in children if not child.startswith("."))
    return dict(sorted(found.items()))


def vacuum(
    layout: LakeLayout, retention_hours: float = DEFAULT_RETENTION_HOURS, dry_run: bool = False
) -> dict[str, int]:
    """Delete, in every Delta table of the lake, the files no version younger than
    `retention_hours` needs (old versions' files, and files a killed writer left that no commit
    names); returns the files removed (or, with `dry_run`, that would be) per table.

    Time travel to a version older than the retention is lost. A retention shorter than Delta's
    default (168 h) is honoured as given: the caller holds the lake's lock, so no writer is
    midway through a commit whose files a short retention would remove.
    """
    if retention_hours < 0:
        raise ValueError(f"a retention of {retention_hours} hours is negative")
    hours = math.ceil(retention_hours)  # the package counts whole hours: round towards keeping
    removed: dict[str, int] = {}
    for table_id, path in delta_tables(layout).items():
        with _os_errors(path):
            table = DeltaTable(str(path))

            def run(dry: bool, table: DeltaTable = table) -> list[str]:
                return table.vacuum(
                    retention_hours=hours,
                    dry_run=dry,
                    enforce_retention_duration=hours >= DEFAULT_RETENTION_HOURS,
                    full=True,  # also the files no commit names (a killed writer's)
                )

            # The package lists a removed file again while its tombstone is in the log: count
            # the files still there.
            present = [f for f in run(True) if (path / f).exists()]
            if present and not dry_run:
                run(False)
        removed[table_id] = len(present)
    return removed


@contextlib.contextmanager
def _os_errors(path: Path) -> Iterator[None]:
    """The deltalake package's errors that are OS errors, raised as OSError (a full disk, a
    folder not writable), so the entry points report them as they report any file error."""
    try:
        yield
    except (DeltaError, OSError) as error:
        # An OSError the package raises itself carries no errno, only the chain in its text.
        if isinstance(error, OSError) and error.errno is not None:
            raise
        found = _OS_ERROR.search(str(error))
        if found is None:
            raise
        code = int(found.group(1) or found.group(2))
        # A full disk names no file (the entry points then name the lake); others the table.
        filename = None if code in (errno.ENOSPC, errno.EDQUOT) else str(path)
        raise OSError(code, os.strerror(code), filename) from error


def _encoded(table: Table, rows: Iterable[Row]) -> dict[str, list[object]]:
    """Rows as the columns arrow builds, by column name: a map column's dicts as (key, value)
    pairs; an empty partition text as null (Delta's null partition, as Spark writes it)."""
    names = table.column_names
    materialised = rows if isinstance(rows, list) else list(rows)
    getter = operator.itemgetter(*names)  # one name: the value itself, not a 1-tuple
    row_values = getter if len(names) > 1 else lambda row: (getter(row),)
    try:
        # Every column in every row (what the engines write): each row's values taken in one C
        # call, then transposed in one, instead of a `get` per value.
        values = list(map(row_values, materialised))
    except KeyError:  # a row lacking a column: null there
        values = [tuple(row.get(name) for name in names) for row in materialised]
    transposed = list(zip(*values, strict=True)) or [() for _ in names]
    columns = {name: list(column) for name, column in zip(names, transposed, strict=True)}
    for name in _map_columns(table):
        columns[name] = [
            list(value.items()) if isinstance(value, dict) else value for value in columns[name]
        ]
    if table.partition_by is not None:
        partition = table.partition_by
        columns[partition] = [None if value == "" else value for value in columns[partition]]
    return columns


def _first_of_each_key(table: Table, columns: dict[str, list[object]]) -> dict[str, list[object]]:
    if not table.primary_key:
        raise ValueError(f"{table.id} has no primary key to merge new rows on")
    seen: set[tuple[object, ...]] = set()
    kept = []
    for index, key in enumerate(zip(*(columns[name] for name in table.primary_key), strict=True)):
        if key not in seen:
            seen.add(key)
            kept.append(index)
    if len(kept) == len(columns[table.primary_key[0]]):
        return columns
    return {name: [values[index] for index in kept] for name, values in columns.items()}


def _check_replaced(table: Table, where: Replace, columns: dict[str, list[object]]) -> None:
    table.column(where.column)  # a column of the table
    for value in columns[where.column]:
        if value not in where.values:
            raise ValueError(
                f"a row of {table.id} with {where.column}={value!r} is outside the "
                f"rows it replaces ({where.column} in {sorted(where.values)})"
            )


def _is_one_of(table: Table, column: str, values: Iterable[object]) -> str | None:
    """A Delta predicate: `column` is one of `values` (null among them: or is null); None when
    `values` is empty (no row matches)."""
    distinct = set(values)
    if not distinct:
        return None
    logical_type = table.column(column).type
    texts = sorted(_literal(value, logical_type) for value in distinct if value is not None)
    parts = [f'"{column}" IN ({", ".join(texts)})'] if texts else []
    if None in distinct:
        parts.append(f'"{column}" IS NULL')
    return " OR ".join(parts)


def _literal(value: object, logical_type: LogicalType) -> str:
    if logical_type in (LogicalType.INTEGER, LogicalType.FLOAT):
        return repr(value)
    if logical_type is LogicalType.BOOLEAN:
        return "true" if value else "false"
    text = value.isoformat() if logical_type is LogicalType.DATE else str(value)  # type: ignore[attr-defined]
    return "'" + text.replace("'", "''") + "'"


def _map_columns(table: Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.columns if c.type is LogicalType.COUNT_MAP)


def _column_values(column: pa.Array, is_map: bool) -> list[object]:
    """A column read back as Python values; a map column's (key, value) pairs as a dict, keys
    sorted."""
    values: list[object] = column.to_pylist()
    if is_map:
        return [dict(sorted(value)) if isinstance(value, list) else value for value in values]
    return values
