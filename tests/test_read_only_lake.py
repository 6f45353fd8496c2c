"""A lake the user cannot write (another owner's, a read-only mount): `query`, `audit`,
`report`, `profile` and `doctor` read it; a command that writes says so in one line.

The lake is bind-mounted read-only in a private mount namespace (`unshare -m`), which stops
root too (a chmod would not: the tests run as root)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from entrypoints.config import env_names
from tests.small_lakes import memory_lake

FINOPS = str(Path(sys.executable).with_name("finops"))


def _read_only(lake: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`finops ARGS` with `lake` mounted read-only for that process alone."""
    script = f'mount --bind "{lake}" "{lake}" && mount -o remount,ro,bind "{lake}" && exec "$@"'
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", FINOPS, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_clean_env(),
        timeout=300,
        check=False,
    )


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in env_names().values()}


@pytest.fixture(scope="module")
def loaded_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is needed to mount the lake read-only")
    work = tmp_path_factory.mktemp("read-only")
    probe = subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            f'mount --bind "{work}" "{work}"',
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"this process may not make a private read-only mount: {probe.stderr.strip()}")
    return memory_lake(work, "0.03")


def _writable(lake: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FINOPS, *args],
        capture_output=True,
        text=True,
        cwd=lake.parent,
        env=_clean_env(),
        timeout=300,
        check=False,
    )


def test_the_mount_really_refuses_writes(loaded_lake: Path) -> None:
    done = _read_only(
        loaded_lake,
        "load",
        "--lake",
        str(loaded_lake),
        "--engine",
        "memory",
        cwd=loaded_lake.parent,
    )
    assert done.returncode == 2, done
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith(f"finops: The lake folder {loaded_lake} is not writable"), lines
    assert "Traceback" not in done.stderr


def test_every_question_answers_from_a_read_only_lake_as_from_a_writable_one(
    loaded_lake: Path,
) -> None:
    lake = str(loaded_lake)
    orgs = json.loads(_writable(loaded_lake, "query", "q4", "--lake", lake, "--json").stdout)
    org = orgs[0]["org_id"]
    for question in (
        ["q4"],
        ["q2", "--org", org, "--days", "30"],
        ["anomalies"],
        ["q3", "--org", org, "--days", "90"],
    ):
        args = ["query", *question, "--lake", lake, "--json"]
        expected = _writable(loaded_lake, *args)
        actual = _read_only(loaded_lake, *args, cwd=loaded_lake.parent)
        assert expected.returncode == 0, expected.stderr
        assert actual.returncode == 0, actual.stderr
        assert json.loads(actual.stdout) == json.loads(expected.stdout)
    assert len(orgs) > 1


def test_audit_profile_doctor_and_report_work_on_a_read_only_lake(
    loaded_lake: Path, tmp_path: Path
) -> None:
    lake = str(loaded_lake)
    audit = _read_only(loaded_lake, "audit", "--lake", lake, "--engine", "memory", cwd=tmp_path)
    assert audit.returncode == 0, audit.stderr
    assert "reconcile" in audit.stdout
    profile = _read_only(loaded_lake, "profile", "--lake", lake, cwd=tmp_path)
    assert profile.returncode == 0, profile.stderr
    assert "customers_orgs" in profile.stdout
    assert "profiled" in profile.stderr
    doctor = _read_only(loaded_lake, "doctor", "--lake", lake, cwd=tmp_path)
    assert doctor.returncode == 0, doctor.stderr
    assert "ready: `finops query` answers from this store" in doctor.stdout
    page = tmp_path / "report.html"
    report = _read_only(loaded_lake, "report", "--lake", lake, "--out", str(page), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert page.stat().st_size > 100_000
    assert "<html" in page.read_text(encoding="utf-8")[:200]


def test_a_report_into_a_read_only_lake_says_to_write_it_elsewhere(
    loaded_lake: Path, tmp_path: Path
) -> None:
    from finops_core.errors import StorageFailed

    done = _read_only(loaded_lake, "report", "--lake", str(loaded_lake), cwd=tmp_path)
    assert done.returncode == StorageFailed.exit_code, done.stderr
    last = [line for line in done.stderr.splitlines() if line.strip()][-1]
    assert last == (
        f"finops: Cannot write the report into the lake at {loaded_lake / 'report'} "
        "(Read-only file system); write it elsewhere with --out FILE."
    )
