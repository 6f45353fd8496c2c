"""`CassandraServingStore`: the ServingStore on Cassandra or AstraDB (see `schema` for the keys).

It knows no mart: statements and the row codec of any `ServingTable` are derived from its
declaration (`_CODECS` per logical type). Every read is a slice of one partition (a multi-column
relation on a prefix of the clustering key, never ALLOW FILTERING) or the single partition of an
index table; `finops_core.queries` turns them into answers.

Writes use prepared statements with a bounded number in flight (our own window of execute_async),
rows of one partition grouped into UNLOGGED batches; requests that fail for a transient reason
(timeouts, unavailable replicas, no host) are retried with exponential backoff for a bounded
number of attempts, then a ServingUnavailable names the host(s). Upserts are idempotent: the same
primary key overwrites the same cells. A load (`replace`, or partition sinks then `prune`)
upserts, then deletes the rows and index values the load did not write: Cassandra has no
multi-partition transaction, so a reader may see the new rows beside stale ones until the prune
ends, never a row missing that both the old and the new mart have. `partition_sink` gives a
picklable loader that opens its own session wherever it runs (a Spark executor).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

import attrs

from adapters.cassandra.schema import SCOPE, SCOPE_COLUMN
from adapters.cassandra.settings import CassandraSettings, check_keyspace
from finops_core.contracts import Column, LogicalType
from finops_core.errors import FinopsError, ServingUnavailable
from finops_core.ports import PartitionSink, StoreDescription
from finops_core.serving import ServingTable, ValueIndex, serving_table
from finops_core.tables import Row, count_map, text_list, text_set

if TYPE_CHECKING:
    from cassandra.cluster import Session
    from cassandra.query import PreparedStatement

LOG = logging.getLogger(__name__)
CHUNK_ROWS = 20_000
# One request: a statement and its parameters (None for a batch, which carries its own).
Request = tuple[Any, Any]


@attrs.frozen
class RetryPolicy:
    """Bounded retries with exponential backoff: delay = base * 2**(attempt-1), capped."""

    attempts: int = 5
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))


def _retryable_errors() -> tuple[type[BaseException], ...]:
    from cassandra import OperationTimedOut, ReadTimeout, Unavailable, WriteTimeout
    from cassandra.cluster import NoHostAvailable
    from cassandra.connection import ConnectionException
    from cassandra.protocol import IsBootstrappingErrorMessage, OverloadedErrorMessage

    return (
        OperationTimedOut,
        Unavailable,
        WriteTimeout,
        ReadTimeout,
        NoHostAvailable,
        ConnectionException,
        OverloadedErrorMessage,
        IsBootstrappingErrorMessage,
    )


# ---- the row codec, derived ---------------------------------------------------------------------


def _to_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _date(value: Any) -> dt.date:
    """cassandra.util.Date (or a date) -> datetime.date."""
    return value if isinstance(value, dt.date) else value.date()


def _to_stamp(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


def _stamp(value: Any) -> dt.datetime:
    """The driver reads timestamps as naive UTC: give them back their zone."""
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value


@attrs.frozen
class _Codec:
    encode: Callable[[Any], object]
    decode: Callable[[Any], object]


_TEXT = _Codec(str, str)
_CODECS: Mapping[LogicalType, _Codec] = {
    LogicalType.STRING: _TEXT,
    LogicalType.JSON: _TEXT,
    LogicalType.NUMERIC_TEXT: _TEXT,
    LogicalType.INTEGER: _Codec(int, int),
    LogicalType.FLOAT: _Codec(float, float),
    LogicalType.BOOLEAN: _Codec(bool, bool),
    LogicalType.DATE: _Codec(_to_date, _date),
    LogicalType.TIMESTAMP: _Codec(_to_stamp, _stamp),
    LogicalType.STRING_LIST: _Codec(text_list, text_list),
    LogicalType.STRING_SET: _Codec(text_set, text_set),
    LogicalType.COUNT_MAP: _Codec(count_map, count_map),
}
_EMPTY: Mapping[LogicalType, Callable[[], object]] = {
    LogicalType.STRING_LIST: list,
    LogicalType.STRING_SET: list,
    LogicalType.COUNT_MAP: dict,
}


def _encode(column: Column, value: object) -> object:
    return None if value is None else _CODECS[column.type].encode(value)


def _decode(column: Column, value: object) -> object:
    if value is None:  # an empty collection may read back as null
        empty = _EMPTY.get(column.type)
        return empty() if empty is not None and not column.nullable else None
    return _CODECS[column.type].decode(value)


def _canonical(column: Column, value: object) -> object:
    """A value as this store reads it back, to compare what a load wrote with what is held."""
    return _decode(column, _encode(column, value))


def _pruning_columns(table: ServingTable) -> tuple[str, ...]:
    """The columns a prune compares: the primary key and every indexed column."""
    indexed = tuple(i.column for i in table.indexes if i.column not in table.primary_key)
    return (*table.primary_key, *indexed)


def _chunks(items: Iterable[Row], size: int) -> Iterator[list[Row]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _partition_key_index(table: ServingTable) -> ValueIndex | None:
    """The index that lists the table's partitions (a one-column partition key's index)."""
    for index in table.indexes:
        if (index.column,) == table.partition_key:
            return index
    return None


def session_hosts(session: Session) -> str:
    """The hosts a session talks to, for messages."""
    try:
        hosts = sorted(str(host.endpoint) for host in session.cluster.metadata.all_hosts())
    except Exception:  # metadata may be unavailable once the cluster is gone
        hosts = []
    if not hosts:
        hosts = [str(point) for point in (session.cluster.contact_points or [])]
    return ", ".join(hosts) or "unknown host"


@attrs.frozen
class CassandraPartitionSink:
    """Upserts one partition of rows into a serving table from any process (a Spark executor):
    it opens its own session from the settings, loads with a CassandraServingStore, closes it.

    Picklable: settings (secrets included, never in repr) and plain values only."""

    settings: CassandraSettings
    table: str
    concurrency: int = 100
    batch_rows: int = 20
    chunk_rows: int = CHUNK_ROWS
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)

    def __call__(self, rows: Iterable[Row]) -> int:
        from adapters.cassandra.session import close_session, connect

        table = serving_table(self.table)
        session = connect(self.settings)
        try:
            store = CassandraServingStore(
                session,
                self.settings.keyspace,
                settings=self.settings,
                concurrency=self.concurrency,
                batch_rows=self.batch_rows,
                chunk_rows=self.chunk_rows,
                retry=self.retry,
            )
            return store.upsert(table, rows)
        finally:
            close_session(session)


class CassandraServingStore:
    """The ServingStore over a keyspace that `schema.apply_schema` prepared.

    `settings` are the ones the session was connected with: `partition_sink` needs them to open
    sessions elsewhere (without them it returns None and rows stream through this process).
    """

    def __init__(
        self,
        session: Session,
        keyspace: str,
        *,
        settings: CassandraSettings | None = None,
        concurrency: int = 100,
        batch_rows: int = 20,
        chunk_rows: int = CHUNK_ROWS,
        retry: RetryPolicy | None = None,
        where: str | None = None,
        owns_session: bool = False,
    ) -> None:
        self.session = session
        self.owns_session = owns_session
        self.keyspace = check_keyspace(keyspace)
        self.settings = settings
        self.kind = "astra" if settings is not None and settings.is_astra else "cassandra"
        self.concurrency = concurrency
        self.batch_rows = batch_rows
        self.chunk_rows = chunk_rows
        self.retry = retry or RetryPolicy()
        self._where = where or (settings.hosts if settings is not None else None)
        self._statements: dict[tuple[Hashable, ...], PreparedStatement] = {}

    def close(self) -> None:
        """Shut the session down if this store was given ownership of it."""
        if self.owns_session:
            from adapters.cassandra.session import close_session

            close_session(self.session)

    @property
    def where(self) -> str:
        return self._where or session_hosts(self.session)

    # -- statements (prepared lazily, once per shape) -----------------------------------------

    def _prepared(self, key: tuple[Hashable, ...], cql: Callable[[], str]) -> PreparedStatement:
        """The statement of `key` (its kind, its table, its shape), prepared on first use."""
        if key not in self._statements:
            text = cql()
            what = f"prepare the {key[0]} statement of {key[1]}"
            self._statements[key] = self._with_retry(what, lambda: self._prepare(text))
        return self._statements[key]

    def _prepare(self, cql: str) -> PreparedStatement:
        from cassandra import InvalidRequest

        try:
            return self.session.prepare(cql)
        except InvalidRequest:
            raise ServingUnavailable(
                f"Cassandra at {self.where} has no serving tables in keyspace {self.keyspace}; "
                "run `finops load` first."
            ) from None

    def _insert(self, table: ServingTable) -> PreparedStatement:
        names = table.columns
        return self._prepared(
            ("insert", table.name),
            lambda: (
                f"INSERT INTO {self.keyspace}.{table.name} ({', '.join(names)}) "
                f"VALUES ({', '.join('?' for _ in names)})"
            ),
        )

    def _insert_index(self, index: ValueIndex) -> PreparedStatement:
        return self._prepared(
            ("insert_index", index.name),
            lambda: (
                f"INSERT INTO {self.keyspace}.{index.name} ({SCOPE_COLUMN}, {index.column}) "
                f"VALUES ('{SCOPE}', ?)"
            ),
        )

    def _select_index(self, index: ValueIndex, limited: bool) -> PreparedStatement:
        return self._prepared(
            ("index", index.name, limited),
            lambda: (
                f"SELECT {index.column} FROM {self.keyspace}.{index.name} "
                f"WHERE {SCOPE_COLUMN} = '{SCOPE}'" + (" LIMIT ?" if limited else "")
            ),
        )

    def _select_slice(
        self,
        table: ServingTable,
        names: tuple[str, ...],
        start: int,
        end: int,
        descending: bool,
        limited: bool,
    ) -> PreparedStatement:
        """SELECT names of one partition, clustering prefixes of `start` / `end` columns bounded."""

        def cql() -> str:
            where = [f"{name} = ?" for name in table.partition_key]
            for length, operator in ((start, ">="), (end, "<=")):
                if length:
                    prefix = table.clustering_key[:length]
                    marks = ", ".join("?" for _ in prefix)
                    where.append(f"({', '.join(prefix)}) {operator} ({marks})")
            text = f"SELECT {', '.join(names)} FROM {self.keyspace}.{table.name} WHERE "
            text += " AND ".join(where)
            if descending:
                text += " ORDER BY " + ", ".join(f"{c} DESC" for c in table.clustering_key)
            return text + (" LIMIT ?" if limited else "")

        return self._prepared(("slice", table.name, names, start, end, descending, limited), cql)

    def _count_partition(self, table: ServingTable) -> PreparedStatement:
        return self._prepared(
            ("count", table.name),
            lambda: (
                f"SELECT COUNT(*) FROM {self.keyspace}.{table.name} WHERE "
                + " AND ".join(f"{name} = ?" for name in table.partition_key)
            ),
        )

    # -- what the store is ----------------------------------------------------------------------

    def describe(self) -> StoreDescription:
        from adapters.cassandra.schema import VERSION_TABLE, table_names

        local = self._with_retry(
            "read system.local",
            lambda: self.session.execute(
                "SELECT release_version, data_center FROM system.local"
            ).one(),
        )
        found = {
            str(row.table_name)
            for row in self._with_retry(
                "read the keyspace's tables",
                lambda: list(
                    self.session.execute(
                        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s",
                        (self.keyspace,),
                    )
                ),
            )
        }
        version = None
        if VERSION_TABLE in found:
            row = self._with_retry(
                "read the schema version",
                lambda: self.session.execute(
                    f"SELECT version FROM {self.keyspace}.{VERSION_TABLE} "
                    "WHERE component = 'serving'"
                ).one(),
            )
            version = None if row is None else int(row.version)
        expected = table_names()
        return StoreDescription(
            kind=self.kind,
            where=self.where,
            server=f"Cassandra {local.release_version}, data centre {local.data_center}",
            namespace=self.keyspace,
            tables=tuple(name for name in expected if name in found),
            missing=tuple(name for name in expected if name not in found),
            schema_version=version,
        )

    # -- retries -------------------------------------------------------------------------------

    def _unavailable(self, what: str, error: BaseException) -> ServingUnavailable:
        from cassandra.protocol import OverloadedErrorMessage

        from adapters.cassandra.session import describe_failure

        reason = describe_failure(error)
        advice = (
            "wait, then rerun (loads are idempotent), or raise the database's rate limit"
            if isinstance(error, OverloadedErrorMessage)
            else "check that the node is up, then rerun (loads are idempotent)"
        )
        return ServingUnavailable(
            f"Cassandra at {self.where} failed to {what} after {self.retry.attempts} attempts "
            f"({reason}); {advice}."
        )

    def _with_retry(self, what: str, action: Any) -> Any:
        retryable = _retryable_errors()
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return action()
            except retryable as error:
                if attempt == self.retry.attempts:
                    raise self._unavailable(what, error) from None
                LOG.warning("%s failed (%s), retry %d", what, type(error).__name__, attempt)
                time.sleep(self.retry.delay(attempt))
            except FinopsError:
                raise
            except Exception as error:  # the server refused (unauthorized, invalid request, ...)
                raise ServingUnavailable(
                    f"Cassandra at {self.where} refused to {what} "
                    f"({type(error).__name__}: {error})."
                ) from None
        raise AssertionError("unreachable")

    def _window(
        self,
        requests: Sequence[Request],
        indexes: Sequence[int],
        results: list[Any] | None,
    ) -> tuple[list[int], BaseException | None]:
        """Run requests[i] for i in indexes with at most `concurrency` in flight.

        Our own window of execute_async (not execute_concurrent, whose callback chain recurses
        and breaks when every request fails at once, e.g. while the node is down). Submission
        stops at the first failure: what is left is returned with the failed ones for a retry.
        """
        slots = threading.BoundedSemaphore(self.concurrency)
        lock = threading.Lock()
        failed: list[int] = []
        errors: list[BaseException] = []

        def succeeded(rows: Any, index: int) -> None:
            if results is not None:
                results[index] = rows
            slots.release()

        def broke(error: BaseException, index: int) -> None:
            with lock:
                failed.append(index)
                errors.append(error)
            slots.release()

        for position, index in enumerate(indexes):
            slots.acquire()
            if errors:
                slots.release()
                with lock:
                    failed.extend(indexes[position:])
                break
            try:
                future = self.session.execute_async(*requests[index])
            except Exception as error:
                broke(error, index)
                continue
            future.add_callbacks(succeeded, broke, callback_args=(index,), errback_args=(index,))
        for _ in range(self.concurrency):  # wait for every request in flight
            slots.acquire()
        return sorted(failed), (errors[0] if errors else None)

    def _execute_all(
        self, what: str, requests: Sequence[Request], collect: bool = False
    ) -> list[Any]:
        """Execute every (statement, params) request, retrying transient failures with backoff;
        with `collect`, return each request's first page of rows, in order."""
        retryable = _retryable_errors()
        results: list[Any] = [None] * len(requests) if collect else []
        pending: Sequence[int] = range(len(requests))
        for attempt in range(1, self.retry.attempts + 1):
            failed, error = self._window(requests, pending, results if collect else None)
            if error is None:
                return results
            if not isinstance(error, retryable):
                raise ServingUnavailable(
                    f"Cassandra at {self.where} refused to {what} "
                    f"({type(error).__name__}: {error})."
                ) from None
            if attempt == self.retry.attempts:
                raise self._unavailable(
                    f"{what} ({len(failed)} of {len(requests)} requests)", error
                )
            LOG.warning(
                "%d of %d requests to %s failed (%s), retry %d",
                len(failed),
                len(requests),
                what,
                type(error).__name__,
                attempt,
            )
            pending = failed
            time.sleep(self.retry.delay(attempt))
        return results

    def _row_writes(self, table: ServingTable, chunk: Sequence[Row]) -> list[Request]:
        """The writes of a chunk: rows of one partition grouped `batch_rows` at a time into
        UNLOGGED batches, which Cassandra applies as one mutation of that partition."""
        from cassandra.query import BatchStatement, BatchType

        insert = self._insert(table)
        columns = table.source.columns
        params = [tuple(_encode(c, row[c.name]) for c in columns) for row in chunk]
        if self.batch_rows <= 1:
            return [(insert, values) for values in params]
        positions = [table.source.column_names.index(name) for name in table.partition_key]
        by_partition: dict[tuple[object, ...], list[tuple[object, ...]]] = {}
        for values in params:
            by_partition.setdefault(tuple(values[p] for p in positions), []).append(values)
        writes: list[Request] = []
        for partition_rows in by_partition.values():
            for start in range(0, len(partition_rows), self.batch_rows):
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for values in partition_rows[start : start + self.batch_rows]:
                    batch.add(insert, values)
                writes.append((batch, None))
        return writes

    def _read(self, what: str, statement: PreparedStatement, params: Sequence[object]) -> list[Any]:
        return self._with_retry(
            f"read {what}", lambda: list(self.session.execute(statement, tuple(params)))
        )

    # -- ServingStore ------------------------------------------------------------------------

    def upsert(self, table: ServingTable, rows: Iterable[Row]) -> int:
        count = 0
        seen: dict[str, set[object]] = {index.name: set() for index in table.indexes}
        for chunk in _chunks(rows, self.chunk_rows):
            self._execute_all(f"write {table.name} rows", self._row_writes(table, chunk))
            for index in table.indexes:
                column = table.source.column(index.column)
                values = {_encode(column, row[index.column]) for row in chunk}
                new = values - seen[index.name] - {None}
                insert = self._insert_index(index)
                self._execute_all(
                    f"write the {index.name} index",
                    [(insert, (value,)) for value in sorted(new)],  # type: ignore[type-var]
                )
                seen[index.name] |= new
            count += len(chunk)
        return count

    def replace(self, table: ServingTable, rows: Iterable[Row]) -> int:
        """A load without transactions: upsert `rows`, then delete every row (and index value)
        the store holds that the load did not write, so serving rows = rows loaded."""
        kept: list[Row] = []

        def remembered() -> Iterator[Row]:
            for row in rows:
                kept.append({name: row[name] for name in _pruning_columns(table)})
                yield row

        count = self.upsert(table, remembered())
        self.prune(table, kept)
        return count

    def prune(self, table: ServingTable, kept: Iterable[Row]) -> int:
        """Delete the rows whose primary key `kept` lacks, and the index values no kept row
        has. The keys held are read by a paged scan of the key columns (a load's cost, never a
        query's); deletes go through the same bounded window and retries as the writes."""
        source = table.source
        key = table.primary_key
        key_columns = [source.column(name) for name in key]
        loaded: set[tuple[object, ...]] = set()
        values: dict[str, set[object]] = {index.name: set() for index in table.indexes}
        for row in kept:
            loaded.add(tuple(_canonical(c, row[c.name]) for c in key_columns))
            for index in table.indexes:
                values[index.name].add(_canonical(source.column(index.column), row[index.column]))
        scan = self._prepared(
            ("keys", table.name),
            lambda: f"SELECT {', '.join(key)} FROM {self.keyspace}.{table.name}",
        )
        held = [
            tuple(_canonical(c, value) for c, value in zip(key_columns, record, strict=True))
            for record in self._read(f"the keys of {table.name}", scan, ())
        ]
        stale = [held_key for held_key in held if held_key not in loaded]
        delete = self._prepared(
            ("delete", table.name),
            lambda: (
                f"DELETE FROM {self.keyspace}.{table.name} WHERE "
                + " AND ".join(f"{name} = ?" for name in key)
            ),
        )
        self._execute_all(
            f"delete stale {table.name} rows",
            [
                (delete, tuple(_encode(c, v) for c, v in zip(key_columns, stale_key, strict=True)))
                for stale_key in stale
            ],
        )
        for index in table.indexes:
            column = source.column(index.column)
            records = self._read(
                f"the {index.name} index", self._select_index(index, limited=False), ()
            )
            gone = [
                value
                for value in (_canonical(column, record[0]) for record in records)
                if value not in values[index.name]
            ]
            text = (
                f"DELETE FROM {self.keyspace}.{index.name} "
                f"WHERE {SCOPE_COLUMN} = '{SCOPE}' AND {index.column} = ?"
            )
            drop = self._prepared(("delete_index", index.name), functools.partial(str, text))
            self._execute_all(
                f"delete stale {index.name} index values",
                [(drop, (_encode(column, value),)) for value in gone],
            )
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
        names = tuple(columns or table.columns)
        params: list[object] = [
            _encode(source.column(n), v)
            for n, v in zip(table.partition_key, partition, strict=True)
        ]
        for bound in (start, end):
            prefix = table.clustering_key[: len(bound)]
            params.extend(_encode(source.column(n), v) for n, v in zip(prefix, bound, strict=True))
        if limit is not None:
            if limit < 1:
                return []  # CQL refuses LIMIT 0
            params.append(limit)
        statement = self._select_slice(
            table, names, len(start), len(end), descending, limit is not None
        )
        declared = [source.column(name) for name in names]
        return [
            {c.name: _decode(c, value) for c, value in zip(declared, record, strict=True)}
            for record in self._read(f"a slice of {table.name}", statement, params)
        ]

    def index_values(
        self, table: ServingTable, column: str, limit: int | None = None
    ) -> list[object]:
        index = table.index(column)
        if limit is not None and limit < 1:
            return []
        statement = self._select_index(index, limit is not None)
        params = () if limit is None else (limit,)
        declared = table.source.column(column)
        records = self._read(f"the {index.name} index", statement, params)
        return [_decode(declared, record[0]) for record in records]

    def count(self, table: ServingTable) -> int:
        """A sum of per-partition counts (each a single-partition read) over the index of the
        partition key; a table without one is counted by a scan."""
        index = _partition_key_index(table)
        if index is None:
            LOG.warning("%s has no index of its partition key: counting by a scan", table.name)
            statement = self._prepared(
                ("count_all", table.name),
                lambda: f"SELECT COUNT(*) FROM {self.keyspace}.{table.name}",
            )
            return int(self._read(f"the row count of {table.name}", statement, ())[0][0])
        partitions = self._read(
            f"the {index.name} index", self._select_index(index, limited=False), ()
        )
        count_of = self._count_partition(table)
        pages = self._execute_all(
            f"count {table.name} rows",
            [(count_of, (record[0],)) for record in partitions],
            collect=True,
        )
        return sum(int(page[0][0]) for page in pages)

    def partition_sink(self, table: ServingTable) -> PartitionSink | None:
        """A picklable loader of this store's keyspace, or None without the settings."""
        if self.settings is None:
            return None
        return CassandraPartitionSink(
            attrs.evolve(self.settings, keyspace=self.keyspace),
            table.name,
            concurrency=self.concurrency,
            batch_rows=self.batch_rows,
            chunk_rows=self.chunk_rows,
            retry=self.retry,
        )
