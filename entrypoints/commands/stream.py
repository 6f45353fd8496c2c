"""`finops stream`: the speed layer, landing usage-event files into bronze exactly once."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from entrypoints.commands.common import add_command, add_lake_option, add_master_option, writes_lake
from entrypoints.containers import Container
from finops_core.errors import DatasetMissing


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "stream",
        "run the speed layer: landing JSONL events -> bronze with Structured Streaming",
        "Watch <lake>/landing/usage_events_stream/ with Spark Structured Streaming and write\n"
        "every new line to bronze/usage_events (same table as the batch backfill), exactly once:\n"
        "each micro-batch is written under its batch id and replaced, never duplicated, when a\n"
        "crash makes Spark replay it. Event ids repeated within 7 days of ingest are dropped and\n"
        "counted; malformed lines go to quarantine/usage_events. The checkpoint is\n"
        "<lake>/checkpoints/bronze_usage_events/; a rerun only reads files it has not seen.\n"
        "--once processes what is there and stops; --continuous runs until SIGINT/SIGTERM and\n"
        "then stops after the micro-batch being written. Progress per micro-batch goes to\n"
        "stderr, the totals to stdout as one line, and a run record to <lake>/_runs/.",
        "finops stream --lake ./datalake --once --max-files 10",
    )
    add_lake_option(parser)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--once", action="store_true", help="process every file available now, then stop"
    )
    mode.add_argument("--continuous", action="store_true", help="run until SIGINT/SIGTERM")
    parser.add_argument(
        "--trigger",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="micro-batch interval with --continuous (default 5)",
    )
    parser.add_argument(
        "--max-files",
        type=_positive_int,
        default=None,
        metavar="N",
        help="at most N new files per micro-batch (default: all)",
    )
    add_master_option(parser)
    writes_lake(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, container: Container) -> int:
    layout = container.layout()
    if not layout.landing_events.is_dir():  # before paying for a JVM
        raise DatasetMissing(
            f"there is no {layout.landing_events}: "
            "run `finops landing` (or `finops generate`) first"
        )
    spark = container.spark()  # the container's session: the batch engine's settings (UTC, ...)
    from adapters.spark.events import classify_lines
    from adapters.spark.streaming import BronzeStream, StreamOptions, stream_record
    from entrypoints.app import start_run

    run_context = start_run(container, "stream", "spark")
    progress = container.progress()
    options = StreamOptions(once=args.once, trigger_seconds=args.trigger, max_files=args.max_files)
    stream = BronzeStream(spark, layout, classify_lines)
    stop = threading.Event()
    progress.stage_started("stream")
    with _stop_on_signals(stop):
        result = stream.run(
            run_context,
            options,
            stop,
            on_batch=lambda counts: progress.update("stream", counts.summary()),
        )
    record = stream_record(run_context, options, result)
    container.run_log().write(record)
    for stage in record.stages:
        progress.stage_finished(stage)
    totals = result.totals
    print(
        f"stream {run_context.run_id}: " + " ".join(f"{k}={_number(v)}" for k, v in totals.items())
    )
    return 0


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM ask the stream to stop after its current micro-batch."""

    def request_stop(signum: int, frame: FrameType | None) -> None:
        if not stop.is_set():
            print(
                f"finops stream: {signal.Signals(signum).name}, "
                "stopping after the current micro-batch",
                file=sys.stderr,
                flush=True,
            )
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value
