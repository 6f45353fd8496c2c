"""Ports: what the use cases need from the outside world, as typing.Protocol.

None of them knows a particular table or mart: they move rows of *declared* tables
(`finops_core.tables`, `finops_core.marts`, `finops_core.serving`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

import attrs

from finops_core.intake import IntakePlan
from finops_core.lake import LakeLayout
from finops_core.runs import RunContext, RunRecord, StageResult
from finops_core.serving import ServingTable
from finops_core.tables import Replace, Row, Table, WriteMode

__all__ = [
    "Clock",
    "Engine",
    "Lake",
    "LakeLock",
    "LandingSource",
    "PartitionSink",
    "Progress",
    "RunContext",
    "RunLog",
    "ServiceCost",
    "ServingStore",
    "SliceReader",
    "StageResult",
]

# Takes the rows of one partition of a table and stores them; returns how many it stored. A sink
# an engine may ship to where the data is (a Spark executor) must be picklable.
PartitionSink = Callable[[Iterable[Row]], int]


@attrs.frozen
class ServiceCost:
    service: str
    total_cost_usd: float


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class Progress(Protocol):
    """Where long work reports what it is doing."""

    def stage_started(self, stage: str) -> None: ...

    def update(self, stage: str, message: str) -> None: ...

    def stage_finished(self, result: StageResult) -> None: ...


class Lake(Protocol):
    """Tables of the lake as rows of plain values (used by the pure-Python engine).

    Every write is one atomic commit (a Delta table version): a reader sees the version before
    it or the one after, never a half, and a writer killed mid-way leaves nothing visible.
    """

    layout: LakeLayout

    def landing_files(self, pattern: str) -> list[str]: ...

    def read_landing(self, relative_path: str) -> bytes: ...

    def has_table(self, table: Table) -> bool: ...

    def read_table(
        self, table: Table, columns: Sequence[str] | None = None
    ) -> list[dict[str, object]]:
        """Every row of the current version: all the table's columns, or only `columns`."""
        ...

    def write_table(
        self,
        table: Table,
        rows: list[dict[str, object]],
        mode: WriteMode = WriteMode.OVERWRITE,
        *,
        where: Replace | None = None,
    ) -> int:
        """Commit `rows`; returns the rows written (for MERGE_NEW, the rows added). With
        `where` (mode OVERWRITE only), only the rows matching it are replaced."""
        ...


class LandingSource(Protocol):
    """Puts a landing zone into the lake (a dataset zip, a generator)."""

    def land(self, lake: LakeLayout) -> StageResult: ...


class Engine(Protocol):
    """Runs the batch stages over a lake and reads any declared table back.

    Each stage is idempotent: a rerun gives the same tables. `gold` builds every declared mart.
    """

    name: str
    # True when `export` runs the sink in other processes (Spark executors), where the data
    # is; an engine that runs in this process streams rows into the store's `replace` instead.
    distributed: bool

    def bronze_masters(self, lake: LakeLayout, run: RunContext) -> StageResult: ...

    def bronze_events(self, lake: LakeLayout, run: RunContext, plan: IntakePlan) -> StageResult:
        """Replace the bronze rows of `plan.drop` by the rows parsed from `plan.ingest` in one
        commit (the whole table when `plan.full`), quarantine malformed lines (MERGE_NEW), then
        commit the ledger (`tables.LANDING_FILES`): rows of `plan.drop` replaced by one row per
        ingested file."""
        ...

    def silver(self, lake: LakeLayout, run: RunContext) -> StageResult: ...

    def gold(self, lake: LakeLayout, run: RunContext) -> StageResult: ...

    def read_rows(self, lake: LakeLayout, table: Table) -> Iterator[dict[str, object]]:
        """The table's rows, streamed (never the whole table in memory at once), in no
        particular order (sort them where order matters)."""
        ...

    def export(self, lake: LakeLayout, table: Table, sink: PartitionSink) -> int:
        """Hand the table to `sink` one partition at a time, where the data is; rows stored."""
        ...


class MasterStages(Protocol):
    """The master tables' bronze and silver on their own (`MemoryEngine` is one): a few
    thousand rows, which a distributed engine may hand over rather than run a job per table."""

    def bronze_masters(self, lake: LakeLayout, run: RunContext) -> StageResult:
        """Check every master file's header, then type each into its bronze table."""
        ...

    def silver_masters(self, lake: LakeLayout) -> None:
        """Rebuild every silver master table from its bronze table."""
        ...


class SliceReader(Protocol):
    """What the questions read of a serving store (`finops_core.queries`)."""

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
        """Rows of one partition whose clustering key, cut to len(start) (len(end)) columns, is
        >= start (<= end), in clustering order (reversed if descending), at most `limit`."""
        ...

    def index_values(
        self, table: ServingTable, column: str, limit: int | None = None
    ) -> list[object]:
        """The distinct values of an indexed column, in the index's order."""
        ...

    def count(self, table: ServingTable) -> int: ...


@attrs.frozen
class StoreDescription:
    """What a serving store is and holds, as `finops doctor` shows it (never a secret)."""

    kind: str
    where: str
    server: str  # the product and its version, as the store reports them
    namespace: str  # the keyspace, or the database file
    tables: tuple[str, ...]  # the serving schema's tables the store has
    missing: tuple[str, ...]  # the serving schema's tables it lacks
    schema_version: int | None  # None before the first load

    @property
    def ready(self) -> bool:
        return not self.missing


class ServingStore(SliceReader, Protocol):
    """The low-latency store analysts query: upserts of declared tables, slices of one partition.

    Upserts are idempotent on the table's primary key; a load (`replace`, or partition sinks
    then `prune`) leaves no row the loaded mart no longer has. `finops_core.queries` gives the
    questions their meaning over `read_slice`, `index_values` and `count`.
    """

    kind: str

    def upsert(self, table: ServingTable, rows: Iterable[Row]) -> int: ...

    def replace(self, table: ServingTable, rows: Iterable[Row]) -> int:
        """A load: the table becomes exactly `rows` (returns how many were given). A store with
        transactions commits it as one (a reader sees the rows before or after, never a mix);
        one without (Cassandra) upserts them, then deletes the rows the load did not write."""
        ...

    def prune(self, table: ServingTable, kept: Iterable[Row]) -> int:
        """Delete the rows (and index values) of `table` that `kept` lacks (rows with at least
        the key and indexed columns): the end of a load written through partition sinks.
        Returns the rows deleted."""
        ...

    def partition_sink(self, table: ServingTable) -> PartitionSink | None:
        """A picklable sink that upserts into this store from any process, or None if the
        store can only be written from this process (an embedded file)."""
        ...

    def describe(self) -> StoreDescription:
        """Read the store's server version, tables and schema version (nothing is written)."""
        ...

    def close(self) -> None: ...


class LakeLock(Protocol):
    """One writer at a time per lake: a lock that dies with the process holding it."""

    def hold(self, *, wait: bool, waiting: Callable[[str], None]) -> AbstractContextManager[None]:
        """Hold the lake for the duration of the block. Another holder: with `wait`, tell
        `waiting` who it is and block until it is gone; without, raise LakeBusy naming it."""
        ...


class RunLog(Protocol):
    """Keeps one record per run."""

    def write(self, record: RunRecord) -> str: ...

    def read(self, run_id: str | None = None) -> RunRecord | None: ...

    def run_ids(self) -> list[str]: ...
