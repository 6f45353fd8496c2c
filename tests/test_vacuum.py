"""`finops vacuum`: old versions' files leave every Delta table, the latest versions still read
the same, --dry-run deletes nothing, and the command is a lake writer (it takes the lock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.lake.delta import DeltaLake, delta_tables
from entrypoints.cli import main
from finops_core.lake import LakeLayout
from finops_core.tables import LAKE_TABLES
from tests.strategies import master_csvs, write_landing
from tests.test_audit import EVENT_LINES


def _parquet_files(lake: Path) -> set[Path]:
    return {path for path in lake.rglob("*.parquet") if "_delta_log" not in path.parts}


@pytest.fixture
def rewritten_lake(tmp_path: Path) -> Path:
    """A lake built by a batch, then rebuilt by a forced backfill: every table has a previous
    version whose files the latest one no longer needs."""
    root = tmp_path / "lake"
    landing = {
        **master_csvs(),
        "usage_events_stream/events_part_0000.jsonl": b"\n".join(EVENT_LINES) + b"\n",
    }
    write_landing(landing, root / "landing")
    assert main(["batch", "--engine", "memory", "--lake", str(root)]) == 0
    assert main(["batch", "--engine", "memory", "--lake", str(root), "--backfill"]) == 0
    return root


def _tables(lake: Path) -> dict[str, list[dict[str, object]]]:
    reader = DeltaLake(LakeLayout(lake))
    return {table.id: reader.read_table(table) for table in LAKE_TABLES if reader.has_table(table)}


def test_a_dry_run_counts_the_files_a_vacuum_would_remove_and_removes_none(
    rewritten_lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _parquet_files(rewritten_lake)
    capsys.readouterr()
    assert main(["vacuum", "--lake", str(rewritten_lake), "--retain-hours", "0", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert _parquet_files(rewritten_lake) == files
    (summary,) = [line for line in out.splitlines() if line.startswith("vacuum: ")]
    tables = len(delta_tables(LakeLayout(rewritten_lake)))
    assert f"in {tables} Delta tables of {rewritten_lake} (retention 0 h)" in summary
    assert "would remove" in summary and "would remove 0 files" not in summary


def test_a_vacuum_removes_old_versions_files_and_every_table_still_reads_the_same(
    rewritten_lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _tables(rewritten_lake)
    files = _parquet_files(rewritten_lake)
    capsys.readouterr()
    assert main(["vacuum", "--lake", str(rewritten_lake), "--retain-hours", "0"]) == 0
    out = capsys.readouterr().out
    remaining = _parquet_files(rewritten_lake)
    assert remaining < files
    removed = len(files) - len(remaining)
    assert f"vacuum: removed {removed} files in " in out
    assert _tables(rewritten_lake) == before
    assert main(["audit", "--lake", str(rewritten_lake)]) == 0

    capsys.readouterr()
    assert main(["vacuum", "--lake", str(rewritten_lake), "--retain-hours", "0"]) == 0
    assert "vacuum: removed 0 files in " in capsys.readouterr().out  # nothing left to remove


def test_the_default_retention_keeps_a_fresh_lakes_files(
    rewritten_lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _parquet_files(rewritten_lake)
    assert main(["vacuum", "--lake", str(rewritten_lake)]) == 0
    assert "(retention 168 h)" in capsys.readouterr().out
    assert _parquet_files(rewritten_lake) == files  # every old version is younger than 7 days


def test_the_vacuum_help_teaches_the_retention_and_what_is_lost(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["vacuum", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "the default is 168 hours (7 days, Delta's default)" in text
    assert "Time travel to a version older than the retention is lost" in text
    assert "--no-wait" in text  # a lake writer: it holds the lake's lock


def test_a_negative_retention_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["vacuum", "--retain-hours", "-1"])
    assert refused.value.code == 2
    assert "-1 is not a number of hours >= 0" in capsys.readouterr().err
