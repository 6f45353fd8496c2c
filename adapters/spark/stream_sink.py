"""The speed layer's micro-batch writer: one landing micro-batch into bronze, exactly once.

Structured Streaming calls `BronzeBatchWriter` through foreachBatch with a static DataFrame of
landing lines (raw, source_file, ingest_ts) and the batch id. Spark records the batch as done only
after the call returns, so after a crash the same batch (same files, same batch timestamp) is
replayed. Every output of a batch is therefore keyed by its batch id and written idempotently:

1. forget the batch: delete what an earlier attempt of this batch id may have left (bronze and
   quarantine files named `stream-b<id>-…`, its dedupe state folder, its batch record);
2. parse the lines with the batch engine's `parse_event_lines` (one bronze table design);
3. drop duplicate event ids (within the batch, and against the ids already written in the
   dedupe window) and anti-join malformed lines against the quarantine keys already present;
4. write each output to a staging folder, then rename its files into place under the batch id;
5. write the batch record (its counts) last.

A replay after a crash at any point repeats 1-5 and converges on the same files: it replaces
rather than duplicates.

Deduplication is bounded on ingest time, not event time (see `DedupeWindow`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from pyspark.sql import Column, DataFrame, Observation, SparkSession, Window
from pyspark.sql import functions as F

from adapters.spark import schemas
from adapters.spark.events import BRONZE_PARTITION
from adapters.spark.storage import has_parquet, read_table
from finops_core.lake import LakeLayout
from finops_core.ports import RunContext
from finops_core.tables import BRONZE_EVENTS, QUARANTINE_EVENTS

STREAM_CHECKPOINT = "bronze_usage_events"
FILE_PREFIX = "stream-b"
SEEN_SCHEMA = "event_id string, ingest_ts timestamp"

# (bronze_df, malformed_df) from a DataFrame of landing lines: the batch engine's parser.
Parser = Callable[[DataFrame], tuple[DataFrame, DataFrame]]


class StopRequested(RuntimeError):
    """Raised inside foreachBatch when a stop arrived before the batch wrote anything.

    The batch is then not committed: the next run replays it from the offset log.
    """


@attrs.frozen
class DedupeWindow:
    """How long an event id is remembered for stream-side deduplication, on ingest time.

    Why ingest time: every landing file samples the whole 60-day period, so event time is no
    measure of arrival order. An event-time watermark would have to exceed the full disorder
    (> 60 days, and unbounded for a feed that re-sends old files) and would drop genuinely late
    rows; rows without a parsable timestamp would have no event time at all. Ingest time is
    monotonic, never null and replay-stable (a replayed batch keeps its batch timestamp), so
    nothing is ever dropped as late by the dedupe: a copy arriving within `days` of the first is
    dropped and counted; a copy arriving later is kept, and silver, which deduplicates globally
    and deterministically, removes it. The state is bounded by `days` of ingest.

    `late_after_days` only *counts* rows whose event date lies further behind the newest event
    date of the earlier micro-batches than the feed's documented disorder (60 days): they are
    kept, and reported per batch as `late`.
    """

    days: int = 7
    late_after_days: int = 60


@attrs.frozen
class BatchCounts:
    """What one micro-batch did (landing lines = bronze rows + duplicates + malformed)."""

    batch_id: int
    files: int
    landing_lines: int
    bronze_rows: int
    duplicates: int
    malformed: int
    quarantine_appended: int
    late: int
    seconds: float

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in attrs.asdict(self).items()}

    def summary(self) -> str:
        return (
            f"batch {self.batch_id}: files={self.files} lines={self.landing_lines} "
            f"bronze={self.bronze_rows} duplicates={self.duplicates} malformed={self.malformed} "
            f"late={self.late} in {self.seconds:.2f} s"
        )


@attrs.frozen
class StreamPaths:
    """Where the speed layer keeps its tables and its state inside the lake."""

    layout: LakeLayout

    @property
    def bronze(self) -> Path:
        return self.layout.table(BRONZE_EVENTS)

    @property
    def quarantine(self) -> Path:
        return self.layout.table(QUARANTINE_EVENTS)

    @property
    def checkpoint(self) -> Path:
        return self.layout.checkpoints / STREAM_CHECKPOINT

    @property
    def dedupe_state(self) -> Path:
        """Event ids written per batch: `ingest_date=D/batch_id=N/*.parquet`."""
        return self.checkpoint / "event_ids"

    @property
    def batch_records(self) -> Path:
        return self.checkpoint / "batches"

    def staging(self, batch_id: int) -> Path:
        return self.checkpoint / "staging" / str(batch_id)


def batch_file_prefix(batch_id: int) -> str:
    return f"{FILE_PREFIX}{batch_id:010d}-"


class BronzeBatchWriter:
    """The foreachBatch function: idempotent per batch id, and gated for a clean stop."""

    def __init__(
        self,
        paths: StreamPaths,
        run: RunContext,
        parse: Parser,
        window: DedupeWindow = DedupeWindow(),
        on_batch: Callable[[BatchCounts], None] | None = None,
    ) -> None:
        self.paths = paths
        self.run = run
        self.parse = parse
        self.window = window
        self.on_batch = on_batch
        self.batches: list[BatchCounts] = []
        self._lock = threading.Lock()
        self._stopping = False

    # ---- stop gate ---------------------------------------------------------------------------

    def close_gate(self) -> None:
        """Let the batch being written finish; refuse to start writing any later batch."""
        with self._lock:
            self._stopping = True

    def __call__(self, lines: DataFrame, batch_id: int) -> None:
        with self._lock:
            if self._stopping:
                raise StopRequested(f"stop requested before batch {batch_id} was written")
            counts = self.write_batch(lines, batch_id)
            self.batches.append(counts)
        if self.on_batch is not None:
            self.on_batch(counts)

    # ---- one batch ---------------------------------------------------------------------------

    def write_batch(self, lines: DataFrame, batch_id: int) -> BatchCounts:
        started = time.perf_counter()
        spark = lines.sparkSession
        self._forget(batch_id)
        # The lines are not cached: a micro-batch may hold a million lines and the driver heap is
        # small; re-reading a batch's files is cheap and gives the same lines (same offsets).
        stats = lines.agg(
            F.count(F.lit(1)).alias("lines"),
            F.countDistinct("source_file").alias("files"),
            F.max("ingest_ts").alias("ingest_ts"),
        ).first()
        assert stats is not None
        previous_max = self._previous_max_event_date(batch_id)
        if not stats["lines"]:
            counts = BatchCounts(batch_id, 0, 0, 0, 0, 0, 0, 0, time.perf_counter() - started)
            self._write_record(counts, previous_max)
            return counts
        # Collected timestamps are naive local time: make the instant explicit.
        ingest_ts: dt.datetime = stats["ingest_ts"].astimezone(dt.timezone.utc)
        stamp = {"run_id": F.lit(self.run.run_id), "ingest_ts": F.lit(ingest_ts)}
        bronze, malformed = self.parse(lines)
        bronze_metrics = self._write_bronze_and_state(
            spark, bronze, batch_id, ingest_ts, stamp, previous_max
        )
        malformed_count, appended = self._append_quarantine(
            spark, malformed.withColumns(stamp), batch_id
        )
        duplicates = int(bronze_metrics["duplicates"] or 0)
        counts = BatchCounts(
            batch_id=batch_id,
            files=int(stats["files"]),
            landing_lines=int(stats["lines"]),
            bronze_rows=int(bronze_metrics["candidates"]) - duplicates,
            duplicates=duplicates,
            malformed=malformed_count,
            quarantine_appended=appended,
            late=int(bronze_metrics["late"] or 0),
            seconds=time.perf_counter() - started,
        )
        self._write_record(counts, _later(previous_max, bronze_metrics["max_date"]))
        return counts

    def _write_bronze_and_state(
        self,
        spark: SparkSession,
        bronze: DataFrame,
        batch_id: int,
        ingest_ts: dt.datetime,
        stamp: dict[str, Column],
        previous_max: dt.date | None,
    ) -> dict[str, Any]:
        """Write the batch's surviving rows to bronze and their ids to the dedupe state.

        The counts come from an Observation on the write itself (no extra pass over the data).
        """
        kept = ~F.col("_duplicate")
        event_day = F.to_date(BRONZE_PARTITION)
        if previous_max is None:
            late = F.lit(False)
        else:
            late = event_day < F.lit(previous_max - dt.timedelta(days=self.window.late_after_days))
        observation = Observation(_observation_name("bronze", batch_id))
        marked = self._mark_duplicates(spark, bronze, batch_id, ingest_ts).observe(
            observation,
            F.count(F.lit(1)).alias("candidates"),
            F.sum(F.col("_duplicate").cast("long")).alias("duplicates"),
            F.max(F.when(kept, event_day)).alias("max_date"),
            F.sum((kept & late).cast("long")).alias("late"),
        )
        columns = [*schemas.spark_schema(BRONZE_EVENTS).fieldNames(), BRONZE_PARTITION]
        staging = self.paths.staging(batch_id) / "bronze"
        marked.where(kept).withColumns(stamp).select(*columns).write.mode("overwrite").partitionBy(
            BRONZE_PARTITION
        ).parquet(str(staging))
        metrics: dict[str, Any] = dict(observation.get)
        # The dedupe state is read back from the staged files (two columns), not recomputed.
        if any(staging.glob(f"{BRONZE_PARTITION}=*/*.parquet")):
            written = spark.read.schema(SEEN_SCHEMA).parquet(str(staging))
            self._write_dedupe_state(written, batch_id, ingest_ts)
        # An empty batch leaves one schema-only file outside any partition folder: not moved.
        _move_parquet_files(
            staging, self.paths.bronze, batch_file_prefix(batch_id), f"{BRONZE_PARTITION}=*/"
        )
        return metrics

    # ---- dedupe ------------------------------------------------------------------------------

    def _mark_duplicates(
        self, spark: SparkSession, bronze: DataFrame, batch_id: int, ingest_ts: dt.datetime
    ) -> DataFrame:
        """`_duplicate`: a repeat of an id seen earlier in this batch or in the dedupe window.

        Within the batch the smallest (source_file, raw) survives, as silver would choose.
        Rows without an event id are never duplicates (silver quarantines them).
        """
        has_id = F.col("event_id").isNotNull() & (F.col("event_id") != "")
        order = Window.partitionBy("event_id").orderBy("source_file", "raw")
        ranked = bronze.withColumn("_duplicate", has_id & (F.row_number().over(order) > 1))
        seen = self._seen_ids(spark, batch_id, ingest_ts)
        if seen is None:
            return ranked
        seen = seen.select(F.col("event_id").alias("_seen_id"), F.lit(True).alias("_seen"))
        joined = ranked.join(F.broadcast(seen), ranked["event_id"] == seen["_seen_id"], "left")
        return joined.withColumn(
            "_duplicate", F.col("_duplicate") | (has_id & F.coalesce(F.col("_seen"), F.lit(False)))
        ).drop("_seen_id", "_seen")

    def _seen_ids(
        self, spark: SparkSession, batch_id: int, ingest_ts: dt.datetime
    ) -> DataFrame | None:
        root = self.paths.dedupe_state
        cutoff = ingest_ts - dt.timedelta(days=self.window.days)
        folders = [
            folder
            for folder in root.glob("ingest_date=*/batch_id=*")
            if int(folder.name.split("=", 1)[1]) < batch_id
            and dt.date.fromisoformat(folder.parent.name.split("=", 1)[1]) >= cutoff.date()
        ]
        if not folders:
            return None
        frame = spark.read.schema(SEEN_SCHEMA).parquet(*(str(folder) for folder in folders))
        return frame.where(F.col("ingest_ts") >= F.lit(cutoff)).select("event_id").distinct()

    def _write_dedupe_state(self, kept: DataFrame, batch_id: int, ingest_ts: dt.datetime) -> None:
        staging = self.paths.staging(batch_id) / "event_ids"
        ids = kept.where(F.col("event_id").isNotNull() & (F.col("event_id") != ""))
        ids.select("event_id", "ingest_ts").coalesce(1).write.mode("overwrite").parquet(
            str(staging)
        )
        target = (
            self.paths.dedupe_state
            / f"ingest_date={ingest_ts.date().isoformat()}"
            / f"batch_id={batch_id}"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, target)
        self._prune_dedupe_state(ingest_ts)

    def _prune_dedupe_state(self, ingest_ts: dt.datetime) -> None:
        cutoff = (ingest_ts - dt.timedelta(days=self.window.days + 1)).date()
        for folder in self.paths.dedupe_state.glob("ingest_date=*"):
            if dt.date.fromisoformat(folder.name.split("=", 1)[1]) < cutoff:
                shutil.rmtree(folder, ignore_errors=True)

    # ---- lateness ----------------------------------------------------------------------------

    def _previous_max_event_date(self, batch_id: int) -> dt.date | None:
        earlier = [
            (int(path.stem), path)
            for path in self.paths.batch_records.glob("*.json")
            if path.stem.isdigit() and int(path.stem) < batch_id
        ]
        if not earlier:
            return None
        record = json.loads(max(earlier)[1].read_text())
        value = record.get("max_event_date")
        return dt.date.fromisoformat(value) if value else None

    # ---- idempotent writes -------------------------------------------------------------------

    def _forget(self, batch_id: int) -> None:
        """Remove everything an earlier attempt of this batch (or a later one) left behind."""
        prefix = batch_file_prefix(batch_id)
        for table in (self.paths.bronze, self.paths.quarantine):
            if table.exists():
                for path in table.rglob(f"{prefix}*"):
                    path.unlink()
        for folder in self.paths.dedupe_state.glob("ingest_date=*/batch_id=*"):
            if int(folder.name.split("=", 1)[1]) >= batch_id:
                shutil.rmtree(folder)
        (self.paths.batch_records / f"{batch_id}.json").unlink(missing_ok=True)
        shutil.rmtree(self.paths.staging(batch_id), ignore_errors=True)

    def _append_quarantine(
        self, spark: SparkSession, malformed: DataFrame, batch_id: int
    ) -> tuple[int, int]:
        """(malformed lines, entries appended): anti-join on quarantine_key, so a replay (or the
        batch path) never adds a line twice."""
        seen_obs = Observation(_observation_name("malformed", batch_id))
        fresh_obs = Observation(_observation_name("appended", batch_id))
        columns = schemas.spark_schema(QUARANTINE_EVENTS).fieldNames()
        fresh = malformed.select(*columns).observe(seen_obs, F.count(F.lit(1)).alias("rows"))
        if has_parquet(self.paths.quarantine):
            existing = read_table(spark, self.paths.layout, QUARANTINE_EVENTS)
            existing = existing.select("quarantine_key")
            fresh = fresh.join(existing, "quarantine_key", "left_anti")
        fresh = fresh.observe(fresh_obs, F.count(F.lit(1)).alias("rows"))
        staging = self.paths.staging(batch_id) / "quarantine"
        fresh.coalesce(1).write.mode("overwrite").parquet(str(staging))
        appended = int(fresh_obs.get["rows"])
        if appended:
            _move_parquet_files(staging, self.paths.quarantine, batch_file_prefix(batch_id))
        return int(seen_obs.get["rows"]), appended

    def _write_record(self, counts: BatchCounts, max_event_date: dt.date | None) -> None:
        folder = self.paths.batch_records
        folder.mkdir(parents=True, exist_ok=True)
        record = counts.as_dict() | {
            "run_id": self.run.run_id,
            "max_event_date": max_event_date.isoformat() if max_event_date else None,
        }
        staging = folder / f".{counts.batch_id}.json.tmp"
        staging.write_text(json.dumps(record, sort_keys=True))
        os.replace(staging, folder / f"{counts.batch_id}.json")
        shutil.rmtree(self.paths.staging(counts.batch_id), ignore_errors=True)


def _observation_name(what: str, batch_id: int) -> str:
    """Unique per use: two streams on one session may both be at batch 0."""
    return f"stream_{what}_{batch_id}_{uuid.uuid4().hex[:8]}"


def _later(left: dt.date | None, right: dt.date | None) -> dt.date | None:
    if left is None or right is None:
        return left or right
    return max(left, right)


def _move_parquet_files(staging: Path, table: Path, prefix: str, under: str = "") -> None:
    """Rename every parquet file of a staged write into the table, keeping partition folders."""
    files = sorted(
        path
        for path in staging.glob(f"{under}*.parquet")
        if not any(part.startswith((".", "_")) for part in path.relative_to(staging).parts)
    )
    for index, path in enumerate(files):
        target_dir = table / path.parent.relative_to(staging)
        target_dir.mkdir(parents=True, exist_ok=True)
        os.replace(path, target_dir / f"{prefix}{index:05d}.parquet")
