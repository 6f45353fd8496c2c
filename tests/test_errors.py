"""Errors a person can act on: one sentence on stderr, a non-zero exit, no traceback unless
--verbose. Each case goes through the real command line, `entrypoints.cli.main`."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from entrypoints.cli import main
from entrypoints.config import lake_write_error
from tests.strategies import master_csvs, write_landing

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EVENTS = (
    b'{"event_id": "evt_a00000000001", "timestamp": "2025-07-03T10:00:00Z", '
    b'"org_id": "org_aaaa0001", '
    b'"resource_id": "res_aaaa0001", "service": "compute", "region": "us-east", '
    b'"metric": "requests", '
    b'"value": 12.0, "unit": "requests", "cost_usd_increment": 1.5, "schema_version": 1}\n'
)


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./cred.env
    for name in (
        "FINOPS_LAKE",
        "FINOPS_ENGINE",
        "FINOPS_SERVING",
        "FINOPS_VERBOSE",
        "SPARK_MASTER",
        "FINOPS_SHUFFLE_PARTITIONS",
        "CASSANDRA_CONTACT_POINTS",
        "CASSANDRA_KEYSPACE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def landed(tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    write_landing(
        {**master_csvs(), "usage_events_stream/events_part_0000.jsonl": EVENTS}, lake / "landing"
    )
    return lake


def fails(argv: Sequence[str], capsys: pytest.CaptureFixture[str], code: int | None = None) -> str:
    """Run the CLI; it must fail with one sentence on stderr and no traceback; return it."""
    capsys.readouterr()
    status = main(list(argv))
    err = capsys.readouterr().err
    assert status != 0 and (code is None or status == code), err
    assert "Traceback" not in err
    message = [line for line in err.splitlines() if line.startswith("finops: ")]
    assert len(message) == 1, err
    return message[0].removeprefix("finops: ")


def test_java_missing_for_the_spark_engine(landed: Path, tmp_path: Path) -> None:
    """In a fresh process (this one may hold a SparkSession that would simply be borrowed)."""
    pytest.importorskip("pyspark")
    env = {
        **os.environ,
        "PATH": str(tmp_path / "no-bin"),
        "JAVA_HOME": str(tmp_path / "no-jdk"),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    code = "import sys; from entrypoints.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", code, "batch", "--engine", "spark", "--lake", str(landed)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 6, done.stderr
    assert "Traceback" not in done.stderr
    (sentence,) = [line for line in done.stderr.splitlines() if line.startswith("finops: ")]
    assert "Java" in sentence and "JAVA_HOME" in sentence and "--engine memory" in sentence


def test_dataset_zip_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sentence = fails(
        ["landing", "--zip", "nowhere.zip", "--lake", str(tmp_path / "lake")], capsys, code=3
    )
    assert "nowhere.zip" in sentence and "--zip" in sentence


def test_batch_without_a_landing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sentence = fails(
        ["batch", "--engine", "memory", "--lake", str(tmp_path / "lake")], capsys, code=3
    )
    assert "finops landing" in sentence


def test_cassandra_unreachable(
    landed: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("cassandra")
    assert main(["batch", "--engine", "memory", "--lake", str(landed)]) == 0
    monkeypatch.setenv("CASSANDRA_CONTACT_POINTS", "127.0.0.1:1")
    sentence = fails(["load", "--serving", "cassandra", "--lake", str(landed)], capsys, code=5)
    assert "127.0.0.1:1" in sentence and "running" in sentence


def test_unknown_key_in_the_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "finops.toml"
    config.write_text('engine = "memory"\nparallelism = 8\n')
    sentence = fails(["--config", str(config), "audit", "--lake", str(tmp_path)], capsys, code=2)
    assert "unknown setting 'parallelism'" in sentence and str(config) in sentence


def test_bad_engine_in_the_environment(
    landed: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FINOPS_ENGINE", "flink")
    sentence = fails(["batch", "--lake", str(landed)], capsys, code=2)
    assert (
        "engine = 'flink'" in sentence
        and "FINOPS_ENGINE" in sentence
        and "spark, memory" in sentence
    )


def test_bad_shuffle_partitions_in_the_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "finops.toml"
    config.write_text("shuffle_partitions = -1\n")
    sentence = fails(["--config", str(config), "audit", "--lake", str(tmp_path)], capsys, code=2)
    assert "shuffle_partitions = -1" in sentence


def test_a_file_in_the_way_of_the_lake_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    sentence = fails(
        ["generate", "--scale", "0.01", "--lake", str(blocker / "lake")], capsys, code=2
    )
    assert f"{blocker} is a file, not a folder" in sentence


def test_a_file_in_the_way_inside_the_lake(
    landed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (landed / "bronze").write_text("")  # where bronze tables must go
    sentence = fails(["batch", "--engine", "memory", "--lake", str(landed)], capsys, code=2)
    assert f"The lake folder {landed} has a file where a folder must be" in sentence
    assert str(landed / "bronze") in sentence


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders"
)
def test_a_read_only_lake_folder(landed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    landed.chmod(0o555)
    try:
        sentence = fails(["batch", "--engine", "memory", "--lake", str(landed)], capsys, code=2)
    finally:
        landed.chmod(0o755)
    assert f"The lake folder {landed} is not writable" in sentence


def test_a_permission_error_inside_the_lake_is_named_but_one_elsewhere_is_not(
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    inside = PermissionError(errno.EACCES, "Permission denied", str(lake / "bronze" / "x"))
    translated = lake_write_error(lake, inside)
    assert translated is not None
    assert str(translated).startswith(f"The lake folder {lake} is not writable (Permission denied:")
    elsewhere = PermissionError(errno.EACCES, "Permission denied", "/etc/shadow")
    assert lake_write_error(lake, elsewhere) is None


def test_verbose_shows_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["--verbose", "landing", "--zip", "nowhere.zip", "--lake", str(tmp_path / "lake")])
        == 3
    )
    err = capsys.readouterr().err
    assert "Traceback" in err and "finops: dataset zip nowhere.zip not found" in err
