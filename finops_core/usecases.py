"""Use cases, written against ports only: run the batch layer, load the serving store."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

import attrs

from finops_core.lake import LakeLayout
from finops_core.ports import Clock, Engine, Progress, RunContext, ServingStore, StageResult


@attrs.frozen
class Reconciliation:
    name: str
    left: float
    right: float
    passed: bool
    detail: str = ""


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
    backfill: bool | None = None,
) -> list[StageResult]:
    """Bronze masters, bronze events (backfilled when bronze has none), silver, gold."""
    results = [_timed(progress, "bronze_masters", lambda: engine.bronze_masters(lake, run))]
    needs_backfill = backfill if backfill is not None else not engine.has_bronze_events(lake)
    if needs_backfill:
        results.append(_timed(progress, "bronze_events", lambda: engine.bronze_events(lake, run)))
    else:
        skipped = StageResult(
            "bronze_events",
            {},
            0.0,
            skipped=True,
            note="bronze events exist (speed layer); no backfill",
        )
        progress.stage_finished(skipped)
        results.append(skipped)
    results.append(_timed(progress, "silver", lambda: engine.silver(lake, run)))
    results.append(_timed(progress, "gold", lambda: engine.gold(lake, run)))
    return results


def load_serving(
    engine: Engine, lake: LakeLayout, store: ServingStore, progress: Progress
) -> StageResult:
    progress.stage_started("serving")
    started = time.perf_counter()
    rows = store.upsert(engine.read_gold(lake))
    result = StageResult(
        "serving",
        {"rows_upserted": rows, "serving_rows": store.row_count()},
        time.perf_counter() - started,
    )
    progress.stage_finished(result)
    return result


def reconcile(counts: Mapping[str, float]) -> list[Reconciliation]:
    """The audit's checks over a run's merged counts; each names both sides."""
    checks: list[Reconciliation] = []

    def add(name: str, left: str, right: Iterable[str], tolerance: float = 0.0) -> None:
        if left not in counts or not all(key in counts for key in right):
            return
        lhs = counts[left]
        rhs = sum(counts[key] for key in right)
        checks.append(
            Reconciliation(
                name, lhs, rhs, abs(lhs - rhs) <= tolerance, f"{left} = {' + '.join(right)}"
            )
        )

    add(
        "landing lines = bronze rows + malformed",
        "bronze_events.landing_lines",
        ("bronze_events.bronze_rows", "bronze_events.malformed"),
    )
    add(
        "streamed lines = bronze rows + malformed + duplicates and late rows dropped",
        "stream.landing_lines",
        ("stream.bronze_rows", "stream.malformed", "stream.duplicates", "stream.late"),
    )
    add(
        "bronze = silver + quarantine + duplicates",
        "silver.bronze_rows",
        ("silver.silver_rows", "silver.quarantined", "silver.duplicates"),
    )
    add(
        "silver cost = gold cost (to the cent)",
        "silver.silver_cost_usd",
        ("gold.gold_cost_usd",),
        tolerance=0.005,
    )
    if "gold.gold_keys_unique" in counts:
        unique = counts["gold.gold_keys_unique"] == 1
        checks.append(
            Reconciliation(
                "gold keys unique",
                counts["gold.gold_keys_unique"],
                1,
                unique,
                "one row per (org, day, service)",
            )
        )
    add("serving rows = gold rows", "serving.serving_rows", ("gold.gold_rows",))
    return checks


def merged_counts(results: Iterable[StageResult]) -> dict[str, float]:
    return {f"{r.stage}.{k}": v for r in results for k, v in r.counts.items()}
