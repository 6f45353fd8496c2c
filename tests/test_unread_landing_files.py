"""Landing files no source reads (a compressed events file, a stray note) are never skipped
silently: `finops batch` names them in a warning and in its run record."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from entrypoints.cli import main
from tests.strategies import landing_event, master_csvs, write_landing

EVENTS = "usage_events_stream/events_part_0000.jsonl"


def _batch_record(lake: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    assert main(["batch", "--engine", "memory", "--lake", str(lake)]) == 0
    err = capsys.readouterr().err
    (path,) = sorted((lake / "_runs").glob("*-batch.json"))[-1:]
    return json.loads(path.read_text()), err


def _stage(record: dict, name: str) -> dict:
    return next(stage for stage in record["stages"] if stage["stage"] == name)


def test_a_compressed_events_file_and_a_stray_file_are_named_in_a_warning_and_the_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = json.dumps(landing_event()).encode() + b"\n"
    landing = {
        **master_csvs(),
        EVENTS: line,
        "usage_events_stream/events_part_0001.jsonl.gz": gzip.compress(line),
        "usage_events_stream/notes.txt": b"exported by another tool\n",
    }
    write_landing(landing, tmp_path / "lake" / "landing")
    record, err = _batch_record(tmp_path / "lake", capsys)
    unread = "usage_events_stream/events_part_0001.jsonl.gz, usage_events_stream/notes.txt"
    (warning,) = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert f"2 file(s) in {tmp_path / 'lake' / 'landing'} match no source" in warning
    assert f"were not read: {unread} (events are read from" in warning
    bronze = _stage(record, "bronze_events")
    assert bronze["counts"]["unread_files"] == 2 and unread in bronze["note"]
    assert bronze["counts"]["bronze_rows"] == 1  # the plain file only


def test_a_landing_of_only_source_files_gives_no_warning_and_counts_no_unread_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    landing = {**master_csvs(), EVENTS: json.dumps(landing_event()).encode() + b"\n"}
    write_landing(landing, tmp_path / "lake" / "landing")
    record, err = _batch_record(tmp_path / "lake", capsys)
    assert "warning" not in err
    bronze = _stage(record, "bronze_events")
    assert bronze["counts"]["unread_files"] == 0 and "not read" not in bronze["note"]
