"""Helpers shared by the benchmarks: the real dataset, a JVM's peak RSS, the DuckDB gold query.

Imported by the benchmark scripts as a sibling module (`python benchmarks/<script>.py` puts
this folder first on sys.path). Nothing happens at import time.
"""

from __future__ import annotations

import shutil
import threading
import time
import zipfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
REAL_ZIP = PROJECT.parent / "shared" / "datasets" / "cloud_provider_challenge_dataset_v1.zip"
REAL_EVENTS = 43_200
ZIP_LANDING = "datalake/landing/"


def extract_landing(zip_path: Path, landing: Path) -> Path:
    """The zip's datalake/landing/ content, written into a fresh `landing` folder (no
    _manifest.json: what `finops batch` and `finops stream` read is the files themselves)."""
    shutil.rmtree(landing, ignore_errors=True)
    with zipfile.ZipFile(zip_path) as archive:
        for member in archive.infolist():
            if member.filename.startswith(ZIP_LANDING) and not member.is_dir():
                target = landing / member.filename[len(ZIP_LANDING) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
    return landing


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


# ---- DuckDB: one query computing the gold sums --------------------------------------------------

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
    """(seconds, gold rows, total cost) of DUCKDB_GOLD over `<lake>/landing`'s events files, on
    2 threads; the seconds are the query's alone (connection opened before)."""
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
