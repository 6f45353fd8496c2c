"""The speed layer: landing usage-event files into bronze with Structured Streaming.

A text file source watches `<lake>/landing/usage_events_stream/` (`*.jsonl`, at most
`max_files` new files per micro-batch) and hands each micro-batch of lines, with the file name
from `_metadata.file_name` and the batch timestamp as ingest time, to `BronzeBatchWriter`
(foreachBatch), which parses them with the batch engine's `classify_lines` and commits bronze,
quarantine, dedupe state and the ledger idempotently by batch id (Delta transactions). Spark's
checkpoint (offsets, commits, the file source's log) lives in
`<lake>/checkpoints/bronze_usage_events/`, beside the writer's state.

Two triggers: `once` (availableNow: everything present now, in as many micro-batches as
`max_files` asks, then stop) and continuous (a processing-time trigger every `trigger_seconds`,
until `stop` is set; the batch being written is finished first, no later batch is started).

Producers must put files into landing atomically (write elsewhere, then rename): the source
reads a file once, when it first sees it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import attrs
from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from adapters.spark.stream_sink import (
    SOURCE_PATH,
    BatchCounts,
    BronzeBatchWriter,
    DedupeWindow,
    Parser,
    StopRequested,
    StreamPaths,
)
from finops_core.contracts import USAGE_EVENTS
from finops_core.errors import DatasetMissing
from finops_core.lake import LakeLayout
from finops_core.runs import RunContext, RunRecord, StageResult, merged_counts, reconcile

QUERY_NAME = "bronze_usage_events"
POLL_SECONDS = 0.2
# After a stop request, how long to wait for the batch just written to be committed by Spark.
COMMIT_WAIT_SECONDS = 30.0
DRAINED = "drained"  # availableNow read everything there was
STOP_REQUESTED = "stop requested"  # a stop was asked for; the batch being written was finished
NORMAL_STOPS = (DRAINED, STOP_REQUESTED)
TOTAL_KEYS = (
    "files",
    "landing_lines",
    "bronze_rows",
    "duplicates",
    "malformed",
    "blank_lines",
    "quarantine_appended",
    "late",
)


@attrs.frozen
class StreamOptions:
    once: bool = True
    trigger_seconds: float = 5.0
    max_files: int | None = None
    window: DedupeWindow = DedupeWindow()


@attrs.frozen
class StreamResult:
    batches: tuple[BatchCounts, ...]
    seconds: float
    stopped: str  # DRAINED or STOP_REQUESTED

    @property
    def totals(self) -> dict[str, float]:
        totals: dict[str, float] = {
            key: sum(getattr(b, key) for b in self.batches) for key in TOTAL_KEYS
        }
        totals["batches"] = len(self.batches)
        totals["seconds"] = round(self.seconds, 3)
        return totals


def landing_lines(spark: SparkSession, layout: LakeLayout, max_files: int | None) -> DataFrame:
    """The streaming DataFrame of landing lines: raw, source_file, source_path (the file's URI,
    for the ledger), ingest_ts (batch timestamp).

    Lines are split on \\n only, as the core splits them (a trailing \\r is the parser's to drop,
    a BOM that starts a file Hadoop's line reader drops, blank lines are counted, not parsed);
    `current_timestamp()` in a micro-batch is the batch's timestamp from the offset log, so a
    replayed batch keeps its ingest time.
    """
    reader = (
        spark.readStream.format("text")
        .option("lineSep", "\n")
        .option("pathGlobFilter", USAGE_EVENTS.file_pattern.rsplit("/", 1)[-1])
    )
    if max_files is not None:
        reader = reader.option("maxFilesPerTrigger", max_files)
    return reader.load(str(layout.landing_events)).select(
        F.col("value").alias("raw"),
        F.col("_metadata.file_name").alias("source_file"),
        F.col("_metadata.file_path").alias(SOURCE_PATH),
        F.current_timestamp().alias("ingest_ts"),
    )


class BronzeStream:
    """Runs the landing -> bronze query on a session it is given (and never stops that session)."""

    def __init__(self, spark: SparkSession, layout: LakeLayout, parse: Parser) -> None:
        self.spark = spark
        self.layout = layout
        self.paths = StreamPaths(layout)
        self.parse = parse

    def run(
        self,
        run: RunContext,
        options: StreamOptions,
        stop: threading.Event | None = None,
        on_batch: Callable[[BatchCounts], None] | None = None,
    ) -> StreamResult:
        started = time.perf_counter()
        stop = stop or threading.Event()
        if not self.layout.landing_events.is_dir():
            raise DatasetMissing(
                f"there is no {self.layout.landing_events}: "
                "run `finops landing` (or `finops generate`) first"
            )
        writer = BronzeBatchWriter(self.paths, run, self.parse, options.window, on_batch)
        query = self._start(writer, options)
        stopped = self._wait(query, writer, stop)
        return StreamResult(tuple(writer.batches), time.perf_counter() - started, stopped)

    def _start(self, writer: BronzeBatchWriter, options: StreamOptions) -> StreamingQuery:
        stream = (
            landing_lines(self.spark, self.layout, options.max_files)
            .writeStream.queryName(QUERY_NAME)
            .foreachBatch(writer)
            .option("checkpointLocation", str(self.paths.checkpoint))
        )
        if options.once:
            stream = stream.trigger(availableNow=True)
        else:
            stream = stream.trigger(processingTime=f"{options.trigger_seconds} seconds")
        return stream.start()

    def _wait(self, query: StreamingQuery, writer: BronzeBatchWriter, stop: threading.Event) -> str:
        try:
            while query.isActive:
                if stop.is_set():
                    self._stop_after_current_batch(query, writer)
                    return STOP_REQUESTED
                time.sleep(POLL_SECONDS)  # (awaitTermination would hold off signal handlers)
        except StreamingQueryException as error:
            if stop.is_set() and _caused_by_stop(error):
                return STOP_REQUESTED
            raise
        failure = query.exception()
        if failure is not None and not (stop.is_set() and _caused_by_stop(failure)):
            raise failure
        return STOP_REQUESTED if stop.is_set() else DRAINED

    def _stop_after_current_batch(self, query: StreamingQuery, writer: BronzeBatchWriter) -> None:
        writer.close_gate()  # waits for a batch being written; later batches write nothing
        written = writer.batches[-1].batch_id if writer.batches else None
        deadline = time.monotonic() + COMMIT_WAIT_SECONDS
        while written is not None and query.isActive and time.monotonic() < deadline:
            progress = query.lastProgress
            if progress is not None and int(progress["batchId"]) >= written:
                break  # the commit log has it: stopping now replays nothing
            time.sleep(POLL_SECONDS / 4)
        try:
            query.stop()
        except StreamingQueryException as error:
            if not _caused_by_stop(error):
                raise


def _caused_by_stop(error: BaseException) -> bool:
    return StopRequested.__name__ in str(error)


def stream_record(run: RunContext, options: StreamOptions, result: StreamResult) -> RunRecord:
    """The run log's record of one streaming run: its totals as the "stream" stage (audited by
    the declared reconciliations), its options and every micro-batch as details."""
    stages = (StageResult("stream", result.totals, result.seconds),)
    return RunRecord(
        run_id=run.run_id,
        kind="stream",
        engine="spark",
        started_at=run.started_at,
        stages=stages,
        reconciliations=tuple(reconcile(merged_counts(stages))),
        finished=result.stopped in NORMAL_STOPS,
        details={
            "mode": "once" if options.once else "continuous",
            "trigger_seconds": None if options.once else options.trigger_seconds,
            "max_files": options.max_files,
            "dedupe_window_days": options.window.days,
            "stopped": result.stopped,
            "batches": [batch.as_dict() for batch in result.batches],
        },
    )


def stream_once_stage(
    spark: SparkSession, layout: LakeLayout, run: RunContext, parse: Parser
) -> StageResult:
    """The speed layer as one pipeline stage (availableNow), for engines and the demo."""
    result = BronzeStream(spark, layout, parse).run(run, StreamOptions(once=True))
    return StageResult("stream", result.totals, result.seconds)
