"""One writer at a time per lake: a second writer waits, or refuses with --no-wait naming the
first; the lock dies with its process; readers never take it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapters.flock import FlockLakeLock
from entrypoints.cli import main
from finops_core.errors import LakeBusy

FINOPS = [sys.executable, "-m", "entrypoints.cli"]
HOLDER = """
import sys, time
from pathlib import Path
from adapters.flock import FlockLakeLock
root, release = Path(sys.argv[1]), Path(sys.argv[2])
root.mkdir(parents=True, exist_ok=True)
with FlockLakeLock(root).hold(wait=False, waiting=print):
    print("held", flush=True)
    while not release.exists():
        time.sleep(0.02)
"""


def _hold(root: Path, release: Path) -> subprocess.Popen[str]:
    """A process holding the lake's lock until `release` exists."""
    script = release.with_name("holder.py")
    script.write_text(HOLDER)
    holder = subprocess.Popen(
        [sys.executable, str(script), str(root), str(release)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def _start(command: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _assert_waiting(
    waiter: subprocess.Popen[str], holder: subprocess.Popen[str], unwritten: Path
) -> None:
    """`waiter` said on stderr that it waits for `holder`, and half a second later it still
    waits, `unwritten` not written."""
    assert waiter.stderr is not None
    first = waiter.stderr.readline()
    assert first.startswith("finops: waiting for `") and f"(pid {holder.pid})" in first
    time.sleep(0.5)
    assert waiter.poll() is None and not unwritten.exists()


def _finops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FINOPS, *args], capture_output=True, text=True, timeout=300)


def test_a_second_writer_with_no_wait_stops_and_names_the_first(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    holder = _hold(lake, tmp_path / "release")
    try:
        refused = _finops("generate", "--lake", str(lake), "--scale", "0.01", "--no-wait")
        assert refused.returncode == LakeBusy.exit_code, refused.stderr
        assert (
            f"(pid {holder.pid})" in refused.stderr and str(tmp_path / "release") in refused.stderr
        )
        assert "Traceback" not in refused.stderr
        assert not (lake / "landing").exists()  # the refused writer wrote nothing
    finally:
        (tmp_path / "release").touch()
        holder.wait(timeout=30)


def test_a_second_writer_waits_for_the_first_then_runs(tmp_path: Path) -> None:
    lake, release = tmp_path / "lake", tmp_path / "release"
    holder = _hold(lake, release)
    waiter = _start([*FINOPS, "generate", "--lake", str(lake), "--scale", "0.01"])
    try:
        _assert_waiting(waiter, holder, lake / "landing")
        release.touch()
        holder.wait(timeout=30)
        assert waiter.wait(timeout=120) == 0
        assert (lake / "landing" / "customers_orgs.csv").is_file()
    finally:
        release.touch()
        waiter.kill()
        waiter.wait()


def test_the_lock_dies_with_a_killed_writer(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    holder = _hold(lake, tmp_path / "never")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    with FlockLakeLock(lake).hold(wait=False, waiting=print):
        assert list(lake.iterdir()) == []  # locking wrote nothing into the lake


def test_two_batches_started_together_never_both_write(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    assert main(["generate", "--lake", str(lake), "--scale", "1"]) == 0
    runs = lake / "_runs"
    before = set(runs.glob("*.json")) if runs.exists() else set()
    command = [*FINOPS, "batch", "--engine", "memory", "--lake", str(lake), "--no-wait"]
    both = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [(p.pid, p.wait(timeout=300), p.communicate()[1]) for p in both]
    codes = sorted(code for _, code, _ in outcomes)
    assert codes == [0, LakeBusy.exit_code], outcomes
    (winner,) = [pid for pid, code, _ in outcomes if code == 0]
    (loser_error,) = [err for _, code, err in outcomes if code != 0]
    assert f"`finops batch --engine memory --lake {lake} --no-wait` (pid {winner})" in loser_error
    assert len(set(runs.glob("*.json")) - before) == 1  # one batch ran, one record


def test_a_lake_not_created_yet_is_locked_through_the_folder_above_it(tmp_path: Path) -> None:
    holder = _hold(tmp_path, tmp_path / "release")  # holds tmp_path itself
    try:
        refused = _finops("generate", "--lake", str(tmp_path / "new"), "--no-wait")
        assert refused.returncode == LakeBusy.exit_code, refused.stderr
        assert f"(pid {holder.pid})" in refused.stderr
        assert not (tmp_path / "new").exists()
    finally:
        (tmp_path / "release").touch()
        holder.wait(timeout=30)


@pytest.mark.parametrize(
    "argv",
    [
        ["audit"],
        ["profile"],
        ["query", "q2", "--org", "org_x", "--serving", "sqlite"],
    ],
)
def test_readers_never_wait_for_the_lock(tmp_path: Path, argv: list[str]) -> None:
    lake = tmp_path / "lake"
    holder = _hold(lake, tmp_path / "release")
    try:
        started = time.monotonic()
        done = _finops(argv[0], *argv[1:], "--lake", str(lake))
        assert time.monotonic() - started < 60
        assert "waiting for" not in done.stderr and "being written" not in done.stderr
    finally:
        (tmp_path / "release").touch()
        holder.wait(timeout=30)


def test_a_notebook_batch_waits_for_a_writer_of_the_same_lake_then_runs(tmp_path: Path) -> None:
    lake, release = tmp_path / "lake", tmp_path / "release"
    assert main(["generate", "--lake", str(lake), "--scale", "0.01"]) == 0
    holder = _hold(lake, release)
    script = (
        "import sys\nfrom pathlib import Path\nfrom entrypoints import notebook\n"
        "record = notebook.run_batch(Path(sys.argv[1]))\nprint(record.finished, flush=True)\n"
    )
    waiter = _start([sys.executable, "-c", script, str(lake)])
    try:
        _assert_waiting(waiter, holder, lake / "gold")
        release.touch()
        holder.wait(timeout=30)
        stdout, _ = waiter.communicate(timeout=300)
        assert waiter.returncode == 0 and stdout.strip() == "True"
        assert (lake / "gold").is_dir()
    finally:
        release.touch()
        waiter.kill()
        waiter.wait()
