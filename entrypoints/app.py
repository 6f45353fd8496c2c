"""Application services the CLI and notebooks call; they get every adapter from the container."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from finops_core import usecases
from finops_core.aggregate import GoldRow
from finops_core.lake import LakeLayout
from finops_core.ports import RunContext, StageResult


def batch(
    lake: Path,
    engine: str | None = None,
    master: str | None = None,
    verbose: bool = False,
    force_backfill: bool = False,
) -> int:
    from entrypoints.containers import build_container

    container = build_container(lake=lake, engine=engine, spark_master=master, verbose=verbose)
    try:
        layout: LakeLayout = container.layout()
        if not layout.landing.exists():
            from finops_core.errors import DatasetMissing

            raise DatasetMissing(
                f"there is no landing zone in {layout.landing}: run `finops landing` (or `finops generate`) first"
            )
        run = usecases.new_run(container.clock(), "batch")
        results = usecases.run_batch(
            container.engine(),
            layout,
            run,
            container.progress(),
            backfill=True if force_backfill else None,
        )
        counts = usecases.merged_counts(results)
        checks = usecases.reconcile(counts)
        record = _run_record(run, "batch", container.config.engine(), results, checks)
        container.run_log().write(record)
        total = sum(r.seconds for r in results)
        failed = [c for c in checks if not c.passed]
        print(
            f"batch {run.run_id}: {len(results)} stages in {total:.2f} s; reconciliations {len(checks) - len(failed)}/{len(checks)} passed",
            file=sys.stderr,
        )
        for check in failed:
            print(f"  FAILED {check.name}: {check.left} vs {check.right}", file=sys.stderr)
        return 1 if failed else 0
    finally:
        container.shutdown_resources()


DEFAULT_ZIP = Path("data/cloud_provider_challenge_dataset_v1.zip")


def _land(layout: LakeLayout, zip_path: Path) -> str:
    """Land the zip if present, else generate scale-1 data; skip when landing already exists."""
    from adapters.landing.generator import generate
    from adapters.landing.zip_intake import land_zip
    from finops_core.errors import LandingRefused

    if zip_path.is_file():
        try:
            return land_zip(zip_path, layout.root).summary()
        except LandingRefused as refused:
            if not layout.landing.exists():
                raise
            return f"skipped: {layout.landing} holds another landing ({refused}); using it as it is"
    if layout.landing.exists():
        return f"skipped: {layout.landing} already holds a landing zone"
    print(
        f"no dataset at {zip_path}: generating a scale-1 synthetic landing instead", file=sys.stderr
    )
    return generate(layout.root, seed=1, scale=1.0).summary()


def _stream_once(container: Any, layout: LakeLayout, run: RunContext) -> StageResult | None:
    """The speed layer once (availableNow) when the engine is Spark, on the engine's session."""
    engine = container.engine()
    if getattr(engine, "name", None) != "spark":
        return None
    from adapters.spark.events import parse_event_lines
    from adapters.spark.streaming import stream_once_stage

    container.progress().stage_started("stream")
    result = stream_once_stage(engine.spark, layout, run, parse_event_lines)
    if not result.counts.get("files"):
        return StageResult(
            "stream",
            result.counts,
            result.seconds,
            skipped=True,
            note="no new landing files since the last checkpoint",
        )
    return result


def demo(
    lake: Path, engine: str | None = None, zip_path: str | None = None, verbose: bool = False
) -> int:
    """Landing, speed layer once, batch, SQLite serving, Q1/Q2 for one org, and the audit."""
    import time

    from entrypoints.commands.query import format_table
    from entrypoints.containers import build_container
    from entrypoints.serving_factory import close_serving_store, open_serving_store

    started = time.perf_counter()
    container = build_container(lake=lake, engine=engine, verbose=verbose)
    try:
        layout: LakeLayout = container.layout()
        progress = container.progress()
        print(
            f"landing: {_land(layout, Path(zip_path) if zip_path else DEFAULT_ZIP)}",
            file=sys.stderr,
        )
        run = usecases.new_run(container.clock(), "demo")
        results: list[StageResult] = []
        streamed = _stream_once(container, layout, run)
        if streamed is not None:
            progress.stage_finished(streamed)
            results.append(streamed)
        results += usecases.run_batch(container.engine(), layout, run, progress)
        store = open_serving_store("sqlite", layout)
        try:
            results.append(usecases.load_serving(container.engine(), layout, store, progress))
            counts = usecases.merged_counts(results)
            checks = usecases.reconcile(counts)
            org, latest = _costliest_org(container.engine().read_gold(layout))
            if org is not None and latest is not None:
                first = latest - dt.timedelta(days=6)
                q1 = store.daily_usage(org, first, latest)
                print(f"\nQ1: daily cost and requests for {org}, {first} .. {latest}")
                print(
                    format_table(
                        [
                            "usage_date",
                            "service",
                            "daily_cost_usd",
                            "requests",
                            "cost_per_request_usd",
                            "carbon_kg",
                        ],
                        [
                            [
                                r.usage_date,
                                r.service,
                                r.daily_cost_usd,
                                r.requests,
                                r.cost_per_request_usd,
                                r.carbon_kg,
                            ]
                            for r in q1
                        ],
                    )
                )
                q2 = store.top_services(org, days=14, as_of=latest, limit=5)
                print(f"\nQ2: top services by cost for {org}, 14 days to {latest}")
                print(
                    format_table(
                        ["service", "total_cost_usd"], [[c.service, c.total_cost_usd] for c in q2]
                    )
                )
        finally:
            close_serving_store(store)
        record = _run_record(run, "demo", container.config.engine(), results, checks)
        container.run_log().write(record)
        print("\naudit:")
        print(
            format_table(
                ["reconciliation", "left", "right", "result"],
                [[c.name, c.left, c.right, "PASS" if c.passed else "FAIL"] for c in checks],
            )
        )
        failed = [c for c in checks if not c.passed]
        print(
            f"\ndemo {run.run_id}: {'all' if not failed else len(checks) - len(failed)} of {len(checks)} reconciliations passed in {time.perf_counter() - started:.1f} s; `finops audit --lake {layout.root}` shows the run",
            file=sys.stderr,
        )
        return 1 if failed else 0
    finally:
        container.shutdown_resources()


def _costliest_org(rows: Iterable[GoldRow]) -> tuple[str | None, dt.date | None]:
    """The org with the highest total cost (ties by id), and the latest usage date loaded."""
    totals: dict[str, float] = {}
    latest: dt.date | None = None
    for row in rows:
        totals[row.org_id] = totals.get(row.org_id, 0.0) + row.daily_cost_usd
        latest = row.usage_date if latest is None or row.usage_date > latest else latest
    if not totals:
        return None, None
    return max(totals, key=lambda org: (totals[org], org)), latest


def _run_record(
    run: RunContext,
    kind: str,
    engine: str,
    results: list[StageResult],
    checks: list[usecases.Reconciliation],
) -> dict[str, object]:
    return {
        "run_id": run.run_id,
        "kind": kind,
        "engine": engine,
        "started_at": run.started_at.isoformat(),
        "stages": [
            {
                "stage": r.stage,
                "seconds": r.seconds,
                "skipped": r.skipped,
                "note": r.note,
                "counts": dict(r.counts),
            }
            for r in results
        ],
        "reconciliations": [
            {
                "name": c.name,
                "left": c.left,
                "right": c.right,
                "passed": c.passed,
                "detail": c.detail,
            }
            for c in checks
        ],
    }


def dumps(record: object) -> str:
    return json.dumps(record, indent=2, sort_keys=True, default=str)
