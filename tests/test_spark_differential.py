"""The same landing zone through the memory engine and the Spark engine gives the same lake.

Every table is a Delta table, read back here with the `deltalake` package: bronze events, the
ledger, silver events, quarantine entries (key, reasons, raw, file, event id), gold rows, the
master tables and every stage count must agree: floats within math.isclose(rel 1e-9, abs 1e-9),
everything else exactly. Run ids and ingest times differ by design and are left out. Both
engines also read the mart back (`Engine.read_rows`) as the same rows, and
the Spark engine's `export` hands every mart row to a sink exactly once.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from adapters.lake.delta import DeltaLake
from adapters.landing.manifest import landing_events
from adapters.memory.engine import MemoryEngine
from finops_core import usecases
from finops_core.lake import LakeLayout
from finops_core.marts import DAILY_USAGE
from finops_core.ports import RunContext, StageResult
from finops_core.tables import (
    BRONZE_EVENTS,
    BRONZE_MASTERS,
    LANDING_FILES,
    QUARANTINE_EVENTS,
    SILVER_EVENTS,
    SILVER_MASTERS,
    Table,
)
from tests.spark_fixtures import JsonLinesSink
from tests.strategies import landing_zones, master_csvs, write_landing
from tests.values import bronze_values

pytestmark = pytest.mark.spark

RUN = RunContext(
    run_id="differential", started_at=dt.datetime(2025, 9, 1, 12, 0, tzinfo=dt.timezone.utc)
)
GENERATED = ("run_id", "ingest_ts")  # provenance stamped by the run, not data
COMPARED: tuple[Table, ...] = (
    BRONZE_EVENTS,
    LANDING_FILES,
    SILVER_EVENTS,
    QUARANTINE_EVENTS,
    DAILY_USAGE.table,
    *(table for name in BRONZE_MASTERS for table in (BRONZE_MASTERS[name], SILVER_MASTERS[name])),
)


class SilentProgress:
    def stage_started(self, stage: str) -> None: ...

    def update(self, stage: str, message: str) -> None: ...

    def stage_finished(self, result: StageResult) -> None: ...


def run_both(
    landing: Path, root: Path, spark_engine: Any
) -> dict[str, tuple[Path, list[StageResult]]]:
    """Copy `landing` into two lakes and run the batch layer with each engine."""
    results = {}
    for name, engine in (("memory", MemoryEngine(DeltaLake)), ("spark", spark_engine)):
        lake = root / name
        shutil.copytree(landing, lake / "landing")
        files = landing_events(lake / "landing")
        results[name] = (
            lake,
            usecases.run_batch(engine, LakeLayout(lake), RUN, SilentProgress(), files),
        )
    return results


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _sort_key(row: Mapping[str, Any]) -> str:
    """Order rows by everything but floats (which may differ in the last bits)."""
    return repr(
        sorted(
            (k, v) for k, v in row.items() if not isinstance(v, float) and not isinstance(v, dict)
        )
    )


def table(lake: Path, declared: Table) -> list[dict[str, Any]]:
    rows = DeltaLake(LakeLayout(lake)).read_table(declared)
    if declared is BRONZE_EVENTS:  # numbers as values: the engines may spell them differently
        rows = [bronze_values(row) for row in rows]
    cleaned = [{k: v for k, v in row.items() if k not in GENERATED} for row in rows]
    return sorted(cleaned, key=_sort_key)


def assert_same_table(memory: Path, spark: Path, declared: Table) -> None:
    expected, got = table(memory, declared), table(spark, declared)
    assert len(got) == len(expected), (
        f"{declared.id}: spark {len(got)} rows, memory {len(expected)}"
    )
    for want, have in zip(expected, got, strict=True):
        assert _same(want, have), f"{declared.id} differs:\n memory {want}\n spark  {have}"


def assert_same_rows_read(
    results: dict[str, tuple[Path, list[StageResult]]], spark_engine: Any
) -> None:
    """`read_rows` of the mart: the same rows from both engines (in no particular order: here
    sorted by key), each key once, and what the lake holds."""
    mart = DAILY_USAGE.table
    memory, spark = results["memory"][0], results["spark"][0]
    want = sorted(MemoryEngine(DeltaLake).read_rows(LakeLayout(memory), mart), key=mart.key_of)
    got = sorted(spark_engine.read_rows(LakeLayout(spark), mart), key=mart.key_of)
    assert len(got) == len(want) == len(table(spark, mart))
    keys = [mart.key_of(row) for row in got]
    assert len(set(keys)) == len(keys)
    for expected, have in zip(want, got, strict=True):
        assert _same(expected, have), f"read_rows differs:\n memory {expected}\n spark  {have}"
    stored = sorted(table(spark, mart), key=mart.key_of)
    for expected, have in zip(stored, got, strict=True):
        assert _same(expected, have), f"read_rows is not the lake:\n lake {expected}\n read {have}"


def assert_same_lakes(
    results: dict[str, tuple[Path, list[StageResult]]], spark_engine: Any
) -> None:
    memory, memory_stages = results["memory"]
    spark, spark_stages = results["spark"]
    for declared in COMPARED:
        assert_same_table(memory, spark, declared)
    for want, have in zip(memory_stages, spark_stages, strict=True):
        assert want.stage == have.stage
        assert _same(dict(want.counts), {k: v for k, v in have.counts.items()}), (
            f"{want.stage} counts differ:\n memory {dict(want.counts)}\n spark  {dict(have.counts)}"
        )
    gold = {
        DAILY_USAGE.table.key_of(row)
        for row in DeltaLake(LakeLayout(spark)).read_table(DAILY_USAGE.table)
    }
    assert len(gold) == len(table(spark, DAILY_USAGE.table))
    assert_same_rows_read(results, spark_engine)


@pytest.fixture(scope="module")
def spark_engine(spark: Any) -> Any:
    from adapters.spark.engine import SparkEngine

    return SparkEngine(spark=spark)


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(landing=landing_zones(max_files=3, max_lines=25))
def test_generated_landing_zones_give_the_same_lake_in_both_engines(
    landing: dict[str, bytes], spark_engine: Any
) -> None:
    with tempfile.TemporaryDirectory(prefix="finops-diff-") as folder:
        root = Path(folder)
        write_landing(landing, root / "landing")
        assert_same_lakes(run_both(root / "landing", root / "lakes", spark_engine), spark_engine)


def _protocols(lake: Path) -> dict[str, tuple[int, int]]:
    """(min reader, min writer) of every Delta table under the lake."""
    from deltalake import DeltaTable

    found = {}
    for log in sorted(lake.rglob("_delta_log")):
        protocol = DeltaTable(str(log.parent)).protocol()
        found[str(log.parent.relative_to(lake))] = (
            protocol.min_reader_version,
            protocol.min_writer_version,
        )
    return found


def test_tables_either_engine_wrote_the_other_reads_rewrites_and_leaves_at_reader_1_writer_2(
    spark_engine: Any, tmp_path: Path
) -> None:
    from tests.test_spark_engine import sample_events

    landing = {**master_csvs()}
    events = [json.dumps(event).encode() for event in sample_events()]
    landing["usage_events_stream/events_part_0000.jsonl"] = b"\n".join(events) + b"\nnot json\n"
    memory = MemoryEngine(DeltaLake)
    for name, first, second in (("a", memory, spark_engine), ("b", spark_engine, memory)):
        lake = tmp_path / name
        write_landing(landing, lake / "landing")
        layout = LakeLayout(lake)
        files = landing_events(layout.landing)
        usecases.run_batch(first, layout, RUN, SilentProgress(), files)
        before = {declared: table(lake, declared) for declared in COMPARED}
        # The other engine reruns every stage on the same tables (the plan is empty: the ledger
        # the first engine wrote says bronze mirrors the landing), then a forced backfill.
        for backfill in (False, True):
            stages = usecases.run_batch(second, layout, RUN, SilentProgress(), files, backfill)
            assert [r.stage for r in stages if r.skipped] == ([] if backfill else ["bronze_events"])
            for declared in COMPARED:
                got, want = table(lake, declared), before[declared]
                assert len(got) == len(want) and all(
                    _same(x, y) for x, y in zip(got, want, strict=True)
                ), f"{declared.id} changed when {second.name} reran what {first.name} wrote"
        keys = [row["quarantine_key"] for row in table(lake, QUARANTINE_EVENTS)]
        assert len(keys) == len(set(keys)) > 1  # merged into, never added to twice
        protocols = _protocols(lake)
        assert len(protocols) >= len(COMPARED)
        assert set(protocols.values()) == {(1, 2)}, protocols


def _as_json(row: Mapping[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def test_export_hands_every_mart_row_to_the_sink_exactly_once_one_call_per_partition(
    spark_engine: Any, tmp_path: Path
) -> None:
    from adapters.spark.storage import read_table
    from tests.test_spark_engine import sample_events

    landing = {**master_csvs()}
    events = [json.dumps(event).encode() for event in sample_events()]
    landing["usage_events_stream/events_part_0000.jsonl"] = b"\n".join(events[::2]) + b"\n"
    landing["usage_events_stream/events_part_0001.jsonl"] = b"\n".join(events[1::2]) + b"\n"
    write_landing(landing, tmp_path / "lake" / "landing")
    layout = LakeLayout(tmp_path / "lake")
    files = landing_events(layout.landing)
    usecases.run_batch(spark_engine, layout, RUN, SilentProgress(), files)
    mart = DAILY_USAGE.table
    stored = DeltaLake(layout).read_table(mart)
    partitions = read_table(spark_engine.spark, layout, mart).rdd.getNumPartitions()
    assert len({row["usage_date"] for row in stored}) > 1 and len(stored) > partitions > 1

    out = tmp_path / "exported"
    # The test sink lives in `tests`, which a Python worker started from another folder cannot
    # import (an installed sink, like the Cassandra one, can): ship its module by value.
    from pyspark import cloudpickle

    import tests.spark_fixtures

    cloudpickle.register_pickle_by_value(tests.spark_fixtures)
    try:
        handed = spark_engine.export(layout, mart, JsonLinesSink(str(out)))
    finally:
        cloudpickle.unregister_pickle_by_value(tests.spark_fixtures)

    calls = sorted(out.glob("*.jsonl"))
    exported = [line for call in calls for line in call.read_text().splitlines()]
    assert handed == len(exported) == len(stored)
    assert len(calls) == partitions
    assert sorted(exported) == sorted(_as_json(row) for row in stored)


@pytest.mark.slow
def test_a_dirty_generated_landing_gives_the_same_lake_in_both_engines(
    tmp_path: Path, spark_engine: Any
) -> None:
    from entrypoints.cli import main

    source = tmp_path / "generated"
    assert (
        main(
            ["generate", "--lake", str(source), "--seed", "3", "--scale", "0.05", "--dirty", "0.02"]
        )
        == 0
    )
    results = run_both(source / "landing", tmp_path / "lakes", spark_engine)
    assert_same_lakes(results, spark_engine)
    counts = usecases.merged_counts(results["spark"][1])
    assert counts["bronze_events.malformed"] > 0  # the dirt reached quarantine
    assert counts["silver.duplicates"] > 0


@pytest.mark.slow
def test_the_real_dataset_gives_the_same_lake_in_both_engines(
    real_landing: Path, tmp_path: Path, spark_engine: Any
) -> None:
    results = run_both(real_landing, tmp_path, spark_engine)
    assert_same_lakes(results, spark_engine)
    counts = usecases.merged_counts(results["spark"][1])
    assert counts["silver.silver_rows"] == 42_989
    assert counts["silver.quarantined"] == counts["silver.reason.cost_below_min"] == 211
    assert counts["gold.gold_rows"] == 11_050
    assert all(check.passed for check in usecases.reconcile(counts))
