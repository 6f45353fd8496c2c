"""A full disk is one sentence naming where and what to do: never a traceback.

The real cases run on a small tmpfs the test mounts (root, as in CI); where mounting is not
allowed they skip and the injected case still runs.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from deltalake import DeltaTable

from entrypoints.cli import main
from entrypoints.config import lake_write_error
from finops_core.errors import StorageFailed

FINOPS = [sys.executable, "-m", "entrypoints.cli"]


def _finops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FINOPS, *args], capture_output=True, text=True, timeout=300)


def _tmpfs(mount: Path, size: str) -> Iterator[Path]:
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted at the end."""
    yield from _tmpfs(tmp_path / "disk", "1m")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 32 MiB tmpfs (room for a small lake), unmounted at the end."""
    yield from _tmpfs(tmp_path / "disk", "32m")


def _fill(disk: Path, leave: int) -> Path:
    """A file taking all the disk's free space but `leave` bytes."""
    filler = disk / "filler.bin"
    free = shutil.disk_usage(disk).free - leave
    with filler.open("wb") as handle:
        handle.truncate(0)
        block = b"\0" * (1 << 16)
        while free > 0:
            free -= handle.write(block[: min(len(block), free)])
    return filler


def _assert_one_sentence(done: subprocess.CompletedProcess[str], where: Path) -> None:
    assert done.returncode == StorageFailed.exit_code, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("finops:")]
    assert errors == [
        f"finops: The disk holding {where} is full (No space left on device); free space there "
        f"(see `df -h {where}`) and run the command again."
    ]
    assert "Traceback" not in done.stderr


def test_generating_onto_a_full_disk_says_so_and_leaves_no_staging_behind(small_disk: Path):
    lake = small_disk / "lake"
    _assert_one_sentence(_finops("generate", "--lake", str(lake), "--scale", "0.2"), lake)
    # The staging folder was removed, the disk is free again; only the run's record is left,
    # saying it did not finish.
    assert [p.name for p in lake.iterdir()] == ["_runs"]
    (record,) = (lake / "_runs").glob("*.json")
    assert json.loads(record.read_text())["finished"] is False
    assert shutil.disk_usage(small_disk).used < 64 * 1024


def test_a_batch_that_fills_the_disk_keeps_the_last_committed_lake_and_reruns_once_freed(
    disk: Path,
) -> None:
    lake = disk / "lake"
    assert main(["generate", "--lake", str(lake), "--scale", "0.05"]) == 0
    assert main(["batch", "--engine", "memory", "--lake", str(lake)]) == 0
    gold = lake / "gold" / "org_daily_usage_by_service"
    before = _rows(gold)
    assert before
    filler = _fill(disk, leave=64 * 1024)
    done = _finops("batch", "--engine", "memory", "--backfill", "--lake", str(lake))
    _assert_one_sentence(done, lake)
    # The failed run committed nothing a reader sees: gold is the last committed version.
    assert _rows(gold) == before
    filler.unlink()
    again = _finops("batch", "--engine", "memory", "--backfill", "--lake", str(lake))
    assert again.returncode == 0, again.stderr
    assert _rows(gold) == before  # the rerun rebuilt the same gold


def _rows(table: Path) -> list[dict[str, object]]:
    rows = DeltaTable(str(table)).to_pyarrow_table().to_pylist()
    return sorted(rows, key=lambda row: (row["org_id"], row["usage_date"], row["service"]))


def test_a_batch_that_fills_the_disk_says_so(small_disk: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    assert main(["generate", "--lake", str(source), "--scale", "0.03"]) == 0
    lake = small_disk / "lake"
    shutil.copytree(source / "landing", lake / "landing")  # fits; bronze will not
    done = _finops("batch", "--engine", "memory", "--lake", str(lake))
    _assert_one_sentence(done, lake)


def test_a_full_disk_error_that_names_no_file_still_names_the_lake(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    error = lake_write_error(lake, OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(error, StorageFailed)
    assert str(lake) in str(error) and "free space" in str(error)
    named = lake_write_error(lake, OSError(errno.ENOSPC, "No space left on device", "/x/y.bin"))
    assert named is not None and "/x/y.bin" in str(named) and "df -h /x`" in str(named)


def test_a_spark_stage_that_fills_the_disk_raises_the_os_error_the_cli_reports() -> None:
    from adapters.spark.errors import os_errors

    java = RuntimeError(
        "An error occurred while calling o123.save.\n: org.apache.spark.SparkException: Job "
        "aborted.\nCaused by: java.io.IOException: No space left on device"
    )
    with pytest.raises(OSError) as raised, os_errors():
        raise java
    assert raised.value.errno == errno.ENOSPC and raised.value.__cause__ is java
    other = RuntimeError("[TABLE_OR_VIEW_NOT_FOUND] something else")
    with pytest.raises(RuntimeError) as kept, os_errors():
        raise other
    assert kept.value is other
