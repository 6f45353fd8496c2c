"""Use cases, written against ports only: run the batch layer, load the serving store."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from finops_core.intake import LandingFile, plan_intake
from finops_core.lake import LakeLayout
from finops_core.ports import Clock, Engine, Progress, ServingStore
from finops_core.runs import (
    Reconciliation,
    RunContext,
    RunRecord,
    StageResult,
    merged_counts,
    reconcile,
)
from finops_core.serving import (
    SERVING_TABLES,
    ServedSink,
    ServingTable,
    rows_where,
    served_rows,
)
from finops_core.tables import LANDING_FILES

__all__ = [
    "Reconciliation",
    "load_serving",
    "merged_counts",
    "new_run",
    "reconcile",
    "run_batch",
    "run_record",
]


def new_run(clock: Clock, kind: str) -> RunContext:
    started = clock.now()
    return RunContext(run_id=f"{started:%Y%m%dT%H%M%S%f}Z-{kind}", started_at=started)


def _timed(progress: Progress, stage: str, work: Callable[[], StageResult]) -> StageResult:
    progress.stage_started(stage)
    result: StageResult = work()
    progress.stage_finished(result)
    return result


def run_batch(
    engine: Engine,
    lake: LakeLayout,
    run: RunContext,
    progress: Progress,
    landing: Sequence[LandingFile],
    backfill: bool = False,
) -> list[StageResult]:
    """Bronze masters, bronze events (what the ledger says bronze lacks of `landing`, every
    file when `backfill`), silver, gold."""
    results = [_timed(progress, "bronze_masters", lambda: engine.bronze_masters(lake, run))]
    ledger = list(engine.read_rows(lake, LANDING_FILES))
    plan = plan_intake(landing, ledger, full=backfill)
    if plan.empty:
        skipped = StageResult("bronze_events", {}, 0.0, skipped=True, note=plan.describe())
        progress.stage_finished(skipped)
        results.append(skipped)
    else:
        progress.update("bronze_events", plan.describe())
        results.append(
            _timed(progress, "bronze_events", lambda: engine.bronze_events(lake, run, plan))
        )
    results.append(_timed(progress, "silver", lambda: engine.silver(lake, run)))
    results.append(_timed(progress, "gold", lambda: engine.gold(lake, run)))
    return results


def load_serving(
    engine: Engine,
    lake: LakeLayout,
    store: ServingStore,
    progress: Progress,
    tables: Sequence[ServingTable] = SERVING_TABLES,
) -> StageResult:
    """Load every served mart: the store's table becomes the mart's rows it serves (no row the
    mart no longer has is kept). With a distributed engine and a store that gives a partition
    sink, the engine runs it where the data is (Spark executors), then the store prunes what
    the mart lacks; otherwise rows stream through this process into one `replace` (a sink
    called in this process would only open a session per partition)."""
    progress.stage_started("serving")
    started = time.perf_counter()
    upserted = 0
    for table in tables:
        sink = store.partition_sink(table) if engine.distributed else None
        if sink is not None:
            upserted += engine.export(lake, table.source, ServedSink(table.name, sink))
            store.prune(table, rows_where(table, engine.read_rows(lake, table.source)))
        else:
            upserted += store.replace(
                table, served_rows(table, engine.read_rows(lake, table.source))
            )
        progress.update("serving", f"{table.name} loaded, {upserted:,} rows so far")
    counts = {"rows_upserted": upserted, "serving_rows": sum(store.count(t) for t in tables)}
    result = StageResult("serving", counts, time.perf_counter() - started)
    progress.stage_finished(result)
    return result


def run_record(
    run: RunContext,
    kind: str,
    engine: str,
    results: Sequence[StageResult],
    checks: Sequence[Reconciliation] | None = None,
    finished: bool = True,
) -> RunRecord:
    """The record of a run; its reconciliations are computed from its counts unless given."""
    if checks is None:
        checks = reconcile(merged_counts(results))
    return RunRecord(
        run_id=run.run_id,
        kind=kind,
        engine=engine,
        started_at=run.started_at,
        stages=tuple(results),
        reconciliations=tuple(checks),
        finished=finished,
    )
