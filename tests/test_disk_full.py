"""A full disk is one sentence naming where and what to do: never a traceback.

The real cases run on a small tmpfs the test mounts (root, as in CI); where mounting is not
allowed they skip and the injected case still runs.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrypoints.cli import main
from entrypoints.config import lake_write_error
from finops_core.errors import StorageFailed

FINOPS = [sys.executable, "-m", "entrypoints.cli"]


def _finops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FINOPS, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted at the end."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


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
    assert list(lake.iterdir()) == []  # the staging folder was removed, the disk is free again
    assert shutil.disk_usage(small_disk).used < 64 * 1024


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
