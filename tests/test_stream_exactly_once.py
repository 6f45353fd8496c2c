"""The speed layer writes every landing line to bronze (or quarantine) exactly once: through
replays, reruns, crashes at any point, and files landing while it runs."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests import stream_support as support

pytestmark = pytest.mark.spark

FILES_PER_BATCH = 5  # 30 files: 6 micro-batches
CRASH_POINTS = (
    ("batches", 0),  # batch 0 written, maybe not yet committed by Spark: the restart replays it
    ("commits", 1),  # batch 1 committed
    ("batches", 3),
)


@pytest.fixture(scope="module")
def tiny_landing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, support.TinyLanding]:
    """30 files x 20 events sampling 60 days, 4 malformed lines and 3 event ids re-sent."""
    lake = tmp_path_factory.mktemp("tiny")
    return lake / "landing", support.write_tiny_landing(lake)


@pytest.fixture
def tiny_lake(
    tiny_landing: tuple[Path, support.TinyLanding], tmp_path: Path
) -> tuple[Path, support.TinyLanding]:
    landing, expected = tiny_landing
    lake = tmp_path / "lake"
    shutil.copytree(landing, lake / "landing")
    return lake, expected


def _run_context(name: str) -> object:
    from finops_core.ports import RunContext

    return RunContext(run_id=name, started_at=dt.datetime.now(dt.timezone.utc))


def _assert_exactly_once(lake: Path, expected: support.TinyLanding) -> None:
    ids = support.bronze_id_counts(lake)
    assert set(ids) == set(expected.event_ids)
    assert [event_id for event_id, count in ids.items() if count != 1] == []
    quarantine = support.quarantine_rows(lake)
    assert len(quarantine) == expected.malformed
    assert len({row["quarantine_key"] for row in quarantine}) == expected.malformed
    assert all(row["reasons"] == ["malformed_record"] for row in quarantine)


# ---- in process (the shared session) ------------------------------------------------------------


def test_a_replayed_micro_batch_replaces_its_output_instead_of_adding_to_it(
    spark, tiny_lake
) -> None:
    from pyspark.sql import functions as F

    from adapters.spark.events import classify_lines
    from adapters.spark.stream_sink import BronzeBatchWriter, StreamPaths
    from finops_core.lake import LakeLayout

    lake, expected = tiny_lake
    lines = (
        spark.read.option("lineSep", "\n")
        .text(str(lake / "landing" / "usage_events_stream"))
        .select(F.col("value").alias("raw"), F.col("_metadata.file_name").alias("source_file"))
        .withColumn("ingest_ts", F.current_timestamp())
    )
    writer = BronzeBatchWriter(
        StreamPaths(LakeLayout(lake)), _run_context("replay"), classify_lines
    )

    first = writer.write_batch(lines, 0)
    versions_after_first = support.table_versions(lake)
    second = writer.write_batch(lines, 0)  # the same batch id again, as after a crash

    assert (second.landing_lines, second.bronze_rows, second.duplicates, second.malformed) == (
        first.landing_lines,
        first.bronze_rows,
        first.duplicates,
        first.malformed,
    )
    assert first.landing_lines == expected.lines
    assert first.bronze_rows == len(expected.event_ids)
    assert first.duplicates == expected.duplicate_copies
    assert second.quarantine_appended == expected.malformed  # read from the batch's own commit
    # Delta skipped every write of the replay: no table has a new version.
    assert support.table_versions(lake) == versions_after_first
    assert set(versions_after_first) >= {"bronze", "quarantine", "ledger", "dedupe state"}
    _assert_exactly_once(lake, expected)
    ledger = support.ledger_rows(lake)
    assert len(ledger) == expected.files
    assert sum(int(str(row["lines"])) for row in ledger) == expected.lines
    for row in ledger:
        parts = ("bronze_rows", "duplicates", "malformed", "blank")
        assert int(str(row["lines"])) == sum(int(str(row[part])) for part in parts)
        path = lake / "landing" / str(row["path"])
        assert row["size"] == path.stat().st_size
        assert row["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_rerun_on_the_same_checkpoint_adds_nothing(spark, tiny_lake) -> None:
    from adapters.spark.events import classify_lines
    from adapters.spark.streaming import BronzeStream, StreamOptions
    from finops_core.lake import LakeLayout

    lake, expected = tiny_lake
    stream = BronzeStream(spark, LakeLayout(lake), classify_lines)

    first = stream.run(_run_context("first"), StreamOptions(once=True, max_files=12))
    versions = support.table_versions(lake)
    second = stream.run(_run_context("second"), StreamOptions(once=True, max_files=12))

    assert first.totals["batches"] == 3  # 30 files, 12 per micro-batch
    assert first.totals["landing_lines"] == expected.lines
    assert (
        first.totals["bronze_rows"] + first.totals["duplicates"] + first.totals["malformed"]
        == expected.lines
    )
    assert second.totals["landing_lines"] == 0 and second.totals["bronze_rows"] == 0
    assert support.table_versions(lake) == versions
    _assert_exactly_once(lake, expected)


def test_a_deleted_checkpoint_gets_a_new_application_id_so_its_batch_0_is_written_again(
    spark, tiny_lake
) -> None:
    from adapters.spark.events import classify_lines
    from adapters.spark.stream_sink import StreamPaths, application_id
    from adapters.spark.streaming import BronzeStream, StreamOptions
    from finops_core.lake import LakeLayout

    lake, expected = tiny_lake
    stream = BronzeStream(spark, LakeLayout(lake), classify_lines)
    paths = StreamPaths(LakeLayout(lake))
    stream.run(_run_context("first"), StreamOptions(once=True))
    first_id = application_id(paths)
    assert application_id(paths) == first_id  # kept in the checkpoint
    shutil.rmtree(lake / support.CHECKPOINT)

    again = stream.run(_run_context("again"), StreamOptions(once=True))

    assert application_id(paths) != first_id
    assert again.totals["landing_lines"] == expected.lines
    # Not skipped as "batch 0 already committed": every event is in bronze a second time.
    assert set(support.bronze_id_counts(lake).values()) == {2}


def test_a_stop_request_refuses_to_write_a_batch_that_has_not_started() -> None:
    from adapters.spark.stream_sink import BronzeBatchWriter, StopRequested, StreamPaths
    from finops_core.lake import LakeLayout

    writer = BronzeBatchWriter(
        StreamPaths(LakeLayout(Path("/nonexistent"))),
        _run_context("gate"),
        lambda lines: lines,
    )
    writer.close_gate()
    with pytest.raises(StopRequested):
        writer(None, 3)  # type: ignore[arg-type]
    assert writer.batches == []


# ---- `finops stream` in subprocesses ------------------------------------------------------------


@pytest.mark.slow
def test_a_stream_killed_after_several_batches_then_restarted_writes_every_event_exactly_once(
    tiny_lake,
) -> None:
    lake, expected = tiny_lake
    checkpoint = lake / support.CHECKPOINT
    kills = []
    for folder, batch_id in CRASH_POINTS:
        marker = (
            checkpoint / folder / (f"{batch_id}.json" if folder == "batches" else str(batch_id))
        )
        process = support.start_stream(lake, "--once", "--max-files", str(FILES_PER_BATCH))
        support.wait_for(marker.exists, timeout=600, what=f"{folder}/{batch_id}", process=process)
        support.kill_group(process, signal.SIGKILL)
        kills.append((folder, batch_id, support.committed_batches(lake)))

    finished = support.run_stream(lake, "--once", "--max-files", str(FILES_PER_BATCH))

    assert finished.returncode == 0, finished.stderr[-3000:]
    # Six batches of 5 files when no kill falls between Spark's logging of a batch's files and
    # of its offsets; a kill there makes the restart read those files with the next batch's
    # (Spark's file source), so there may be fewer, each file still in exactly one batch.
    batches = support.committed_batches(lake)
    assert 6 - len(CRASH_POINTS) <= batches <= 6
    assert [committed for _, _, committed in kills] == sorted(
        committed for _, _, committed in kills
    )
    _assert_exactly_once(lake, expected)
    records = support.batch_records(lake)
    assert sorted(records) == list(range(batches))
    landing_files = list((lake / "landing" / "usage_events_stream").glob("*.jsonl"))
    assert sum(int(r["files"]) for r in records.values()) == len(landing_files)  # type: ignore[call-overload]
    assert len(support.ledger_rows(lake)) == len(landing_files)
    assert sum(int(r["landing_lines"]) for r in records.values()) == expected.lines  # type: ignore[call-overload]
    assert sum(int(r["duplicates"]) for r in records.values()) == expected.duplicate_copies  # type: ignore[call-overload]
    leftovers = (
        list((checkpoint / "staging").glob("*")) if (checkpoint / "staging").exists() else []
    )
    assert leftovers == []


@pytest.mark.slow
def test_files_dropped_while_the_stream_runs_reach_bronze_within_two_triggers_and_sigterm_stops_it_cleanly(  # noqa: E501
    tiny_lake,
) -> None:
    lake, expected = tiny_lake
    directory = lake / "landing" / "usage_events_stream"
    late_files = {
        name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))[-3:]
    }
    for name in late_files:
        (directory / name).unlink()

    process = support.start_stream(lake, "--continuous", "--trigger", "1")
    try:
        support.wait_for(
            lambda: support.batch_records(lake) != {},
            timeout=600,
            what="the first batch",
            process=process,
        )
        last_before = max(support.batch_records(lake))
        dropped_at = time.monotonic()
        for name, content in late_files.items():
            support.drop_file(directory, name, content.split(b"\n")[:-1])

        def landed() -> bool:
            names = {row["source_file"] for row in support.bronze_rows(lake)} | {
                row["source_file"] for row in support.quarantine_rows(lake)
            }
            return set(late_files) <= names

        support.wait_for(
            landed, timeout=300, what="the dropped files in bronze", process=process, interval=0.5
        )
        seconds = time.monotonic() - dropped_at
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            support.kill_group(process)

    assert process.returncode == 0, stderr[-3000:]
    records = support.batch_records(lake)
    picked_up_by = [
        batch
        for batch, record in records.items()
        if batch > last_before and record["landing_lines"]
    ]
    assert picked_up_by and max(picked_up_by) <= last_before + 2, (records, seconds)
    _assert_exactly_once(lake, expected)
    totals = support.totals_line(stdout)
    assert totals["landing_lines"] == expected.lines
    assert totals["bronze_rows"] + totals["duplicates"] + totals["malformed"] == expected.lines
    from finops_core.runs import RunRecord

    runs = [RunRecord.from_json(json.loads(p.read_text())) for p in (lake / "_runs").glob("*.json")]
    assert [(run.kind, run.engine, run.finished) for run in runs] == [("stream", "spark", True)]
    assert runs[0].details["stopped"] == "stop requested"
    assert runs[0].counts["stream.bronze_rows"] == len(expected.event_ids)
    assert sum(batch["landing_lines"] for batch in runs[0].details["batches"]) == expected.lines
    assert "micro-batch" in stderr  # the signal was acknowledged
    # A stop never leaves half a batch behind: every batch record's rows are in bronze.
    assert Counter(row["source_file"] for row in support.bronze_rows(lake)).total() == sum(
        int(r["bronze_rows"])
        for r in records.values()  # type: ignore[call-overload]
    )
