"""`SqliteServingStore`: the embedded default serving store, one SQLite file inside the lake.

It knows no mart: the DDL and the row codec of every `ServingTable` are derived from the table's
declaration by one type map (`_TYPES`). Dates and timestamps are ISO text (their text order is
their time order; timestamps are written in UTC), lists and count maps are JSON text with sorted
keys, booleans are 0/1, floats are REAL (8-byte IEEE, so every value round-trips exactly). The
table is keyed by partition + clustering key, WITHOUT ROWID (the rows are stored in key order, so
a slice of one partition is a range of the primary key); each `ValueIndex` that the primary key
does not already lead with gets a SQL index. `finops_core.queries` turns slices into answers.

A load (`replace`) is one transaction: in WAL mode readers keep reading the previous rows until
it commits, and a killed load leaves them as they were.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs

from finops_core.contracts import Column, LogicalType
from finops_core.errors import ServingUnavailable
from finops_core.ports import PartitionSink, StoreDescription
from finops_core.serving import SERVING_TABLES, ServingTable
from finops_core.tables import Row, count_map, text_list, text_set

# 2: the DDL is derived from the declarations (index named after its ValueIndex, no column
# DEFAULT); 3: the revenue, tickets and GenAI tables (version 2's tables unchanged); 4: the cost
# anomalies table (version 3's unchanged). Files of an older version are upgraded in place when
# opened with create_schema.
SCHEMA_VERSION = 4
VERSION_TABLE = "schema_version"
_CHUNK = 10_000


def _utc_text(value: Any) -> str:
    stamp = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.timezone.utc)
    return stamp.isoformat()


def _date_text(value: Any) -> str:
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    return day.isoformat()


@attrs.frozen
class _Codec:
    """How one logical type is declared, written and read back."""

    sql: str
    encode: Callable[[Any], object]
    decode: Callable[[Any], object]


_TEXT = _Codec("TEXT", str, str)
_TYPES: Mapping[LogicalType, _Codec] = {
    LogicalType.STRING: _TEXT,
    LogicalType.JSON: _TEXT,
    LogicalType.NUMERIC_TEXT: _TEXT,
    LogicalType.INTEGER: _Codec("INTEGER", int, int),
    LogicalType.FLOAT: _Codec("REAL", float, float),
    LogicalType.BOOLEAN: _Codec("INTEGER", lambda v: int(bool(v)), bool),
    LogicalType.DATE: _Codec("TEXT", _date_text, lambda v: dt.date.fromisoformat(v)),
    LogicalType.TIMESTAMP: _Codec("TEXT", _utc_text, lambda v: dt.datetime.fromisoformat(v)),
    LogicalType.STRING_LIST: _Codec(
        "TEXT", lambda v: json.dumps(text_list(v)), lambda v: text_list(json.loads(v))
    ),
    LogicalType.STRING_SET: _Codec(
        "TEXT", lambda v: json.dumps(text_set(v)), lambda v: text_set(json.loads(v))
    ),
    LogicalType.COUNT_MAP: _Codec(
        "TEXT", lambda v: json.dumps(count_map(v)), lambda v: count_map(json.loads(v))
    ),
}


def _codec(column: Column) -> _Codec:
    return _TYPES[column.type]


def _encode(column: Column, value: object) -> object:
    return None if value is None else _codec(column).encode(value)


def _decode(column: Column, value: object) -> object:
    return None if value is None else _codec(column).decode(value)


# ---- DDL, derived ------------------------------------------------------------------------------


def column_ddl(column: Column) -> str:
    return f"{column.name} {_codec(column).sql}" + ("" if column.nullable else " NOT NULL")


def index_name(table: ServingTable, index_column: str) -> str:
    return f"{table.name}_{table.index(index_column).name}"


def indexed_columns(table: ServingTable) -> tuple[str, ...]:
    """The ValueIndex columns that need a SQL index: the primary key already orders its first
    column (a WITHOUT ROWID table is stored in key order)."""
    return tuple(i.column for i in table.indexes if i.column != table.primary_key[0])


def table_ddl(table: ServingTable) -> list[str]:
    """CREATE TABLE and CREATE INDEX statements of one serving table."""
    columns = ",\n    ".join(column_ddl(c) for c in table.source.columns)
    statements = [
        f"CREATE TABLE IF NOT EXISTS {table.name} (\n    {columns},\n"
        f"    PRIMARY KEY ({', '.join(table.primary_key)})\n) WITHOUT ROWID"
    ]
    for column in indexed_columns(table):
        order = " DESC" if table.index(column).descending else ""
        statements.append(
            f"CREATE INDEX IF NOT EXISTS {index_name(table, column)} "
            f"ON {table.name} ({column}{order})"
        )
    return statements


def schema_ddl(tables: Sequence[ServingTable] = SERVING_TABLES) -> list[str]:
    return [
        *(statement for table in tables for statement in table_ddl(table)),
        f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} "
        "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    ]


def upsert_sql(table: ServingTable) -> str:
    names = table.columns
    key = table.primary_key
    others = [name for name in names if name not in key]
    conflict = (
        "DO UPDATE SET " + ", ".join(f"{name} = excluded.{name}" for name in others)
        if others
        else "DO NOTHING"
    )
    return (
        f"INSERT INTO {table.name} ({', '.join(names)}) "
        f"VALUES ({', '.join('?' for _ in names)}) ON CONFLICT ({', '.join(key)}) {conflict}"
    )


def _stale_indexes(connection: sqlite3.Connection, table: ServingTable) -> list[str]:
    """Indexes of a served table that the declarations no longer derive (an older version's)."""
    wanted = {index_name(table, column) for column in indexed_columns(table)}
    found = connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        (table.name,),
    )
    return sorted(name for (name,) in found if name not in wanted)


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _open_existing(path: Path) -> sqlite3.Connection:
    """A connection to the existing file: read-write (WAL) when this process may write it;
    otherwise (a lake of another owner, a read-only mount) read-only, and if SQLite cannot
    even keep its WAL index beside the file, `immutable`: the file is read as it is, without
    locks, which is right for a file nobody can write through this path."""
    uri = path.resolve().as_uri()
    try:
        connection = sqlite3.connect(f"{uri}?mode=rw", uri=True)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        return connection
    except sqlite3.OperationalError:
        pass
    for options in ("mode=ro", "mode=ro&immutable=1"):
        connection = sqlite3.connect(f"{uri}?{options}", uri=True)
        try:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return connection
        except sqlite3.OperationalError:
            connection.close()
    raise sqlite3.OperationalError(f"cannot read {path}")


class SqliteServingStore:
    """The ServingStore over one SQLite file (WAL mode).

    With `create_schema` (loads) the file and the tables of every `SERVING_TABLES` entry are
    created if missing; without it (queries) a missing file is a ServingUnavailable and nothing
    is created.
    """

    kind = "sqlite"

    def __init__(
        self,
        path: Path | str,
        *,
        create_schema: bool = True,
        tables: Sequence[ServingTable] = SERVING_TABLES,
    ) -> None:
        self.path = Path(path)
        if not create_schema and not self.path.is_file():
            raise ServingUnavailable(
                f"There is no SQLite serving store at {self.path}; run `finops load` first."
            )
        try:
            if create_schema:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._connection = sqlite3.connect(self.path)
                self._connection.execute("PRAGMA journal_mode = WAL")
                self._connection.execute("PRAGMA synchronous = NORMAL")
                self._apply_schema(tables)
            else:  # never create the file, even if it vanished since the check above
                self._connection = _open_existing(self.path)
        except (OSError, sqlite3.Error) as error:
            raise ServingUnavailable(
                f"Cannot open the SQLite serving store at {self.path} ({error}); check that the "
                "lake folder is writable."
            ) from error

    def _apply_schema(self, tables: Sequence[ServingTable]) -> None:
        with self._connection:  # one transaction
            for statement in schema_ddl(tables):
                self._connection.execute(statement)
            for table in tables:
                for stale in _stale_indexes(self._connection, table):
                    self._connection.execute(f"DROP INDEX {stale}")
            self._connection.execute(
                f"INSERT OR REPLACE INTO {VERSION_TABLE} (component, version) VALUES (?, ?)",
                ("serving", SCHEMA_VERSION),
            )

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> SqliteServingStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def describe(self) -> StoreDescription:
        expected = (*(table.name for table in SERVING_TABLES), VERSION_TABLE)
        found = {
            str(row[0])
            for row in self._query("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        version = None
        if VERSION_TABLE in found:
            rows = self._query(
                f"SELECT version FROM {VERSION_TABLE} WHERE component = ?", ("serving",)
            )
            version = int(rows[0][0]) if rows else None
        return StoreDescription(
            kind=self.kind,
            where=str(self.path),
            server=f"SQLite {sqlite3.sqlite_version} (journal mode {self.journal_mode})",
            namespace=str(self.path),
            tables=tuple(name for name in expected if name in found),
            missing=tuple(name for name in expected if name not in found),
            schema_version=version,
        )

    @property
    def journal_mode(self) -> str:
        return str(self._connection.execute("PRAGMA journal_mode").fetchone()[0])

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._connection.execute(sql, params).fetchall()
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                raise ServingUnavailable(
                    f"The SQLite serving store at {self.path} has no serving tables ({error}); "
                    "run `finops load` first."
                ) from None
            raise

    # -- ServingStore ------------------------------------------------------------------------

    def upsert(self, table: ServingTable, rows: Iterable[Row]) -> int:
        columns = table.source.columns
        sql = upsert_sql(table)
        count = 0
        for chunk in _chunks(rows, _CHUNK):
            params = [tuple(_encode(c, row[c.name]) for c in columns) for row in chunk]
            with self._connection:  # one transaction per chunk
                self._connection.executemany(sql, params)
            count += len(chunk)
        return count

    def replace(self, table: ServingTable, rows: Iterable[Row]) -> int:
        """A load in ONE transaction: the table's rows are deleted and `rows` upserted, then it
        commits. In WAL mode a reader sees the previous rows until the commit, then the new
        ones; a load killed before its commit leaves the previous rows (SQLite rolls it back)."""
        columns = table.source.columns
        sql = upsert_sql(table)
        count = 0
        try:
            with self._connection:  # one transaction: committed at the end, rolled back on error
                self._connection.execute(f"DELETE FROM {table.name}")
                for chunk in _chunks(rows, _CHUNK):
                    params = [tuple(_encode(c, row[c.name]) for c in columns) for row in chunk]
                    self._connection.executemany(sql, params)
                    count += len(chunk)
        except sqlite3.OperationalError as error:
            raise ServingUnavailable(
                f"Cannot load {table.name} into the SQLite serving store at {self.path} "
                f"({error}); the previous rows are kept."
            ) from None
        return count

    def prune(self, table: ServingTable, kept: Iterable[Row]) -> int:
        """Delete the rows whose primary key `kept` lacks, in one transaction."""
        key = table.primary_key
        source = table.source
        keys = {tuple(_encode(source.column(n), row[n]) for n in key) for row in kept}
        held = self._query(f"SELECT {', '.join(key)} FROM {table.name}")
        stale = [record for record in held if tuple(record) not in keys]
        if stale:
            condition = " AND ".join(f"{name} = ?" for name in key)
            with self._connection:
                self._connection.executemany(f"DELETE FROM {table.name} WHERE {condition}", stale)
        return len(stale)

    def read_slice(
        self,
        table: ServingTable,
        partition: tuple[object, ...],
        start: tuple[object, ...] = (),
        end: tuple[object, ...] = (),
        *,
        columns: tuple[str, ...] | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[dict[str, object]]:
        source = table.source
        names = columns or table.columns
        clustering = table.clustering_key
        conditions = [f"{name} = ?" for name in table.partition_key]
        params = [
            _encode(source.column(n), v)
            for n, v in zip(table.partition_key, partition, strict=True)
        ]
        for bound, operator in ((start, ">="), (end, "<=")):
            if bound:
                prefix = clustering[: len(bound)]
                conditions.append(
                    f"({', '.join(prefix)}) {operator} ({', '.join('?' for _ in prefix)})"
                )
                params.extend(
                    _encode(source.column(n), v) for n, v in zip(prefix, bound, strict=True)
                )
        order = " DESC" if descending else ""
        sql = (
            f"SELECT {', '.join(names)} FROM {table.name} WHERE {' AND '.join(conditions)} "
            f"ORDER BY {', '.join(name + order for name in clustering)}"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        decoders = [source.column(name) for name in names]
        return [
            {c.name: _decode(c, value) for c, value in zip(decoders, record, strict=True)}
            for record in self._query(sql, params)
        ]

    def index_values(
        self, table: ServingTable, column: str, limit: int | None = None
    ) -> list[object]:
        index = table.index(column)
        declared = table.source.column(column)
        sql = (
            f"SELECT DISTINCT {column} FROM {table.name} "
            f"ORDER BY {column}{' DESC' if index.descending else ''}"
        )
        params: list[object] = []
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_decode(declared, value) for (value,) in self._query(sql, params)]

    def count(self, table: ServingTable) -> int:
        (total,) = self._query(f"SELECT COUNT(*) FROM {table.name}")[0]
        return int(total)

    def partition_sink(self, table: ServingTable) -> PartitionSink | None:
        """None: an embedded file is written from this process only."""
        return None
