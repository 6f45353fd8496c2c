"""On a generated dirty landing the speed layer accounts for every line, and the batch layer
after it gives the same gold as the batch backfill path.

The dirty landing and its backfilled Spark lake are the session's (`dirty_landing`,
`dirty_lakes`), shared with the differential tests."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests import stream_support as support

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def streamed_lake(spark, dirty_landing, tmp_path_factory: pytest.TempPathFactory):
    """The dirty landing after `--once --max-files 2`: several micro-batches, as a feed arrives."""
    from adapters.spark.events import classify_lines
    from adapters.spark.streaming import BronzeStream, StreamOptions
    from finops_core.lake import LakeLayout
    from finops_core.ports import RunContext

    landing, _ = dirty_landing
    lake = tmp_path_factory.mktemp("streamed")
    shutil.copytree(landing, lake / "landing")
    run = RunContext("stream-test", dt.datetime.now(dt.timezone.utc))
    result = BronzeStream(spark, LakeLayout(lake), classify_lines).run(
        run, StreamOptions(once=True, max_files=2)
    )
    return lake, result


def _landing_lines(landing: Path) -> int:
    from finops_core.events import split_lines

    return sum(
        len(split_lines(p.read_bytes())) for p in (landing / "usage_events_stream").glob("*.jsonl")
    )


def test_on_a_dirty_landing_bronze_plus_malformed_plus_dropped_duplicates_is_every_landing_line(
    dirty_landing, streamed_lake
) -> None:
    landing, injected = dirty_landing
    lake, result = streamed_lake
    expected = injected["expected"]
    lines = _landing_lines(landing)
    totals = result.totals
    bronze = support.bronze_rows(lake)
    quarantine = support.quarantine_rows(lake)

    assert totals["batches"] > 1
    assert totals["landing_lines"] == lines
    assert totals["malformed"] == expected["malformed_record"] > 0
    assert totals["duplicates"] == expected["duplicates"] > 0
    assert len(bronze) == totals["bronze_rows"]
    assert len(bronze) + len(quarantine) + totals["duplicates"] == lines
    assert len({row["event_id"] for row in bronze}) == len(bronze)
    ledger = support.ledger_rows(lake)
    assert len(ledger) == len(list((landing / "usage_events_stream").glob("*.jsonl")))
    assert sum(int(str(row["lines"])) for row in ledger) == lines
    assert sum(int(str(row["duplicates"])) for row in ledger) == totals["duplicates"]
    assert sum(int(str(row["malformed"])) for row in ledger) == len(quarantine)
    assert {tuple(row["reasons"]) for row in quarantine} == {("malformed_record",)}
    assert (
        sum("\ufffd" in str(row["raw_record"]) for row in quarantine)
        == injected["counts"]["invalid_utf8"]
    )
    assert (
        sum(str(row["raw_record"]).startswith("<<corrupted record") for row in quarantine)
        == injected["counts"]["not_json"]
    )


def test_after_the_stream_the_batch_layer_gives_the_same_gold_as_the_backfill_path(
    spark, streamed_lake, dirty_lakes
) -> None:
    from adapters.console import SilentProgress
    from adapters.landing.manifest import landing_events
    from adapters.spark.engine import SparkEngine
    from finops_core import usecases
    from finops_core.lake import LakeLayout
    from finops_core.marts import DAILY_USAGE
    from finops_core.ports import RunContext

    streamed, _ = streamed_lake
    backfilled, backfill = dirty_lakes["spark"]  # the batch alone over a copy of the landing
    engine = SparkEngine(spark=spark)
    run = RunContext("batch-test", dt.datetime.now(dt.timezone.utc))
    layout = LakeLayout(streamed)
    after_stream = usecases.run_batch(
        engine, layout, run, SilentProgress(), landing_events(layout.landing)
    )

    # The stream's ledger names every landing file by its SHA-256: its bronze is used.
    assert [r.stage for r in after_stream if r.skipped] == ["bronze_events"]
    assert [r.stage for r in backfill if r.skipped] == []
    key = DAILY_USAGE.table.key_of
    gold_stream = sorted(engine.read_rows(LakeLayout(streamed), DAILY_USAGE.table), key=key)
    gold_backfill = sorted(engine.read_rows(LakeLayout(backfilled), DAILY_USAGE.table), key=key)
    assert len(gold_stream) == len(gold_backfill) > 0
    for left, right in zip(gold_stream, gold_backfill, strict=True):
        assert _gold_key(left) == _gold_key(right)
        for name, value in _gold_measures(left).items():
            other = _gold_measures(right)[name]
            assert (value is None and other is None) or math.isclose(
                value, other, rel_tol=1e-12, abs_tol=1e-9
            ), name
    silver_stream = {s.stage: s.counts for s in after_stream}["silver"]
    silver_backfill = {s.stage: s.counts for s in backfill}["silver"]
    assert silver_stream["silver_rows"] == silver_backfill["silver_rows"]
    # The stream already dropped the re-sent copies that silver drops on the backfill path.
    assert silver_backfill["duplicates"] - silver_stream["duplicates"] == _dropped(streamed_lake)


def _dropped(streamed_lake: tuple[Path, object]) -> float:
    return streamed_lake[1].totals["duplicates"]  # type: ignore[attr-defined]


def _gold_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["usage_date"], row["org_id"], row["service"], row["quality_flags"])


def _gold_measures(row: dict[str, Any]) -> dict[str, Any]:
    fields = (
        "daily_cost_usd",
        "requests",
        "cpu_hours",
        "storage_gb_hours",
        "genai_tokens",
        "carbon_kg",
        "event_count",
        "cost_per_request_usd",
    )
    return {name: row[name] for name in fields}
