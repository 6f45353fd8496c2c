"""The speed layer's micro-batch writer: one landing micro-batch into bronze, exactly once.

Structured Streaming calls `BronzeBatchWriter` through foreachBatch with a static DataFrame of
landing lines (raw, source_file, source_path, ingest_ts) and the batch id. Spark records the batch
as done only after the call returns, so after a crash the same batch (same files, same batch
timestamp) is replayed. Every output of a batch is a Delta commit made idempotent by the batch id:

1. bronze: the batch's surviving rows, appended with Delta's idempotent-write options
   (`txnAppId` = this checkpoint's application id, `txnVersion` = the batch id): a replay of a
   committed batch is skipped by Delta itself;
2. dedupe state (event ids kept per batch, a Delta table in the checkpoint): the same way;
3. quarantine: the entries whose quarantine_key it lacks, appended in one commit tagged with the
   batch in its user metadata, so a replay finds it and does not append again;
4. the ledger (`tables.LANDING_FILES`): the batch's files' rows replaced (replaceWhere), with the
   same idempotent-write options;
5. the batch record (its counts), last.

The batch's lines are parsed once: the parsed lines are cached (memory, then disk) for the
writes that read them. The batch's counts ride on the bronze write as an observation. A write
Delta skips never runs its query, so on a replay of a committed batch they come from one
aggregation over the same parsed lines instead (the same figures: the dedupe state it reads is
that of the earlier batches only), and the quarantine's from the tagged commit.

The application id is generated once per checkpoint folder and kept in it: a deleted checkpoint
(which makes Spark start again at batch 0) gets a new id, so its batches are not skipped.
Deduplication is bounded on ingest time, not event time (see `DedupeWindow`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import attrs
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession, Window
from pyspark.sql import functions as F

from adapters.spark import schemas, storage
from adapters.spark.driver_rows import frame_of
from adapters.spark.events import BRONZE_PARTITION, bronze_of, is_blank, malformed_of
from finops_core.lake import LakeLayout
from finops_core.ports import RunContext
from finops_core.tables import BRONZE_EVENTS, LANDING_FILES, QUARANTINE_EVENTS

STREAM_CHECKPOINT = "bronze_usage_events"
APP_ID_FILE = "delta_app_id"
SOURCE_PATH = "source_path"  # the landing file's URI (`_metadata.file_path`), when given
SEEN_COLUMNS = ("event_id", "ingest_ts", "batch_id", "ingest_date")
# The commit user metadata that tags a batch's quarantine commit.
_USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
_CHUNK = 1 << 20

# Landing lines -> one row per line with `_malformed` and the contract's fields: the batch
# engine's `events.classify_lines`.
Parser = Callable[[DataFrame], DataFrame]


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
    """What one micro-batch did (landing lines = bronze rows + duplicates + malformed + blank
    lines)."""

    batch_id: int
    files: int
    landing_lines: int
    bronze_rows: int
    duplicates: int
    malformed: int
    blank_lines: int
    quarantine_appended: int
    late: int
    seconds: float

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in attrs.asdict(self).items()}

    def summary(self) -> str:
        return (
            f"batch {self.batch_id}: files={self.files} lines={self.landing_lines} "
            f"bronze={self.bronze_rows} duplicates={self.duplicates} malformed={self.malformed} "
            f"blank={self.blank_lines} late={self.late} in {self.seconds:.2f} s"
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
        """A Delta table of the event ids each batch kept (partitioned by ingest_date)."""
        return self.checkpoint / "event_ids"

    @property
    def batch_records(self) -> Path:
        return self.checkpoint / "batches"

    @property
    def app_id_file(self) -> Path:
        return self.checkpoint / APP_ID_FILE


def application_id(paths: StreamPaths) -> str:
    """This checkpoint's Delta application id: made once (atomically), then read back."""
    target = paths.app_id_file
    try:
        return target.read_text().strip()
    except FileNotFoundError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{APP_ID_FILE}.{uuid.uuid4().hex}.tmp")
    staging.write_text(f"finops-stream-{uuid.uuid4()}\n")
    try:
        os.link(staging, target)  # fails if another attempt made it first: that id wins
    except FileExistsError:
        pass
    finally:
        staging.unlink()
    return target.read_text().strip()


def committed(table: Path, app_id: str, batch_id: int) -> bool:
    """Whether Delta committed batch `batch_id` (or a later one) of `app_id` on `table`."""
    if not storage.is_delta_table(table):
        return False
    from deltalake import DeltaTable

    version = DeltaTable(str(table)).transaction_version(app_id)
    return version is not None and version >= batch_id


def _tagged_commit(table: Path, tag: str) -> Mapping[str, Any] | None:
    """The commit of `table` whose user metadata is `tag` (newest first), if any."""
    if not storage.is_delta_table(table):
        return None
    from deltalake import DeltaTable

    for commit in DeltaTable(str(table)).history():
        if commit.get("userMetadata") == tag:
            return commit
    return None


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
        self._app_id: str | None = None

    @property
    def app_id(self) -> str:
        if self._app_id is None:
            self._app_id = application_id(self.paths)
        return self._app_id

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
        # The raw lines are read twice (counting them needs no parse; re-reading a batch's files
        # gives the same lines, same offsets); only the parsed lines below are cached, in
        # serialized blocks that spill to disk (MEMORY_AND_DISK), so a batch of a million lines
        # does not need a million rows of heap.
        files = self._files_of(lines, batch_id)
        previous_max = self._previous_max_event_date(batch_id)
        total_lines = sum(file.lines for file in files)
        if not total_lines:  # no lines, maybe empty files: the ledger still names them
            if files:
                self._write_ledger(spark, files, {"per_file": {}}, {}, batch_id, files[0].ingest_ts)
            counts = BatchCounts(
                batch_id, len(files), 0, 0, 0, 0, 0, 0, 0, time.perf_counter() - started
            )
            self._write_record(counts, previous_max)
            return counts
        ingest_ts = files[0].ingest_ts
        stamp = {"run_id": F.lit(self.run.run_id), "ingest_ts": F.lit(ingest_ts)}
        # Parsed once for the bronze write, the dedupe state and the quarantine.
        classified = self.parse(lines).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            metrics = self._write_bronze_and_state(
                spark, bronze_of(classified), files, batch_id, ingest_ts, stamp, previous_max
            )
            malformed_by_file, appended = self._append_quarantine(
                spark, malformed_of(classified).withColumns(stamp), batch_id
            )
        finally:
            classified.unpersist()
        self._write_ledger(spark, files, metrics, malformed_by_file, batch_id, ingest_ts)
        counts = BatchCounts(
            batch_id=batch_id,
            files=len(files),
            landing_lines=total_lines,
            bronze_rows=int(metrics["bronze_rows"]),
            duplicates=int(metrics["duplicates"]),
            malformed=sum(malformed_by_file.values()),
            blank_lines=sum(file.blank for file in files),
            quarantine_appended=appended,
            late=int(metrics["late"]),
            seconds=time.perf_counter() - started,
        )
        self._write_record(counts, _later(previous_max, metrics["max_date"]))
        return counts

    def _files_of(self, lines: DataFrame, batch_id: int) -> list[_BatchFile]:
        """The batch's files (empty ones too, from the file source's log): lines, blank lines
        and batch timestamp per file, from one pass without parsing."""
        keys = ["source_file", *([SOURCE_PATH] if SOURCE_PATH in lines.columns else [])]
        rows = (
            lines.groupBy(*keys)
            .agg(
                F.count(F.lit(1)).alias("lines"),
                F.count_if(is_blank(F.col("raw"))).alias("blank"),
                F.max("ingest_ts").alias("ingest_ts"),
            )
            .collect()
        )
        paths = {
            Path(unquote(urlparse(str(row[SOURCE_PATH])).path))
            if SOURCE_PATH in keys
            else self.paths.layout.landing_events / str(row["source_file"])
            for row in rows
        }
        paths.update(self._source_log_files(batch_id))
        counted = {str(row["source_file"]): row for row in rows}
        # Collected timestamps are naive local time: make the instant explicit. A file without
        # lines has no batch timestamp of its own: it takes the batch's.
        stamps = [row["ingest_ts"].astimezone(dt.timezone.utc) for row in rows]
        batch_ts = max(stamps) if stamps else dt.datetime.now(dt.timezone.utc)
        landing = self.paths.layout.landing
        files = {
            path.name: _BatchFile(
                path.name,
                path,
                landing,
                int(counted[path.name]["lines"]) if path.name in counted else 0,
                int(counted[path.name]["blank"]) if path.name in counted else 0,
                batch_ts,
            )
            for path in paths
        }
        return sorted(files.values(), key=lambda file: file.name)

    def _source_log_files(self, batch_id: int) -> set[Path]:
        """The files the file source's log assigns to the batch (empty files have no lines to
        name them). A stream batch covers the source-log batches after the previous batch's
        `logOffset` up to its own (`offsets/<id>`): after a restart they are not the same
        numbers (a source batch logged by a killed run is read with the next one). The log is
        `sources/0/<n>` files and, every 10th, a compacted `<n>.compact` holding all entries up
        to n: JSON lines after a version line. No offsets (a batch not from the stream): none."""
        end = self._log_offset(batch_id)
        if end is None:
            return set()
        start = self._log_offset(batch_id - 1) if batch_id > 0 else None
        first = -1 if start is None else start
        folder = self.paths.checkpoint / "sources" / "0"
        found: set[Path] = set()
        for log in folder.glob("*"):
            number = log.name.removesuffix(".compact")
            if not number.isdigit() or int(number) <= first:
                continue
            for line in log.read_text().splitlines()[1:]:
                if not line.strip():
                    continue
                entry = json.loads(line)
                if first < int(entry.get("batchId", number)) <= end:
                    found.add(Path(unquote(urlparse(str(entry["path"])).path)))
        return found

    def _log_offset(self, batch_id: int) -> int | None:
        """The file source's `logOffset` that stream batch `batch_id` read up to."""
        try:
            lines = (self.paths.checkpoint / "offsets" / str(batch_id)).read_text().splitlines()
        except FileNotFoundError:
            return None
        for line in lines[2:]:
            if line.strip().startswith("{"):
                return int(json.loads(line)["logOffset"])
        return None

    def _write_bronze_and_state(
        self,
        spark: SparkSession,
        bronze: DataFrame,
        files: Sequence[_BatchFile],
        batch_id: int,
        ingest_ts: dt.datetime,
        stamp: dict[str, Column],
        previous_max: dt.date | None,
    ) -> dict[str, Any]:
        """Append the batch's surviving rows to bronze and their ids to the dedupe state (each
        skipped by Delta when this batch committed it before); the batch's bronze counts, in
        total and per file: observed on the bronze write, or when Delta skips it (a replay), from
        one aggregation of the same rows."""
        kept = ~F.col("_duplicate")
        event_day = F.to_date(BRONZE_PARTITION)
        if previous_max is None:
            late = F.lit(False)
        else:
            late = event_day < F.lit(previous_max - dt.timedelta(days=self.window.late_after_days))
        marked = self._mark_duplicates(spark, bronze, batch_id, ingest_ts)
        per_file = [
            expression
            for index, file in enumerate(files)
            for expression in (
                F.count_if(kept & (F.col("source_file") == file.name)).alias(f"bronze.{index}"),
                F.count_if(~kept & (F.col("source_file") == file.name)).alias(f"dup.{index}"),
            )
        ]
        stats = (
            F.count_if(kept).alias("bronze_rows"),
            F.count_if(~kept).alias("duplicates"),
            F.max(F.when(kept, event_day)).alias("max_date"),
            F.count_if(kept & late).alias("late"),
            *per_file,
        )
        txn = {"txnAppId": self.app_id, "txnVersion": str(batch_id)}
        if committed(self.paths.bronze, self.app_id, batch_id):
            first = marked.agg(*stats).first()
            assert first is not None
            metrics: dict[str, Any] = first.asDict()
        else:
            observation = Observation(f"stream_batch_{batch_id}")
            rows = (
                marked.observe(observation, *stats)
                .where(kept)
                .withColumns(stamp)
                .select(*storage.columns(BRONZE_EVENTS))
            )
            rows.write.format(storage.DELTA).mode("append").options(**txn).partitionBy(
                BRONZE_PARTITION
            ).save(str(self.paths.bronze))
            metrics = dict(observation.get)
        metrics["per_file"] = {
            file.name: (int(metrics[f"bronze.{index}"]), int(metrics[f"dup.{index}"]))
            for index, file in enumerate(files)
        }
        if not committed(self.paths.dedupe_state, self.app_id, batch_id):
            has_id = F.col("event_id").isNotNull() & (F.col("event_id") != "")
            ids = marked.where(kept & has_id).select(
                "event_id",
                F.lit(ingest_ts).alias("ingest_ts"),
                F.lit(batch_id).cast("long").alias("batch_id"),
                F.lit(ingest_ts.date()).alias("ingest_date"),
            )
            ids.coalesce(1).write.format(storage.DELTA).mode("append").options(**txn).partitionBy(
                "ingest_date"
            ).save(str(self.paths.dedupe_state))
            self._prune_dedupe_state(spark, ingest_ts)
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
        """The ids the earlier batches (never this one, even if it committed before a crash)
        kept within the window."""
        if not storage.is_delta_table(self.paths.dedupe_state):
            return None
        cutoff = ingest_ts - dt.timedelta(days=self.window.days)
        frame = spark.read.format(storage.DELTA).load(str(self.paths.dedupe_state))
        return (
            frame.where(
                (F.col("batch_id") < batch_id)
                & (F.col("ingest_date") >= F.lit(cutoff.date()))
                & (F.col("ingest_ts") >= F.lit(cutoff))
            )
            .select("event_id")
            .distinct()
        )

    def _prune_dedupe_state(self, spark: SparkSession, ingest_ts: dt.datetime) -> None:
        """Delete the days older than the window (one commit, only when there are some)."""
        from deltalake import DeltaTable

        cutoff = (ingest_ts - dt.timedelta(days=self.window.days + 1)).date()
        days = {
            partition["ingest_date"]
            for partition in DeltaTable(str(self.paths.dedupe_state)).partitions()
        }
        if any(day is not None and dt.date.fromisoformat(str(day)) < cutoff for day in days):
            from delta.tables import DeltaTable as SparkDeltaTable

            SparkDeltaTable.forPath(spark, str(self.paths.dedupe_state)).delete(
                F.col("ingest_date") < F.lit(cutoff)
            )

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

    # ---- quarantine and ledger -----------------------------------------------------------------

    def _append_quarantine(
        self, spark: SparkSession, malformed: DataFrame, batch_id: int
    ) -> tuple[dict[str, int], int]:
        """(malformed lines per file, entries added): the new keys appended in a commit tagged
        with the batch, so a replay finds that commit (and its count) instead of adding again."""
        candidates = malformed.select(*storage.columns(QUARANTINE_EVENTS)).persist(
            StorageLevel.MEMORY_AND_DISK
        )
        try:
            by_file = {
                str(row["source_file"]): int(row["lines"])
                for row in candidates.groupBy("source_file")
                .agg(F.count(F.lit(1)).alias("lines"))
                .collect()
            }
            if not by_file:
                return by_file, 0
            tag = json.dumps({"app": self.app_id, "batch": batch_id}, sort_keys=True)
            earlier = _tagged_commit(self.paths.quarantine, tag)
            if earlier is not None:
                metrics = earlier.get("operationMetrics") or {}
                return by_file, int(
                    metrics.get("numTargetRowsInserted", metrics.get("numOutputRows", 0))
                )
            spark.conf.set(_USER_METADATA_CONF, tag)
            try:
                appended = storage.append_new(
                    candidates.coalesce(1), self.paths.layout, QUARANTINE_EVENTS
                )
            finally:
                spark.conf.unset(_USER_METADATA_CONF)
            return by_file, appended
        finally:
            candidates.unpersist()

    def _write_ledger(
        self,
        spark: SparkSession,
        files: Sequence[_BatchFile],
        metrics: Mapping[str, Any],
        malformed_by_file: Mapping[str, int],
        batch_id: int,
        ingest_ts: dt.datetime,
    ) -> None:
        """The batch's files' ledger rows replace theirs (one idempotent commit)."""
        ledger = self.paths.layout.table(LANDING_FILES)
        if committed(ledger, self.app_id, batch_id):
            return
        schema = schemas.spark_schema_with_partition(LANDING_FILES)
        rows = []
        for file in files:
            bronze_rows, duplicates = metrics["per_file"].get(file.name, (0, 0))
            size, sha256 = file.size_and_sha256()
            row = {
                "source_file": file.name,
                "path": file.relative_path,
                "size": size,
                "sha256": sha256,
                "lines": file.lines,
                "blank": file.blank,
                "malformed": malformed_by_file.get(file.name, 0),
                "duplicates": duplicates,
                "bronze_rows": bronze_rows,
                "run_id": self.run.run_id,
                "ingest_ts": ingest_ts,
            }
            rows.append(tuple(row[name] for name in schema.fieldNames()))
        writer = (
            frame_of(spark, rows, schema)
            .coalesce(1)
            .write.format(storage.DELTA)
            .mode("overwrite")
            .option("txnAppId", self.app_id)
            .option("txnVersion", str(batch_id))
        )
        if storage.is_delta_table(ledger):
            names = (file.name for file in files)
            writer = writer.option("replaceWhere", storage.sql_in("source_file", names))
        writer.save(str(ledger))

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


@attrs.frozen
class _BatchFile:
    """One landing file of a micro-batch: its lines (and how many of them are blank) in the
    batch and where it is."""

    name: str
    local_path: Path
    landing: Path
    lines: int
    blank: int
    ingest_ts: dt.datetime

    @property
    def relative_path(self) -> str:
        try:
            return self.local_path.relative_to(self.landing).as_posix()
        except ValueError:
            return self.local_path.as_posix()

    def size_and_sha256(self) -> tuple[int, str]:
        """The file's size and SHA-256 now, hashed on the driver (the landing is local). A file
        removed since the batch read it is recorded with size 0 and no digest: the batch run's
        plan then sees it as removed or changed."""
        digest = hashlib.sha256()
        try:
            with self.local_path.open("rb") as handle:
                for block in iter(lambda: handle.read(_CHUNK), b""):
                    digest.update(block)
            return self.local_path.stat().st_size, digest.hexdigest()
        except FileNotFoundError:
            return 0, ""


def _later(left: dt.date | None, right: dt.date | None) -> dt.date | None:
    if left is None or right is None:
        return left or right
    return max(left, right)
