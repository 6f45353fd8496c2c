"""Ports: what the use cases need from the outside world, as typing.Protocol."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

import attrs

from finops_core.aggregate import GoldRow
from finops_core.lake import LakeLayout


@attrs.frozen
class RunContext:
    """Identity of one pipeline run, passed in (never read from a clock inside the logic)."""

    run_id: str
    started_at: dt.datetime


@attrs.frozen
class StageResult:
    """One stage's outcome: named counts (and sums), and how long it took."""

    stage: str
    counts: Mapping[str, float] = attrs.field(factory=dict)
    seconds: float = 0.0
    skipped: bool = False
    note: str = ""


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

    layer is one of landing, bronze, silver, quarantine, gold; rows are dicts keyed by column.
    mode: "overwrite" replaces the table, "overwrite_partitions" replaces only the partitions
    present in `rows`, "append" adds.
    """

    layout: LakeLayout

    def landing_files(self, pattern: str) -> list[str]: ...

    def read_landing(self, relative_path: str) -> bytes: ...

    def has_table(self, layer: str, table: str) -> bool: ...

    def read_table(self, layer: str, table: str) -> list[dict[str, object]]: ...

    def write_table(
        self,
        layer: str,
        table: str,
        rows: list[dict[str, object]],
        partition_by: str | None = None,
        mode: str = "overwrite",
    ) -> int: ...


class LandingSource(Protocol):
    """Puts a landing zone into the lake (a dataset zip, a generator)."""

    def land(self, lake: LakeLayout) -> StageResult: ...


class Engine(Protocol):
    """Runs the batch stages over a lake. Each stage is idempotent: a rerun gives the same tables."""

    name: str

    def bronze_masters(self, lake: LakeLayout, run: RunContext) -> StageResult: ...

    def has_bronze_events(self, lake: LakeLayout) -> bool: ...

    def bronze_events(self, lake: LakeLayout, run: RunContext) -> StageResult: ...

    def silver(self, lake: LakeLayout, run: RunContext) -> StageResult: ...

    def gold(self, lake: LakeLayout, run: RunContext) -> StageResult: ...

    def read_gold(self, lake: LakeLayout) -> Iterator[GoldRow]: ...


class ServingStore(Protocol):
    """The low-latency store analysts query. Upserts are idempotent on the gold key."""

    def upsert(self, rows: Iterable[GoldRow]) -> int: ...

    def daily_usage(
        self, org_id: str, start: dt.date, end: dt.date, service: str | None = None
    ) -> list[GoldRow]:
        """Q1: the org's gold rows from start to end inclusive, by date then service."""
        ...

    def top_services(
        self, org_id: str, days: int = 14, as_of: dt.date | None = None, limit: int = 5
    ) -> list[ServiceCost]:
        """Q2: services by total cost over as_of-days+1 .. as_of, most expensive first."""
        ...

    def org_day(self, org_id: str, usage_date: dt.date) -> list[GoldRow]:
        """Q3: one org's day, every service, by service."""
        ...

    def latest_usage_date(self, org_id: str | None = None) -> dt.date | None: ...

    def row_count(self) -> int: ...


class RunLog(Protocol):
    """Keeps one JSON-able record per run."""

    def write(self, record: Mapping[str, object]) -> str: ...

    def read(self, run_id: str | None = None) -> Mapping[str, object] | None: ...
