"""Batch throughput of the Spark engine, against one DuckDB query computing the same gold.

    .venv/bin/python benchmarks/batch_throughput.py [--sizes 1,4] [--work DIR] [--skip-real]

For each size (millions of events) it generates a landing zone (`finops generate`, seed 1),
times bronze events -> silver -> gold through SparkEngine (given one session, started before
timing), then times one DuckDB query computing the gold sums (cost; requests/cpu/storage by
metric; count by org/day/service) straight from the same JSONL files, and prints events/s,
seconds and the ratio Spark/DuckDB (target <= 4). With two sizes it prints
time(large)/time(small) against 1.1 times the ratio of the sizes (the issue's 4.4 for
`--sizes 1,4`). Then it times `finops batch --engine spark` on the real dataset in a fresh
process (JVM start included) and reports the driver JVM's peak RSS (VmHWM) for both runs. The
real-dataset figures against the plain-Spark reference are benchmarks/targets.py's.

Needs the `bench` extra (duckdb).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs
from _common import PROJECT, REAL_EVENTS, REAL_ZIP, PeakRss, extract_landing, run_duckdb

# The target for time(4 M) / time(1 M) is 4.4: 1.1 times the ratio of the sizes.
GROWTH_TARGET_PER_SIZE_RATIO = 1.1


@attrs.frozen
class SparkTiming:
    events: int
    stages: dict[str, float]
    counts: dict[str, float]

    @property
    def seconds(self) -> float:
        return sum(seconds for stage, seconds in self.stages.items() if stage != "bronze_masters")


# ---- the runs -----------------------------------------------------------------------------------


def generate(lake: Path, millions: float) -> int:
    scale = millions * 1_000_000 / REAL_EVENTS
    if not (lake / "landing").exists():
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "entrypoints.cli",
                "generate",
                "--lake",
                str(lake),
                "--seed",
                "1",
                "--scale",
                f"{scale:.4f}",
            ],
            check=True,
            cwd=PROJECT,
        )
        print(
            f"  generated {millions} M events in {time.perf_counter() - started:.1f} s", flush=True
        )
    return sum(
        path.read_bytes().count(b"\n")
        for path in (lake / "landing" / "usage_events_stream").glob("*.jsonl")
    )


def run_spark(engine: object, lake: Path) -> SparkTiming:
    from adapters.landing.manifest import landing_events
    from finops_core import usecases
    from finops_core.lake import LakeLayout
    from finops_core.ports import RunContext, StageResult

    class Quiet:
        def stage_started(self, stage: str) -> None: ...

        def update(self, stage: str, message: str) -> None: ...

        def stage_finished(self, result: StageResult) -> None:
            print(f"    {result.stage}: {result.seconds:.2f} s", flush=True)

    from finops_core.tables import Layer

    for layer in Layer:
        shutil.rmtree(lake / layer.value, ignore_errors=True)
    run = RunContext(run_id="bench", started_at=dt.datetime.now(dt.timezone.utc))
    layout = LakeLayout(lake)
    results = usecases.run_batch(
        engine,  # type: ignore[arg-type]
        layout,
        run,
        Quiet(),
        landing_events(layout.landing),
        backfill=True,
    )
    counts = usecases.merged_counts(results)
    return SparkTiming(
        int(counts["bronze_events.landing_lines"]), {r.stage: r.seconds for r in results}, counts
    )


def real_dataset_wall_time(work: Path) -> tuple[float, float, int]:
    """(seconds, driver JVM peak RSS in MB, exit code) of `finops batch` on the real data."""
    lake = work / "real"
    shutil.rmtree(lake, ignore_errors=True)
    extract_landing(REAL_ZIP, lake / "landing")
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            str(PROJECT / ".venv" / "bin" / "finops"),
            "batch",
            "--engine",
            "spark",
            "--lake",
            str(lake),
        ],
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    with PeakRss(process.pid) as memory:
        _, errors = process.communicate()
    seconds = time.perf_counter() - started
    if process.returncode:
        print(errors.decode()[-2000:], file=sys.stderr)
    return seconds, memory.megabytes, process.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="1", help="millions of events, comma-separated (default 1)"
    )
    parser.add_argument(
        "--work", type=Path, default=None, help="work folder (default: a temporary one)"
    )
    parser.add_argument("--skip-real", action="store_true", help="skip the real-dataset wall time")
    args = parser.parse_args(argv)
    sizes = [float(size) for size in args.sizes.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="finops-batch-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"work folder {work}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )

    from entrypoints.containers import build_container

    # The Spark engine as `finops batch --engine spark` composes it (its master tables built on
    # the driver), over one session for every size.
    container = build_container(engine="spark")
    started = time.perf_counter()
    engine = container.engine()
    print(f"SparkSession started in {time.perf_counter() - started:.1f} s", flush=True)
    timings: dict[float, tuple[SparkTiming, float]] = {}
    try:
        with PeakRss(os.getpid()) as memory:
            for millions in sizes:
                lake = work / f"lake-{millions:g}M"
                print(f"{millions:g} M events:", flush=True)
                generate(lake, millions)
                spark = run_spark(engine, lake)
                duck_seconds, duck_rows, duck_cost = run_duckdb(lake)
                timings[millions] = (spark, duck_seconds)
                ratio = spark.seconds / duck_seconds
                print(
                    f"  spark  {spark.events:,} events in {spark.seconds:.1f} s "
                    f"= {spark.events / spark.seconds:,.0f} events/s "
                    f"(gold {int(spark.counts['gold.gold_rows']):,} rows, "
                    f"cost {spark.counts['gold.gold_cost_usd']:,.2f})\n"
                    f"  duckdb {duck_rows:,} gold rows in {duck_seconds:.2f} s "
                    f"= {spark.events / duck_seconds:,.0f} events/s "
                    f"(cost {duck_cost:,.2f})\n"
                    f"  ratio spark/duckdb {ratio:.1f} (target <= 4)",
                    flush=True,
                )
        print(
            f"driver JVM peak RSS during the sized runs: {memory.megabytes:,.0f} MB "
            "(target <= 1024 MB at 4 M events)",
            flush=True,
        )
    finally:
        container.shutdown_resources()
    if len(sizes) >= 2:
        small, large = sorted(timings)[0], sorted(timings)[-1]
        growth = timings[large][0].seconds / timings[small][0].seconds
        print(
            f"time({large:g} M) / time({small:g} M) = {growth:.2f} "
            f"(target <= {GROWTH_TARGET_PER_SIZE_RATIO * large / small:.1f})"
        )
    if not args.skip_real and REAL_ZIP.exists():
        seconds, rss, code = real_dataset_wall_time(work)
        print(
            f"`finops batch --engine spark` on the real dataset: {seconds:.1f} s wall "
            f"(exit {code}; its ratio to the plain-Spark reference: benchmarks/targets.py), "
            f"driver JVM peak RSS {rss:,.0f} MB (target <= 1024 MB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
