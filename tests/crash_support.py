"""Kill a `finops` command at a moment seen from outside, then look at the lake as a reader would.

A `KillPoint` is a condition on the lake's files, polled every few milliseconds while the command
runs: a data file of a table that was not there when the command started (the table is being
written, nothing committed yet) or a new version in its `_delta_log` (the commit just landed, the
stage has not finished). The whole process group is SIGKILLed when it holds, as a power cut or an
OOM killer would stop it: no handler, no cleanup.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import attrs
from deltalake import DeltaTable

FINOPS = [sys.executable, "-m", "entrypoints.cli"]
POLL_SECONDS = 0.003


def data_files(table: Path) -> set[Path]:
    if not table.is_dir():
        return set()
    return {
        path
        for path in table.rglob("*.parquet")
        if "_delta_log" not in path.relative_to(table).parts
    }


def commits(table: Path) -> int:
    log = table / "_delta_log"
    return len(list(log.glob("*.json"))) if log.is_dir() else 0


@attrs.frozen
class KillPoint:
    """`what` happens to `table` (a folder below the lake root, e.g. "silver/usage_events")."""

    table: str
    # "writing": a new data file exists; "committed": a new log version exists; "file:<glob>": a
    # new file matching the glob exists below `table` (a stream checkpoint's offsets, commits);
    # "after:<seconds>": that long after the command started; "size:<bytes>": a file matching
    # `table` (a glob below the lake) holds at least that many bytes (a SQLite write-ahead log);
    # "since:<seconds>": that long after a new file matching `table` (a glob) appeared.
    what: str

    @property
    def name(self) -> str:
        return f"{self.table} {self.what}"

    def armed(self, lake: Path) -> Callable[[], bool]:
        """The condition, measured against the lake as it is now (before the command starts)."""
        folder = lake / self.table
        if self.what == "writing":
            before = data_files(folder)
            return lambda: bool(data_files(folder) - before)
        if self.what == "committed":
            versions = commits(folder)
            return lambda: commits(folder) > versions
        if self.what.startswith("after:"):
            deadline = time.monotonic() + float(self.what.removeprefix("after:"))
            return lambda: time.monotonic() >= deadline
        if self.what.startswith("size:"):
            least = int(self.what.removeprefix("size:"))
            return lambda: any(_size(path) >= least for path in lake.glob(self.table))
        if self.what.startswith("since:"):
            delay = float(self.what.removeprefix("since:"))
            existing = set(lake.glob(self.table))
            appeared: list[float] = []

            def since() -> bool:
                if not appeared and set(lake.glob(self.table)) - existing:
                    appeared.append(time.monotonic())
                return bool(appeared) and time.monotonic() - appeared[0] >= delay

            return since
        if self.what.startswith("file:"):
            pattern = self.what.removeprefix("file:")
            existing = set(folder.glob(pattern))
            return lambda: bool(set(folder.glob(pattern)) - existing)
        raise ValueError(self.what)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


@attrs.frozen
class Outcome:
    point: KillPoint
    killed: bool  # False: the command ended before the condition held
    returncode: int
    seconds: float
    output: str


def run_until(argv: list[str], lake: Path, point: KillPoint, timeout: float = 600) -> Outcome:
    """Run `finops argv` and SIGKILL its process group the moment `point` holds."""
    condition = point.armed(lake)
    started = time.monotonic()
    process = subprocess.Popen(
        [*FINOPS, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    killed = False
    try:
        while process.poll() is None:
            if condition():
                os.killpg(process.pid, signal.SIGKILL)
                killed = True
                break
            if time.monotonic() - started > timeout:
                os.killpg(process.pid, signal.SIGKILL)
                raise AssertionError(f"{argv} did not reach {point.name} in {timeout} s")
            time.sleep(POLL_SECONDS)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    output = process.stdout.read().decode(errors="replace") if process.stdout else ""
    _reap_group(process.pid)
    return Outcome(point, killed, process.returncode, time.monotonic() - started, output)


def _reap_group(pgid: int) -> None:
    """Make sure nothing of the killed group (a Spark JVM) lives on."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def finops(*argv: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FINOPS, *argv], capture_output=True, text=True, timeout=timeout)


# ---- what a reader sees -------------------------------------------------------------------------


def table_rows(lake: Path, table: str) -> int | None:
    """Rows of the table's current committed version, or None when no version is committed."""
    folder = lake / table
    if not DeltaTable.is_deltatable(str(folder)):
        return None
    return int(DeltaTable(str(folder)).to_pyarrow_table().num_rows)


def column_sum(lake: Path, table: str, column: str) -> float:
    data = DeltaTable(str(lake / table)).to_pyarrow_table(columns=[column])
    return float(sum(value for value in data.column(column).to_pylist() if value is not None))


def column_values(lake: Path, table: str, column: str) -> list[object]:
    data = DeltaTable(str(lake / table)).to_pyarrow_table(columns=[column])
    return list(data.column(column).to_pylist())


def lake_tables(lake: Path) -> list[str]:
    """Every Delta table below the lake root, as "layer/name"."""
    return sorted(
        log.parent.relative_to(lake).as_posix()
        for log in lake.glob("*/*/_delta_log")
        if log.is_dir()
    )
