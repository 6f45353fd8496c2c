"""Helpers for the speed-layer tests: a tiny JSONL landing, `finops stream` subprocesses, and
what the lake holds afterwards (read with the `deltalake` package: no Spark is needed to check)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from adapters.lake.delta import DeltaLake
from finops_core.contracts import EVENT_KEYS_V1, EVENT_KEYS_V2
from finops_core.lake import LakeLayout
from finops_core.tables import BRONZE_EVENTS, LANDING_FILES, QUARANTINE_EVENTS

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIRST_DAY = dt.datetime(2025, 7, 3, tzinfo=dt.timezone.utc)
CHECKPOINT = Path("checkpoints") / "bronze_usage_events"


@attrs.frozen
class TinyLanding:
    """What a tiny landing holds: every line, the distinct event ids, the malformed lines."""

    lines: int
    event_ids: frozenset[str]
    malformed: int
    duplicate_copies: int
    files: int


def _event(rng: random.Random, index: int) -> dict[str, object]:
    instant = FIRST_DAY + dt.timedelta(minutes=rng.randrange(60 * 24 * 60))
    metric = rng.choice(("requests", "cpu_hours", "storage_gb_hours"))
    keys = EVENT_KEYS_V1 if instant.date() <= dt.date(2025, 7, 17) else EVENT_KEYS_V2
    value = round(rng.uniform(0, 100), 4)
    fields: dict[str, object] = {
        "event_id": f"evt_{index:012d}",
        "timestamp": instant.strftime("%Y-%m-%dT%H:%M:00Z"),
        "org_id": f"org_{rng.randrange(5):08d}",
        "resource_id": f"res_{rng.randrange(20):08d}",
        "service": "compute",
        "region": "us-east-1",
        "metric": metric,
        "value": value,
        "unit": {"requests": "count", "cpu_hours": "hours", "storage_gb_hours": "gb_hours"}[metric],
        "cost_usd_increment": round(value * 0.08, 4),
        "schema_version": 1 if keys is EVENT_KEYS_V1 else 2,
        "carbon_kg": round(value * 0.0002, 6),
    }
    return {key: fields[key] for key in keys}


def file_lines(seed: int, files: int, lines_per_file: int, dirt: bool = True) -> list[list[bytes]]:
    """Lines per file: events that sample the whole period, plus (with dirt) a few malformed lines
    and event ids repeated in a later file."""
    rng = random.Random(seed)
    result: list[list[bytes]] = []
    index = 0
    for _ in range(files):
        lines = []
        for _ in range(lines_per_file):
            lines.append(json.dumps(_event(rng, index)).encode())
            index += 1
        result.append(lines)
    if dirt:
        result[1].append(b"<<not json>>")
        result[4].append(b'{"event_id": "evt_trunc", "timestamp": "2025-0')
        result[7].append(b'{"event_id": "evt_bad_utf8", "region": "\xff\xfe"}')
        result[9].append(b"[1, 2, 3]")
        for source, target in ((0, 5), (3, 11), (6, 12)):  # same line re-sent in a later file
            result[target].append(result[source][0])
    for lines in result:
        rng.shuffle(lines)
    return result


def write_tiny_landing(
    lake: Path, seed: int = 7, files: int = 30, lines_per_file: int = 20, dirt: bool = True
) -> TinyLanding:
    directory = lake / "landing" / "usage_events_stream"
    directory.mkdir(parents=True, exist_ok=True)
    contents = file_lines(seed, files, lines_per_file, dirt)
    for number, lines in enumerate(contents):
        drop_file(directory, f"events_part_{number:04d}.jsonl", lines)
    return describe(contents)


def describe(contents: Sequence[Sequence[bytes]]) -> TinyLanding:
    ids: Counter[str] = Counter()
    malformed = 0
    for lines in contents:
        for line in lines:
            try:
                document = json.loads(line.decode("utf-8"))
            except ValueError:
                document = None
            if not isinstance(document, dict):
                malformed += 1
            else:
                ids[document["event_id"]] += 1
    return TinyLanding(
        lines=sum(len(lines) for lines in contents),
        event_ids=frozenset(ids),
        malformed=malformed,
        duplicate_copies=sum(count - 1 for count in ids.values()),
        files=len(contents),
    )


def drop_file(directory: Path, name: str, lines: Sequence[bytes]) -> None:
    """Land a file atomically: write it beside, then rename it into the watched folder."""
    staging = directory.parent / f".{name}.tmp"
    staging.write_bytes(b"".join(line + b"\n" for line in lines))
    os.replace(staging, directory / name)


# ---- the lake afterwards ------------------------------------------------------------------------


def bronze_rows(lake: Path) -> list[dict[str, object]]:
    return DeltaLake(LakeLayout(lake)).read_table(BRONZE_EVENTS)


def quarantine_rows(lake: Path) -> list[dict[str, object]]:
    return DeltaLake(LakeLayout(lake)).read_table(QUARANTINE_EVENTS)


def ledger_rows(lake: Path) -> list[dict[str, object]]:
    return DeltaLake(LakeLayout(lake)).read_table(LANDING_FILES)


def table_versions(lake: Path) -> dict[str, int]:
    """The current Delta version of each table the speed layer writes (absent ones left out)."""
    from deltalake import DeltaTable

    layout = LakeLayout(lake)
    folders = {
        "bronze": layout.table(BRONZE_EVENTS),
        "quarantine": layout.table(QUARANTINE_EVENTS),
        "ledger": layout.table(LANDING_FILES),
        "dedupe state": lake / CHECKPOINT / "event_ids",
    }
    return {
        name: DeltaTable(str(folder)).version()
        for name, folder in folders.items()
        if DeltaTable.is_deltatable(str(folder))
    }


def bronze_id_counts(lake: Path) -> Counter[str]:
    return Counter(str(row["event_id"]) for row in bronze_rows(lake))


def committed_batches(lake: Path) -> int:
    commits = lake / CHECKPOINT / "commits"
    return len([p for p in commits.iterdir() if p.name.isdigit()]) if commits.exists() else 0


def batch_records(lake: Path) -> dict[int, dict[str, object]]:
    folder = lake / CHECKPOINT / "batches"
    if not folder.exists():
        return {}
    return {
        int(p.stem): json.loads(p.read_text()) for p in folder.glob("*.json") if p.stem.isdigit()
    }


# ---- `finops stream` in a subprocess ------------------------------------------------------------


def finops_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "entrypoints.cli", *args]


def start_stream(lake: Path, *args: str) -> subprocess.Popen[str]:
    """`finops stream` in its own process group (so a kill takes its JVM down with it)."""
    env = {k: v for k, v in os.environ.items() if k != "FINOPS_LAKE"}
    return subprocess.Popen(
        finops_command("stream", "--lake", str(lake), *args),
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run_stream(lake: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    process = start_stream(lake, *args)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def kill_group(process: subprocess.Popen[str], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    process.communicate(timeout=60)


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    process: subprocess.Popen[str] | None = None,
    interval: float = 0.05,
) -> None:
    """Poll `condition` every `interval` seconds (a condition that reads tables takes CPU from
    the stream it waits for: poll it less often)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            _, stderr = process.communicate()
            raise AssertionError(
                f"finops stream exited ({process.returncode}) before {what}:\n{stderr[-3000:]}"
            )
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def totals_line(stdout: str) -> dict[str, float]:
    """The `stream <run_id>: key=value ...` line `finops stream` prints last."""
    line = [text for text in stdout.splitlines() if text.startswith("stream ")][-1]
    pairs = line.split(": ", 1)[1].split()
    return {key: float(value) for key, value in (pair.split("=", 1) for pair in pairs)}
