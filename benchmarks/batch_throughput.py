"""Batch throughput of the Spark engine, against one DuckDB query computing the same gold.

    .venv/bin/python benchmarks/batch_throughput.py [--sizes 1,4] [--work DIR] [--skip-real]

For each size (millions of events) it generates a landing zone (`finops generate`, seed 1),
times bronze events -> silver -> gold through SparkEngine (given one session, started before
timing), then times one DuckDB query computing the gold sums (cost; requests/cpu/storage by
metric; count by org/day/service) straight from the same JSONL files, and prints events/s,
seconds and the ratio Spark/DuckDB. With two sizes it prints time(large)/time(small) scaled to
4x. Then it times `finops batch --engine spark` on the real dataset in a fresh process (JVM start
included) and reports the driver JVM's peak RSS (VmHWM) for both runs.

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
import threading
import time
import zipfile
from pathlib import Path

import attrs

PROJECT = Path(__file__).resolve().parents[1]
REAL_ZIP = PROJECT.parent / "shared" / "datasets" / "cloud_provider_challenge_dataset_v1.zip"
REAL_EVENTS = 43_200


@attrs.frozen
class SparkTiming:
    events: int
    stages: dict[str, float]
    counts: dict[str, float]

    @property
    def seconds(self) -> float:
        return sum(seconds for stage, seconds in self.stages.items() if stage != "bronze_masters")


# ---- processes and memory -----------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _java_descendants(pid: int) -> list[int]:
    result, queue = [], [pid]
    while queue:
        for child in _children(queue.pop()):
            queue.append(child)
            try:
                if "java" in (Path("/proc") / str(child) / "comm").read_text():
                    result.append(child)
            except OSError:
                pass
    return result


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakRss:
    """Polls the java processes under `pid` and keeps the largest peak RSS seen (MB)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        for java in _java_descendants(self.pid):
            self.peak_kb = max(self.peak_kb, _status_kb(java, "VmHWM"), _status_kb(java, "VmRSS"))

    def _poll(self) -> None:
        while not self._stop.wait(0.25):
            self.sample()

    @property
    def megabytes(self) -> float:
        return self.peak_kb / 1024


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
    results = usecases.run_batch(engine, LakeLayout(lake), run, Quiet(), backfill=True)  # type: ignore[arg-type]
    counts = usecases.merged_counts(results)
    return SparkTiming(
        int(counts["bronze_events.landing_lines"]), {r.stage: r.seconds for r in results}, counts
    )


DUCKDB_GOLD = """
SELECT org_id,
       CAST(strptime("timestamp", '%Y-%m-%dT%H:%M:%SZ') AS DATE) AS usage_date,
       coalesce(service, 'unknown') AS service,
       sum(TRY_CAST(cost_usd_increment AS DOUBLE)) AS daily_cost_usd,
       coalesce(sum(CASE WHEN metric = 'requests' THEN TRY_CAST("value" AS DOUBLE) END), 0)
           AS requests,
       coalesce(sum(CASE WHEN metric = 'cpu_hours' THEN TRY_CAST("value" AS DOUBLE) END), 0)
           AS cpu_hours,
       coalesce(sum(CASE WHEN metric = 'storage_gb_hours' THEN TRY_CAST("value" AS DOUBLE) END), 0)
           AS storage_gb_hours,
       count(*) AS event_count
FROM read_json(?, format = 'newline_delimited', ignore_errors = true,
               columns = {event_id: 'VARCHAR', "timestamp": 'VARCHAR', org_id: 'VARCHAR',
                          service: 'VARCHAR', metric: 'VARCHAR', "value": 'VARCHAR',
                          cost_usd_increment: 'VARCHAR'})
GROUP BY ALL
"""


def run_duckdb(lake: Path) -> tuple[float, int, float]:
    import duckdb

    pattern = str(lake / "landing" / "usage_events_stream" / "*.jsonl")
    connection = duckdb.connect()
    connection.execute("SET threads = 2")
    started = time.perf_counter()
    rows = connection.execute(
        f"SELECT count(*), sum(daily_cost_usd) FROM ({DUCKDB_GOLD})", [pattern]
    ).fetchone()
    seconds = time.perf_counter() - started
    connection.close()
    assert rows is not None
    return seconds, int(rows[0]), float(rows[1])


def real_dataset_wall_time(work: Path) -> tuple[float, float, int]:
    """(seconds, driver JVM peak RSS in MB, exit code) of `finops batch` on the real data."""
    lake = work / "real"
    shutil.rmtree(lake, ignore_errors=True)
    with zipfile.ZipFile(REAL_ZIP) as archive:
        for member in archive.infolist():
            if member.filename.startswith("datalake/landing/") and not member.is_dir():
                target = lake / "landing" / member.filename[len("datalake/landing/") :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
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

    from adapters.spark.engine import SparkEngine
    from adapters.spark.session import SparkSessions

    sessions = SparkSessions()
    started = time.perf_counter()
    engine = SparkEngine(spark=sessions.get())
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
        print(f"driver JVM peak RSS during the sized runs: {memory.megabytes:,.0f} MB", flush=True)
    finally:
        sessions.close()
    if len(sizes) >= 2:
        small, large = sorted(timings)[0], sorted(timings)[-1]
        growth = timings[large][0].seconds / timings[small][0].seconds
        print(
            f"time({large:g} M) / time({small:g} M) = {growth:.2f} "
            f"(target <= {1.1 * large / small:.1f})"
        )
    if not args.skip_real and REAL_ZIP.exists():
        seconds, rss, code = real_dataset_wall_time(work)
        print(
            f"`finops batch --engine spark` on the real dataset: {seconds:.1f} s wall "
            f"(exit {code}, target <= 20 s), "
            f"driver JVM peak RSS {rss:,.0f} MB (target <= 1024 MB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
