"""Application services the CLI and the notebook helpers call, each over one container.

They take every adapter from the container (`entrypoints.containers`) and write one typed run
record per run (`usecases.run_record`), which `finops audit` reads back: unfinished when the run
starts (`start_run`), replaced by the final record at its end (`finish_run`), so a run killed
half-way leaves a record saying so.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from entrypoints.output import format_table, render_rows
from finops_core import queries, usecases
from finops_core.contracts import USAGE_EVENTS
from finops_core.errors import DatasetMissing
from finops_core.lake import LakeLayout
from finops_core.marts import DAILY_USAGE
from finops_core.runs import Reconciliation, RunContext, RunRecord, StageResult
from finops_core.serving import SERVING_TABLES
from finops_core.tables import Row

if TYPE_CHECKING:
    from entrypoints.containers import Container

DEFAULT_ZIP = Path("data/cloud_provider_challenge_dataset_v1.zip")
# The columns of Q1 the demo shows.
DEMO_Q1_COLUMNS = (
    "usage_date",
    "service",
    "daily_cost_usd",
    "requests",
    "cost_per_request_usd",
    "carbon_kg",
)
COST_COLUMNS = ("service", "total_cost_usd")
DEMO_ANOMALIES = 5  # the anomalies the demo shows


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def lake_held(
    container: Container, *, wait: bool = True
) -> contextlib.AbstractContextManager[None]:
    """The lake's lock, as every lake-writing command holds it (the CLI's, the notebook's
    `run_batch` and `load_serving`): a second writer of the same lake waits for the first,
    saying so on stderr, or stops at once when `wait` is false."""
    return container.lake_lock().hold(wait=wait, waiting=_say_waiting)


def _say_waiting(message: str) -> None:
    print(f"finops: {message}", file=sys.stderr, flush=True)


def _require_landing(layout: LakeLayout) -> None:
    if not layout.landing.exists():
        raise DatasetMissing(
            f"there is no landing zone in {layout.landing}: run `finops landing` "
            "(or `finops generate`) first"
        )


def start_run(container: Container, kind: str, engine: str) -> RunContext:
    """A new run whose record is written now, unfinished: a run killed before its end leaves
    that record, and `finops audit` names it. `finish_run` replaces it (same run id)."""
    run = usecases.new_run(container.clock(), kind)
    container.run_log().write(usecases.run_record(run, kind, engine, [], finished=False))
    return run


def finish_run(
    container: Container,
    run: RunContext,
    kind: str,
    engine: str,
    results: Sequence[StageResult],
) -> RunRecord:
    """The run's final record, written over its unfinished one."""
    record = usecases.run_record(run, kind, engine, results)
    container.run_log().write(record)
    return record


def failed_checks(record: RunRecord) -> list[Reconciliation]:
    return [check for check in record.reconciliations if not check.passed]


def _report_failures(record: RunRecord) -> None:
    for check in failed_checks(record):
        _say(f"  FAILED {check.name}: {check.left} vs {check.right}")


# -- batch -------------------------------------------------------------------------------------


def batch(container: Container, *, force_backfill: bool = False) -> RunRecord:
    """Bronze, silver and gold on the container's engine; the run record, written. Landing
    files no source reads are named in a warning and in the bronze_events stage's record."""
    from adapters.landing.manifest import landing_events, unread_files

    layout = container.layout()
    _require_landing(layout)
    unread = unread_files(layout.landing)
    if unread:
        _say(f"warning: {_unread_note(layout.landing, unread)}")
    engine = container.engine()
    run = start_run(container, "batch", engine.name)
    results = usecases.run_batch(
        engine,
        layout,
        run,
        container.progress(),
        landing_events(layout.landing),
        backfill=force_backfill,
    )
    results = [_with_unread(stage, layout.landing, unread) for stage in results]
    record = finish_run(container, run, "batch", engine.name, results)
    total = math.fsum(stage.seconds for stage in record.stages)
    checks = record.reconciliations
    _say(
        f"batch {run.run_id}: {len(record.stages)} stages in {total:.2f} s; reconciliations "
        f"{len(checks) - len(failed_checks(record))}/{len(checks)} passed"
    )
    _report_failures(record)
    return record


def _unread_note(landing: Path, unread: Sequence[str]) -> str:
    shown = ", ".join(unread[:5]) + (f" and {len(unread) - 5} more" if len(unread) > 5 else "")
    return (
        f"{len(unread)} file(s) in {landing} match no source and were not read: {shown} "
        f"(events are read from {USAGE_EVENTS.file_pattern}, uncompressed)"
    )


def _with_unread(stage: StageResult, landing: Path, unread: Sequence[str]) -> StageResult:
    """The bronze_events stage with the count (and, if any, the names) of the unread files."""
    if stage.stage != "bronze_events":
        return stage
    notes = [stage.note, _unread_note(landing, unread) if unread else ""]
    note = "; ".join(part for part in notes if part)
    return attrs.evolve(stage, counts={**stage.counts, "unread_files": len(unread)}, note=note)


# -- landing and generate -------------------------------------------------------------------

NO_ENGINE = "none"  # the engine field of runs that write the landing, not the tables


@contextlib.contextmanager
def _refusal_recorded(container: Container, run: RunContext, kind: str) -> Iterator[None]:
    """A landing writer that refuses (LandingRefused, DatasetMissing) has written nothing (the
    landing is swapped in by one rename): its run is recorded as finished, skipped, with the
    refusal as its note, so the audit does not take it for a killed run."""
    from finops_core.errors import LandingRefused

    try:
        yield
    except (LandingRefused, DatasetMissing) as refused:
        skipped = StageResult(kind, {}, 0.0, skipped=True, note=f"refused: {refused}")
        finish_run(container, run, kind, NO_ENGINE, [skipped])
        raise


def land(container: Container, zip_path: Path, *, replace: bool = False) -> RunRecord:
    """Land the dataset zip (`finops landing`); its run record, written."""
    from adapters.landing.zip_intake import land_zip, require_zip

    require_zip(zip_path)  # no zip: nothing ran, nothing to record
    run = start_run(container, "landing", NO_ENGINE)
    with _refusal_recorded(container, run, "landing"):
        landed = land_zip(
            zip_path,
            container.layout().root,
            replace=replace,
            limits=container.settings().landing_limits(),
        )
    result = StageResult(
        "landing",
        {"files": landed.files, "bytes": landed.bytes},
        landed.seconds,
        skipped=landed.already_landed,
        note=landed.summary(),
    )
    print(landed.summary())
    return finish_run(container, run, "landing", NO_ENGINE, [result])


def generate_landing(
    container: Container,
    *,
    seed: int,
    scale: float,
    dirty_rate: float,
    replace: bool,
    progress: Callable[[int, int], None] | None = None,
) -> RunRecord:
    """Write a synthetic landing (`finops generate`); its run record, written."""
    from adapters.landing.generator import generate

    run = start_run(container, "generate", NO_ENGINE)
    with _refusal_recorded(container, run, "generate"):
        generated = generate(
            container.layout().root,
            seed=seed,
            scale=scale,
            dirty_rate=dirty_rate,
            replace=replace,
            progress=progress,
        )
    counts = {"files": generated.files, "bytes": generated.bytes, "events": generated.events}
    result = StageResult("generate", counts, generated.seconds, note=generated.summary())
    print(generated.summary())
    return finish_run(container, run, "generate", NO_ENGINE, [result])


# -- load --------------------------------------------------------------------------------------


def _require_gold(container: Container) -> None:
    """Every served mart's gold table exists: none is a lake never batched, some a lake an
    older version batched (its gold lacks the newer marts)."""
    lake = container.lake()
    root = container.layout().root
    missing = [table.source.name for table in SERVING_TABLES if not lake.has_table(table.source)]
    if len(missing) == len(SERVING_TABLES):
        raise DatasetMissing(f"The lake {root} has no gold rows; run `finops batch` first.")
    if missing:
        raise DatasetMissing(
            f"The lake {root} has no gold table {', '.join(missing)} (a batch of an older "
            "version wrote its gold); run `finops batch` again to write every mart."
        )


def load(container: Container) -> RunRecord:
    """Every served mart into the container's serving store, through the engine (rows stream
    through this process, or the engine runs the store's partition sink where the data is)."""
    _require_gold(container)
    # The unfinished record comes first: opening the store already writes it (its schema).
    run = start_run(container, "load", str(container.config.engine()))
    store = container.serving()  # an unreachable store fails before an engine starts
    engine = container.engine()
    result = usecases.load_serving(engine, container.layout(), store, container.progress())
    record = finish_run(container, run, "load", engine.name, [result])
    if not result.counts.get("rows_upserted"):
        raise DatasetMissing(
            f"The lake {container.layout().root} has no gold rows; run `finops batch` first."
        )
    loaded = int(result.counts["rows_upserted"])
    rate = loaded / result.seconds if result.seconds > 0 else float("inf")
    print(
        f"loaded {loaded} gold rows into {store.kind} in {result.seconds:.3f} s "
        f"({rate:,.0f} rows/s)"
    )
    _report_failures(record)
    return record


# -- demo --------------------------------------------------------------------------------------


def _land(container: Container, zip_path: Path) -> str:
    """Land the zip if present, else generate scale-1 data; skip when landing already exists.

    A zip that differs from the landing replaces it when the landing is synthetic (an earlier
    demo generated it before the zip was put in place: the next batch replaces what was built
    from it); a landing of another dataset stops the demo with the command that replaces it."""
    from adapters.landing.generator import generate
    from adapters.landing.manifest import read_manifest
    from adapters.landing.zip_intake import land_zip
    from finops_core.errors import LandingRefused

    layout = container.layout()
    if zip_path.is_file():
        limits = container.settings().landing_limits()
        try:
            return land_zip(zip_path, layout.root, limits=limits).summary()
        except LandingRefused as refused:
            if not layout.landing.exists():
                raise
            manifest = read_manifest(layout.landing) or {}
            if manifest.get("source") != "generator":
                raise LandingRefused(
                    f"{layout.landing} holds another dataset than {zip_path} ({refused}). Land "
                    f"the zip with `finops landing --zip {zip_path} --replace --lake "
                    f"{layout.root}`, then run the demo again."
                ) from refused
            _say(f"{zip_path} replaces the synthetic landing an earlier demo generated")
            return land_zip(zip_path, layout.root, replace=True, limits=limits).summary()
    if layout.landing.exists():
        return f"skipped: {layout.landing} already holds a landing zone"
    _say(f"no dataset at {zip_path}: generating a scale-1 synthetic landing instead")
    return generate(layout.root, seed=1, scale=1.0).summary()


def _stream_once(container: Container, run: RunContext) -> StageResult | None:
    """The speed layer once (availableNow) when the engine is Spark, on the container's session."""
    if container.config.engine() != "spark":
        return None
    spark = container.spark()
    from adapters.spark.events import classify_lines
    from adapters.spark.streaming import stream_once_stage

    container.progress().stage_started("stream")
    result = stream_once_stage(spark, container.layout(), run, classify_lines)
    if not result.counts.get("files"):
        return StageResult(
            "stream",
            result.counts,
            result.seconds,
            skipped=True,
            note="no new landing files since the last checkpoint",
        )
    return result


def costliest_org(rows: Iterable[Row]) -> tuple[str | None, dt.date | None]:
    """The org with the highest total cost (ties by id), and the latest usage date, in one pass
    over gold rows."""
    totals: dict[str, list[float]] = {}
    latest: dt.date | None = None
    for row in rows:
        totals.setdefault(str(row["org_id"]), []).append(float(row["daily_cost_usd"]))  # type: ignore[arg-type]
        day: dt.date = row["usage_date"]  # type: ignore[assignment]
        latest = day if latest is None or day > latest else latest
    if not totals:
        return None, None
    exact = {org: math.fsum(costs) for org, costs in totals.items()}
    return max(exact, key=lambda org: (exact[org], org)), latest


def cost_rows(ranked: Sequence[object]) -> list[dict[str, object]]:
    """Q2's ranked services as rows keyed by `COST_COLUMNS`."""
    return [{name: getattr(item, name) for name in COST_COLUMNS} for item in ranked]


def _show_answers(container: Container) -> None:
    """One answer of each question for the costliest org, from the serving store just loaded."""
    layout = container.layout()
    org, latest = costliest_org(container.engine().read_rows(layout, DAILY_USAGE.table))
    if org is None or latest is None:
        return
    store = container.serving()
    first = latest - dt.timedelta(days=6)
    print(f"\nQ1: daily cost and requests for {org}, {first} .. {latest}")
    print(render_rows(queries.daily_usage(store, org, first, latest), DEMO_Q1_COLUMNS))
    ranked = queries.top_services(store, org, days=14, as_of=latest, limit=5)
    print(f"\nQ2: top services by cost for {org}, 14 days to {latest}")
    print(render_rows(cost_rows(ranked), COST_COLUMNS))
    print(f"\nQ3: tickets of {org} per day, 30 days to the latest ticket date")
    print(render_rows(queries.tickets(store, org), queries.TICKETS_COLUMNS))
    print(f"\nQ4: monthly revenue of {org} in USD")
    print(render_rows(queries.revenue(store, org), queries.REVENUE_COLUMNS))
    print(f"\nQ5: GenAI tokens and cost of {org} per day, {first} .. {latest}")
    print(render_rows(queries.genai(store, org, first, latest), queries.GENAI_COLUMNS))
    print(f"\nCost anomalies of {org}, the {DEMO_ANOMALIES} largest impacts")
    found = queries.anomalies(store, org_id=org, limit=DEMO_ANOMALIES)
    print(render_rows(found, queries.ANOMALY_COLUMNS))


def render_checks(checks: Sequence[Reconciliation]) -> str:
    return format_table(
        ["reconciliation", "left", "right", "result"],
        [[c.name, c.left, c.right, "PASS" if c.passed else "FAIL"] for c in checks],
    )


def demo(container: Container, zip_path: Path | None = None) -> RunRecord:
    """Landing, the speed layer once (Spark), batch, the serving store, one answer of each
    question for one org, and the audit; the run record, written."""
    from adapters.landing.manifest import landing_events

    started = time.perf_counter()
    layout = container.layout()
    progress = container.progress()
    _say(f"landing: {_land(container, zip_path or DEFAULT_ZIP)}")
    engine_name = container.config.engine()
    run = start_run(container, "demo", engine_name)
    results: list[StageResult] = []
    streamed = _stream_once(container, run)
    if streamed is not None:
        progress.stage_finished(streamed)
        results.append(streamed)
    engine = container.engine()
    results += usecases.run_batch(engine, layout, run, progress, landing_events(layout.landing))
    results.append(usecases.load_serving(engine, layout, container.serving(), progress))
    _show_answers(container)
    record = finish_run(container, run, "demo", engine.name, results)
    print("\naudit:")
    print(render_checks(record.reconciliations))
    checks, failed = record.reconciliations, failed_checks(record)
    _say(
        f"\ndemo {run.run_id}: {'all' if not failed else len(checks) - len(failed)} of "
        f"{len(checks)} reconciliations passed in {time.perf_counter() - started:.1f} s; "
        f"`finops audit --lake {layout.root}` shows the run"
    )
    return record
