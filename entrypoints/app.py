"""Application services the CLI and notebooks call; they get every adapter from the container."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from finops_core import usecases
from finops_core.lake import LakeLayout


def batch(lake: Path, engine: str | None = None, master: str | None = None, verbose: bool = False, force_backfill: bool = False) -> int:
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
        results = usecases.run_batch(container.engine(), layout, run, container.progress(), backfill=True if force_backfill else None)
        counts = usecases.merged_counts(results)
        checks = usecases.reconcile(counts)
        record = {
            "run_id": run.run_id,
            "kind": "batch",
            "engine": container.config.engine(),
            "started_at": run.started_at.isoformat(),
            "stages": [{"stage": r.stage, "seconds": r.seconds, "skipped": r.skipped, "counts": dict(r.counts)} for r in results],
            "reconciliations": [{"name": c.name, "left": c.left, "right": c.right, "passed": c.passed, "detail": c.detail} for c in checks],
        }
        container.run_log().write(record)
        total = sum(r.seconds for r in results)
        failed = [c for c in checks if not c.passed]
        print(f"batch {run.run_id}: {len(results)} stages in {total:.2f} s; reconciliations {len(checks) - len(failed)}/{len(checks)} passed", file=sys.stderr)
        for check in failed:
            print(f"  FAILED {check.name}: {check.left} vs {check.right}", file=sys.stderr)
        return 1 if failed else 0
    finally:
        container.shutdown_resources()


def dumps(record: object) -> str:
    return json.dumps(record, indent=2, sort_keys=True, default=str)
