"""Benchmark the speed layer: landing-to-bronze latency, and `--once` throughput against the
batch backfill. Prints `name=value` lines.

1. Latency: a continuous query (1 s trigger) in this process; 20 files (360 lines each) are
   dropped into landing one after another, each once the previous one is in bronze, at a random
   phase of the trigger; a file's latency runs from its rename into landing to the end of the
   micro-batch that made its rows readable in bronze. Reports p50 and p95.
2. Throughput: a generated landing of about 1 M events (scale 23.2), landed once, then bronze
   built by the stream (`--once`, one micro-batch) and by the batch backfill
   (`SparkEngine.bronze_events`) on the same session, each into its own lake.
3. Optionally the wall time of `finops stream --once` (a fresh process: JVM start included) on
   the real dataset, when its zip is at ../shared/datasets/.

    .venv/bin/python benchmarks/stream_latency.py [--files 20] [--trigger 1] [--scale 23.2]
        [--skip-latency] [--skip-throughput] [--skip-real]
"""

from __future__ import annotations

import argparse
import datetime as dt
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from finops_core.ports import RunContext

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REAL_ZIP = PROJECT_ROOT.parent / "shared" / "datasets" / "cloud_provider_challenge_dataset_v1.zip"


def _run(name: str) -> RunContext:
    from finops_core.ports import RunContext

    return RunContext(run_id=f"bench-{name}", started_at=dt.datetime.now(dt.timezone.utc))


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency(spark: object, work: Path, files: int, trigger: float) -> dict[str, float]:
    from adapters.landing.generator import generate
    from adapters.spark.events import classify_lines
    from adapters.spark.stream_sink import BatchCounts
    from adapters.spark.streaming import BronzeStream, StreamOptions
    from finops_core.lake import LakeLayout

    source = work / "latency-source"
    generate(source, seed=5, scale=max(0.5, files * 360 / 43_200))
    available = sorted((source / "landing" / "usage_events_stream").glob("*.jsonl"))[:files]
    lake = LakeLayout(work / "latency-lake")
    lake.landing_events.mkdir(parents=True)
    finished: queue.Queue[tuple[float, BatchCounts]] = queue.Queue()
    stop = threading.Event()
    stream = BronzeStream(spark, lake, classify_lines)  # type: ignore[arg-type]
    failure: list[BaseException] = []

    def run() -> None:
        try:
            stream.run(
                _run("latency"),  # type: ignore[arg-type]
                StreamOptions(once=False, trigger_seconds=trigger),
                stop,
                on_batch=lambda counts: finished.put((time.monotonic(), counts)),
            )
        except BaseException as error:  # reported below
            failure.append(error)

    thread = threading.Thread(target=run, name="latency-stream")
    thread.start()
    rng = random.Random(1)
    seconds: list[float] = []
    try:
        time.sleep(3 * trigger)  # let the query start and run its first (empty) triggers
        for path in available:
            time.sleep(rng.uniform(0, trigger))
            staging = lake.landing / f".{path.name}"
            shutil.copyfile(path, staging)
            landed = time.monotonic()
            staging.rename(lake.landing_events / path.name)
            while True:
                at, counts = finished.get(timeout=600)
                if counts.landing_lines:
                    seconds.append(at - landed)
                    break
    finally:
        stop.set()
        thread.join(timeout=600)
    if failure:
        raise failure[0]
    return {
        "latency_files": len(seconds),
        "latency_trigger_s": trigger,
        "latency_p50_s": round(statistics.median(seconds), 3),
        "latency_p95_s": round(_percentile(seconds, 0.95), 3),
        "latency_max_s": round(max(seconds), 3),
    }


def throughput(spark: object, work: Path, scale: float) -> dict[str, float]:
    from adapters.landing.generator import generate
    from adapters.landing.manifest import landing_events
    from adapters.spark.engine import SparkEngine
    from adapters.spark.events import classify_lines
    from adapters.spark.streaming import BronzeStream, StreamOptions
    from finops_core.intake import plan_intake
    from finops_core.lake import LakeLayout

    started = time.perf_counter()
    generated = generate(work / "big", seed=11, scale=scale)
    results: dict[str, float] = {
        "throughput_events": generated.events,
        "throughput_files": len(
            list((work / "big" / "landing" / "usage_events_stream").glob("*.jsonl"))
        ),
        "generate_s": round(time.perf_counter() - started, 1),
    }
    for name in ("stream", "backfill"):
        (work / name).mkdir()
        (work / name / "landing").symlink_to(work / "big" / "landing")
    # A small warm-up so neither side pays the first-query JIT cost alone.
    warm = LakeLayout(work / "warm")
    warm.landing_events.mkdir(parents=True)
    for path in sorted((work / "big" / "landing" / "usage_events_stream").glob("*.jsonl"))[:2]:
        shutil.copyfile(path, warm.landing_events / path.name)
    BronzeStream(spark, warm, classify_lines).run(_run("warm"), StreamOptions(once=True))  # type: ignore[arg-type]

    started = time.perf_counter()
    streamed = BronzeStream(spark, LakeLayout(work / "stream"), classify_lines).run(  # type: ignore[arg-type]
        _run("once"),
        StreamOptions(once=True),  # type: ignore[arg-type]
    )
    stream_seconds = time.perf_counter() - started
    engine = SparkEngine(spark=spark)  # type: ignore[arg-type]
    backfill_lake = LakeLayout(work / "backfill")
    plan = plan_intake(landing_events(backfill_lake.landing), [], full=True)
    started = time.perf_counter()
    backfill = engine.bronze_events(backfill_lake, _run("backfill"), plan)
    backfill_seconds = time.perf_counter() - started
    results.update(
        {
            "stream_once_s": round(stream_seconds, 2),
            "stream_once_bronze_rows": streamed.totals["bronze_rows"],
            "stream_once_events_per_s": round(streamed.totals["landing_lines"] / stream_seconds),
            "backfill_s": round(backfill_seconds, 2),
            "backfill_bronze_rows": backfill.counts["bronze_rows"],
            "backfill_events_per_s": round(backfill.counts["landing_lines"] / backfill_seconds),
            "stream_over_backfill_time": round(stream_seconds / backfill_seconds, 2),
        }
    )
    return results


def real_once_wall(work: Path) -> dict[str, float]:
    """`finops stream --once` on the real dataset in a fresh process (JVM start included)."""
    lake = work / "real"
    with zipfile.ZipFile(REAL_ZIP) as archive:
        for member in archive.infolist():
            if member.filename.startswith("datalake/landing/") and not member.is_dir():
                target = lake / "landing" / member.filename[len("datalake/landing/") :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "stream", "--lake", str(lake), "--once"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    totals = done.stdout.strip().splitlines()[-1]
    return {
        "real_once_wall_s": round(wall, 2),
        "real_once_stream_s": float(totals.rsplit("seconds=", 1)[1]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--trigger", type=float, default=1.0)
    parser.add_argument(
        "--scale", type=float, default=23.2, help="generator scale (23.2 = about 1 M events)"
    )
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-real", action="store_true")
    args = parser.parse_args(argv)

    from adapters.spark.session import SessionSettings, SparkSessions

    sessions = SparkSessions(SessionSettings())
    spark = sessions.get()
    work = Path(tempfile.mkdtemp(prefix="finops-stream-bench-"))
    figures: dict[str, float] = {}
    try:
        if not args.skip_latency:
            figures.update(_printed(latency(spark, work, args.files, args.trigger)))
        if not args.skip_throughput:
            figures.update(_printed(throughput(spark, work, args.scale)))
    finally:
        sessions.close()
        if not args.skip_real and REAL_ZIP.exists():
            _printed(real_once_wall(work))
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _printed(figures: dict[str, float]) -> dict[str, float]:
    _print(figures)
    return figures


def _print(figures: dict[str, float]) -> None:
    for name, value in figures.items():
        print(f"{name}={value}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
