"""`CassandraServingStore`: the ServingStore on Cassandra or AstraDB (see `schema` for the keys).

Writes use prepared statements with a bounded number in flight (a bounded window of execute_async);
requests that fail for a transient reason (timeouts, unavailable replicas, no host) are retried
with exponential backoff for a bounded number of attempts, then a ServingUnavailable names the
host(s). Upserts are idempotent: the same primary key overwrites the same cells.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

import attrs

from adapters.cassandra.schema import DATES_TABLE, ORGS_TABLE, SCOPE, USAGE_TABLE
from adapters.cassandra.settings import check_keyspace
from finops_core import queries
from finops_core.aggregate import GOLD_COLUMNS, GoldRow
from finops_core.errors import FinopsError, ServingUnavailable
from finops_core.ports import ServiceCost

if TYPE_CHECKING:
    from cassandra.cluster import Session
    from cassandra.query import PreparedStatement

LOG = logging.getLogger(__name__)
_COLUMNS = ", ".join(GOLD_COLUMNS)
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


def _chunks(items: Iterable[GoldRow], size: int) -> Iterator[list[GoldRow]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _params(row: GoldRow) -> tuple[object, ...]:
    return (
        row.org_id,
        row.usage_date,
        row.service,
        row.daily_cost_usd,
        row.requests,
        row.cpu_hours,
        row.storage_gb_hours,
        row.genai_tokens,
        row.carbon_kg,
        row.event_count,
        row.cost_per_request_usd,
        dict(row.quality_flags),
    )


def _date(value: Any) -> dt.date:
    """cassandra.util.Date (or a date) -> datetime.date."""
    return value if isinstance(value, dt.date) else value.date()


def _gold(record: Sequence[Any]) -> GoldRow:
    (
        org_id,
        usage_date,
        service,
        cost,
        requests,
        cpu,
        storage,
        tokens,
        carbon,
        events,
        cpr,
        flags,
    ) = record
    return GoldRow(
        org_id=org_id,
        usage_date=_date(usage_date),
        service=service,
        daily_cost_usd=cost,
        requests=requests,
        cpu_hours=cpu,
        storage_gb_hours=storage,
        genai_tokens=tokens,
        carbon_kg=carbon,
        event_count=events,
        cost_per_request_usd=cpr,
        quality_flags=dict(sorted((flags or {}).items())),
    )


def session_hosts(session: Session) -> str:
    """The hosts a session talks to, for messages."""
    try:
        hosts = sorted(str(host.endpoint) for host in session.cluster.metadata.all_hosts())
    except Exception:  # metadata may be unavailable once the cluster is gone
        hosts = []
    if not hosts:
        hosts = [str(point) for point in (session.cluster.contact_points or [])]
    return ", ".join(hosts) or "unknown host"


class CassandraServingStore:
    """The ServingStore over a keyspace that `schema.apply_schema` prepared."""

    def __init__(
        self,
        session: Session,
        keyspace: str,
        *,
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
        self.concurrency = concurrency
        self.batch_rows = batch_rows
        self.chunk_rows = chunk_rows
        self.retry = retry or RetryPolicy()
        self._where = where
        self._statements: dict[str, PreparedStatement] = {}

    def close(self) -> None:
        """Shut the session down if this store was given ownership of it."""
        if self.owns_session:
            from adapters.cassandra.session import close_session

            close_session(self.session)

    @property
    def where(self) -> str:
        return self._where or session_hosts(self.session)

    # -- statements (prepared lazily, once) ---------------------------------------------------

    def _prepared(self, name: str) -> PreparedStatement:
        if name not in self._statements:
            ks, table = self.keyspace, f"{self.keyspace}.{USAGE_TABLE}"
            cql = {
                "insert": f"INSERT INTO {table} ({_COLUMNS}) VALUES ({', '.join('?' for _ in GOLD_COLUMNS)})",
                "insert_date": f"INSERT INTO {ks}.{DATES_TABLE} (scope, usage_date) VALUES ('{SCOPE}', ?)",
                "insert_org": f"INSERT INTO {ks}.{ORGS_TABLE} (scope, org_id) VALUES ('{SCOPE}', ?)",
                "window": f"SELECT {_COLUMNS} FROM {table} WHERE org_id = ? AND usage_date >= ? AND usage_date <= ?",
                "window_costs": f"SELECT service, daily_cost_usd FROM {table} WHERE org_id = ? AND usage_date >= ? AND usage_date <= ?",
                "day": f"SELECT {_COLUMNS} FROM {table} WHERE org_id = ? AND usage_date = ?",
                "latest_of_org": f"SELECT usage_date FROM {table} WHERE org_id = ? ORDER BY usage_date DESC LIMIT 1",
                "latest": f"SELECT usage_date FROM {ks}.{DATES_TABLE} WHERE scope = '{SCOPE}' LIMIT 1",
                "orgs": f"SELECT org_id FROM {ks}.{ORGS_TABLE} WHERE scope = '{SCOPE}'",
                "count_of_org": f"SELECT COUNT(*) FROM {table} WHERE org_id = ?",
            }[name]
            self._statements[name] = self._with_retry(f"prepare {name}", lambda: self._prepare(cql))
        return self._statements[name]

    def _prepare(self, cql: str) -> PreparedStatement:
        from cassandra import InvalidRequest

        try:
            return self.session.prepare(cql)
        except InvalidRequest:
            raise ServingUnavailable(
                f"Cassandra at {self.where} has no serving tables in keyspace {self.keyspace}; "
                "run `finops load` first."
            ) from None

    # -- retries -------------------------------------------------------------------------------

    def _unavailable(self, what: str, error: BaseException) -> ServingUnavailable:
        from adapters.cassandra.session import describe_failure

        reason = describe_failure(error)
        return ServingUnavailable(
            f"Cassandra at {self.where} failed to {what} after {self.retry.attempts} attempts "
            f"({reason}); check that the node is up, then rerun (loads are idempotent)."
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
                    f"Cassandra at {self.where} refused to {what} ({type(error).__name__}: {error})."
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
                    f"Cassandra at {self.where} refused to {what} ({type(error).__name__}: {error})."
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

    def _row_writes(self, chunk: Sequence[GoldRow]) -> list[Request]:
        """The writes of a chunk: rows of one org (one partition) grouped `batch_rows` at a time
        into UNLOGGED batches, which Cassandra applies as one mutation of that partition."""
        from cassandra.query import BatchStatement, BatchType

        insert = self._prepared("insert")
        if self.batch_rows <= 1:
            return [(insert, _params(row)) for row in chunk]
        by_org: dict[str, list[GoldRow]] = {}
        for row in chunk:
            by_org.setdefault(row.org_id, []).append(row)
        writes: list[Request] = []
        for org_rows in by_org.values():
            for start in range(0, len(org_rows), self.batch_rows):
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for row in org_rows[start : start + self.batch_rows]:
                    batch.add(insert, _params(row))
                writes.append((batch, None))
        return writes

    def _rows(self, name: str, params: tuple[Any, ...]) -> list[Any]:
        statement = self._prepared(name)
        return self._with_retry(
            f"read ({name})", lambda: list(self.session.execute(statement, params))
        )

    # -- ServingStore ------------------------------------------------------------------------

    def upsert(self, rows: Iterable[GoldRow]) -> int:
        count = 0
        seen_orgs: set[str] = set()
        seen_dates: set[dt.date] = set()
        for chunk in _chunks(rows, self.chunk_rows):
            self._execute_all("write gold rows", self._row_writes(chunk))
            new_orgs = {row.org_id for row in chunk} - seen_orgs
            new_dates = {row.usage_date for row in chunk} - seen_dates
            insert_org, insert_date = self._prepared("insert_org"), self._prepared("insert_date")
            self._execute_all("write the org index", [(insert_org, (o,)) for o in sorted(new_orgs)])
            self._execute_all(
                "write the date index", [(insert_date, (d,)) for d in sorted(new_dates)]
            )
            seen_orgs |= new_orgs
            seen_dates |= new_dates
            count += len(chunk)
        return count

    def daily_usage(
        self, org_id: str, start: dt.date, end: dt.date, service: str | None = None
    ) -> list[GoldRow]:
        if start > end:
            return []
        rows = [_gold(record) for record in self._rows("window", (org_id, start, end))]
        if service is not None:
            rows = [row for row in rows if row.service == service]
        return sorted(rows, key=lambda row: (row.usage_date, row.service))

    def top_services(
        self,
        org_id: str,
        days: int = queries.DEFAULT_DAYS,
        as_of: dt.date | None = None,
        limit: int = queries.DEFAULT_LIMIT,
    ) -> list[ServiceCost]:
        if as_of is None:
            as_of = self.latest_usage_date()
            if as_of is None:
                return []
        start, end = queries.window(as_of, days)
        costs: dict[str, list[float]] = {}
        for service, cost in self._rows("window_costs", (org_id, start, end)):
            costs.setdefault(service, []).append(cost)
        return queries.rank_services({s: math.fsum(v) for s, v in costs.items()}, limit)

    def org_day(self, org_id: str, usage_date: dt.date) -> list[GoldRow]:
        rows = [_gold(record) for record in self._rows("day", (org_id, usage_date))]
        return sorted(rows, key=lambda row: row.service)

    def latest_usage_date(self, org_id: str | None = None) -> dt.date | None:
        if org_id is None:
            found = self._rows("latest", ())
        else:
            found = self._rows("latest_of_org", (org_id,))
        return _date(found[0][0]) if found else None

    def row_count(self) -> int:
        """Sum of per-org partition counts (each a single-partition read), no table scan."""
        orgs = [(record[0],) for record in self._rows("orgs", ())]
        count_of_org = self._prepared("count_of_org")
        pages = self._execute_all("count rows", [(count_of_org, o) for o in orgs], collect=True)
        return sum(int(page[0][0]) for page in pages)
