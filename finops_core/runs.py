"""Run records and reconciliations, typed and versioned: written and read the same way by batch,
stream, load and demo.

A stage's counts are named `CountRef(stage, name)`; the audit's checks are declared as data
(`RECONCILIATIONS`) over those names, so a check is written once and every command that writes a
record is audited by the same list.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any, Union

import attrs

from finops_core import anomaly, marts
from finops_core.serving import ANOMALIES_BY_DAY, SERVING_TABLES, ServingTable

RECORD_VERSION = 1


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

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "seconds": self.seconds,
            "skipped": self.skipped,
            "note": self.note,
            "counts": dict(self.counts),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StageResult:
        return cls(
            stage=str(data["stage"]),
            counts={str(k): v for k, v in dict(data.get("counts", {})).items()},
            seconds=float(data.get("seconds", 0.0)),
            skipped=bool(data.get("skipped", False)),
            note=str(data.get("note", "")),
        )


@attrs.frozen
class CountRef:
    """One stage's named count, e.g. CountRef("gold", "gold_rows").

    `absent` is what a record without the count stands for (a count added after records were
    written, e.g. 0 blank lines before blank lines were told apart), or None: a check over an
    absent count without it is not made.
    """

    stage: str
    name: str
    absent: float | None = None

    @property
    def key(self) -> str:
        return f"{self.stage}.{self.name}"


@attrs.frozen
class Balance:
    """left = the sum of right, within an absolute tolerance."""

    name: str
    left: CountRef
    right: tuple[CountRef, ...]
    tolerance: float = 0.0

    @property
    def detail(self) -> str:
        return f"{self.left.key} = {' + '.join(ref.key for ref in self.right)}"


@attrs.frozen
class IsTrue:
    """A 0/1 count that must be 1."""

    name: str
    count: CountRef
    detail: str


Check = Union[Balance, IsTrue]  # noqa: UP007 (a runtime alias)


@attrs.frozen
class Reconciliation:
    name: str
    left: float
    right: float
    passed: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reconciliation:
        return cls(
            name=str(data.get("name")),
            left=data.get("left"),  # type: ignore[arg-type]
            right=data.get("right"),  # type: ignore[arg-type]
            passed=bool(data.get("passed")),
            detail=str(data.get("detail", "")),
        )


def _ref(stage: str, *names: str) -> tuple[CountRef, ...]:
    return tuple(CountRef(stage, name) for name in names)


LANDING_LINES = CountRef("bronze_events", "landing_lines")
STREAMED_LINES = CountRef("stream", "landing_lines")
# Blank or whitespace-only landing lines: no records, only counted (0 in older records).
BLANK_LINES = CountRef("bronze_events", "blank_lines", absent=0)
STREAMED_BLANK_LINES = CountRef("stream", "blank_lines", absent=0)
SILVER_BRONZE_ROWS = CountRef("silver", "bronze_rows")
SILVER_COST = CountRef("silver", "silver_cost_usd")
GOLD_COST = CountRef("gold", "gold_cost_usd")
GOLD_ROWS = CountRef("gold", "gold_rows")
GOLD_KEYS_UNIQUE = CountRef("gold", "gold_keys_unique")
SERVING_ROWS = CountRef("serving", "serving_rows")
ROWS_LOADED = CountRef("serving", "rows_upserted")


def gold_rows_of(mart: marts.Mart) -> CountRef:
    """The gold stage's row count of a mart (the daily mart keeps its own name, GOLD_ROWS)."""
    return GOLD_ROWS if mart is marts.DAILY_USAGE else CountRef("gold", marts.rows_count(mart))


def served_gold_rows(table: ServingTable) -> CountRef:
    """The gold stage's count of the rows a serving table holds: its mart's rows, or, for the
    anomalies (served where `is_anomaly`), the anomaly mart's anomalies."""
    if table is ANOMALIES_BY_DAY:
        return CountRef("gold", anomaly.anomalies_count(anomaly.COST_ANOMALIES))
    return gold_rows_of(marts.mart(table.source.name))


# The gold rows of every served table: what a load puts in the serving store.
SERVED_GOLD_ROWS = tuple(served_gold_rows(table) for table in SERVING_TABLES)


def _mart_checks(mart: marts.Mart) -> tuple[Check, ...]:
    """A mart against its source: every source row it keeps is counted once, and each of its
    unfiltered sums is its column's sum over those rows (to the cent)."""
    gold = "gold"
    checks: list[Check] = []
    if marts.counted_measure(mart) is not None:
        checks.append(
            Balance(
                f"{mart.name}: source rows kept = rows counted",
                CountRef(gold, marts.kept_count(mart)),
                (CountRef(gold, marts.counted_count(mart)),),
            )
        )
    checks.extend(
        Balance(
            f"{mart.name}: {measure.name} = {measure.source} summed over its source rows",
            CountRef(gold, marts.source_sum_count(mart, measure)),
            (CountRef(gold, marts.sum_count(mart, measure)),),
            tolerance=0.005,
        )
        for measure in marts.reconciled_sums(mart)
    )
    return tuple(checks)


RECONCILIATIONS: tuple[Check, ...] = (
    Balance(
        "landing lines = bronze rows + malformed + blank lines",
        LANDING_LINES,
        (*_ref("bronze_events", "bronze_rows", "malformed"), BLANK_LINES),
    ),
    Balance(
        "streamed lines = bronze rows + malformed + duplicates dropped + blank lines",
        STREAMED_LINES,
        # Late rows are kept (and counted apart): they are part of bronze_rows already.
        (*_ref("stream", "bronze_rows", "malformed", "duplicates"), STREAMED_BLANK_LINES),
    ),
    Balance(
        "bronze = silver + quarantine + duplicates",
        SILVER_BRONZE_ROWS,
        _ref("silver", "silver_rows", "quarantined", "duplicates"),
    ),
    Balance("silver cost = gold cost (to the cent)", SILVER_COST, (GOLD_COST,), tolerance=0.005),
    IsTrue("gold keys unique", GOLD_KEYS_UNIQUE, "one row per (org, day, service)"),
    Balance("serving rows = gold rows", SERVING_ROWS, SERVED_GOLD_ROWS),
    # A load's own check (its record has no gold stage): the store holds what was loaded and no
    # rows left over from another gold.
    Balance("serving rows = rows loaded", SERVING_ROWS, (ROWS_LOADED,)),
    *(check for mart in marts.reconciled_marts() for check in _mart_checks(mart)),
    Balance(
        "cost anomaly rows = gold rows",
        CountRef("gold", anomaly.rows_count(anomaly.COST_ANOMALIES)),
        (GOLD_ROWS,),
    ),
    # One invoice per org and month: the revenue mart has a row for each invoice.
    Balance(
        "revenue rows = invoices",
        CountRef("gold", marts.rows_count(marts.REVENUE)),
        (CountRef("gold", marts.kept_count(marts.REVENUE)),),
    ),
)


def merged_counts(results: Iterable[StageResult]) -> dict[str, float]:
    """`stage.count` -> value over the stages (the keys `CountRef.key` names)."""
    return {f"{r.stage}.{k}": v for r in results for k, v in r.counts.items()}


def reconcile(
    counts: Mapping[str, float], checks: Iterable[Check] = RECONCILIATIONS
) -> list[Reconciliation]:
    """Every declared check whose counts are all present; each names both sides."""
    results: list[Reconciliation] = []
    for check in checks:
        if isinstance(check, IsTrue):
            if check.count.key in counts:
                value = counts[check.count.key]
                results.append(Reconciliation(check.name, value, 1, value == 1, check.detail))
            continue
        refs = (check.left, *check.right)
        if not all(ref.key in counts or ref.absent is not None for ref in refs):
            continue
        left = _count(counts, check.left)
        right = math.fsum(_count(counts, ref) for ref in check.right)
        passed = abs(left - right) <= check.tolerance
        results.append(Reconciliation(check.name, left, right, passed, check.detail))
    return results


def _count(counts: Mapping[str, float], ref: CountRef) -> float:
    value = counts.get(ref.key, ref.absent)
    assert value is not None  # `reconcile` makes no check over an absent count without default
    return value


@attrs.frozen
class RunRecord:
    """What one run did: its stages' counts and timings, and the reconciliations at its end.

    `details` holds what only one kind of run has (a stream's options and micro-batches).
    """

    run_id: str
    kind: str
    engine: str
    started_at: dt.datetime
    stages: tuple[StageResult, ...] = ()
    reconciliations: tuple[Reconciliation, ...] = ()
    finished: bool = True
    details: Mapping[str, Any] = attrs.field(factory=dict)
    version: int = RECORD_VERSION

    @property
    def counts(self) -> dict[str, float]:
        return merged_counts(self.stages)

    @property
    def passed(self) -> bool:
        return self.finished and all(check.passed for check in self.reconciliations)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "run_id": self.run_id,
            "kind": self.kind,
            "engine": self.engine,
            "started_at": self.started_at.isoformat(),
            "finished": self.finished,
            "stages": [stage.to_json() for stage in self.stages],
            "reconciliations": [check.to_json() for check in self.reconciliations],
            "details": dict(self.details),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        """Reads this version and the untyped records written before it (no "version")."""
        version = int(data.get("version", 0))
        if version > RECORD_VERSION:
            raise ValueError(
                f"run record {data.get('run_id')!r} has version {version}; this finops reads "
                f"up to {RECORD_VERSION}: upgrade it"
            )
        stages = tuple(StageResult.from_json(stage) for stage in data.get("stages", []))
        details = dict(data.get("details", {}))
        if version == 0 and data.get("kind") == "stream" and not stages:
            # Version 0 stream records kept their totals and options at the top level.
            stages = (StageResult("stream", dict(data.get("totals", {}))),)
            details = {k: v for k, v in data.items() if k not in _TOP_LEVEL and k != "totals"}
        started = data.get("started_at")
        return cls(
            run_id=str(data["run_id"]),
            kind=str(data.get("kind", "?")),
            engine=str(data.get("engine", "spark" if data.get("kind") == "stream" else "?")),
            started_at=dt.datetime.fromisoformat(str(started)) if started else _EPOCH,
            stages=stages,
            reconciliations=tuple(
                Reconciliation.from_json(item) for item in data.get("reconciliations", [])
            ),
            finished=bool(data.get("finished", True)),
            details=details,
            version=RECORD_VERSION,
        )


_TOP_LEVEL = ("version", "run_id", "kind", "engine", "started_at", "finished", "stages")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
