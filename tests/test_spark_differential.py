"""The same landing zone through the memory engine and the Spark engine gives the same lake.

Every table is a Delta table, read back here with the `deltalake` package: bronze events, the
ledger, silver events, quarantine entries (key, reasons, raw, file, event id), every mart, the
master tables and every stage count must agree: floats within math.isclose(rel 1e-9, abs 1e-9),
everything else exactly. Run ids and ingest times differ by design and are left out. Both
engines also read the mart back (`Engine.read_rows`) as the same rows, and
the Spark engine's `export` hands every mart row to a sink exactly once.

A Spark batch costs the same for one small landing as for hundreds, so the Hypothesis-generated
landings are drawn first and go through each engine together, each in files of its own, and a
lake several tests read (the sample, the dirty and the real landing's) is built once.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from adapters.console import SilentProgress
from adapters.lake.delta import DeltaLake
from adapters.landing.manifest import landing_events
from adapters.memory.engine import MemoryEngine
from entrypoints.cli import main
from finops_core import usecases
from finops_core.anomaly import COST_ANOMALIES
from finops_core.gold import GOLD_TABLES
from finops_core.lake import LakeLayout
from finops_core.marts import DAILY_USAGE, MARTS, REVENUE, TICKETS, rows_count
from finops_core.tables import (
    BRONZE_EVENTS,
    BRONZE_MASTERS,
    LANDING_FILES,
    QUARANTINE_EVENTS,
    SILVER_EVENTS,
    SILVER_MASTERS,
    Table,
)
from tests.spark_fixtures import RUN, JsonLinesSink, Lakes, run_both
from tests.strategies import (
    ORG_IDS,
    QUOTED_NAME,
    RESOURCES,
    MasterRows,
    drawn,
    drawn_master_rows,
    event_files,
    master_csvs,
    master_files,
    merged_master_rows,
    write_landing,
)
from tests.test_drawn_masters import mart_reconciliations
from tests.values import bronze_values

pytestmark = pytest.mark.spark

GENERATED = ("run_id", "ingest_ts")  # provenance stamped by the run, not data
COMPARED: tuple[Table, ...] = (
    BRONZE_EVENTS,
    LANDING_FILES,
    SILVER_EVENTS,
    QUARANTINE_EVENTS,
    *GOLD_TABLES,
    *(table for name in BRONZE_MASTERS for table in (BRONZE_MASTERS[name], SILVER_MASTERS[name])),
)


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


def assert_same_rows_read(results: Lakes, spark_engine: Any) -> None:
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


def assert_same_lakes(results: Lakes, spark_engine: Any) -> None:
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


# ---- Hypothesis-generated landings --------------------------------------------------------------


def generated_landing_count() -> int:
    """Landings per run, each drawn by Hypothesis (the simplest, one empty events file, first):
    the profile's number of examples (200 in CI). 200 landings cost the Spark engine what 50
    do (27 s and 30 s a run on 2 cores): its time goes per stage, not per line."""
    return settings().max_examples


def merged_landing(
    examples: list[dict[str, bytes]], masters: Sequence[MasterRows] = ()
) -> dict[str, bytes]:
    """One landing: the strategies' masters (with every drawn master set's invoices and tickets,
    as `merged_master_rows` merges them, written in the `QUIRKY_CSV` forms, when `masters` are
    given) and every example's events
    files, example n's `events_part_0001.jsonl` renamed `events_part_<n>_0001.jsonl` (its files
    keep their order)."""
    landing = master_files(merged_master_rows(masters), quirky=True) if masters else master_csvs()
    for number, files in enumerate(examples):
        for relative, content in files.items():
            landing[relative.replace("events_part_", f"events_part_{number:03d}_", 1)] = content
    return landing


def test_generated_landing_zones_give_the_same_lake_in_both_engines(
    spark_engine: Any, tmp_path: Path
) -> None:
    examples = drawn(event_files(max_files=3, max_lines=25), generated_landing_count())
    masters = drawn(drawn_master_rows(), generated_landing_count())
    landing = merged_landing(examples, masters)
    assert len(landing) - len(master_csvs()) == sum(len(files) for files in examples)
    write_landing(landing, tmp_path / "landing")
    results = run_both(tmp_path / "landing", tmp_path / "lakes", spark_engine)
    try:
        assert_same_lakes(results, spark_engine)
    except AssertionError as error:
        error.add_note(
            f"{len(examples)} generated landings, example n in events_part_<n>_*.jsonl and "
            f"in the masters' ids ending _<n>, are kept in {tmp_path / 'landing'}"
        )
        raise
    counts = usecases.merged_counts(results["spark"][1])
    assert counts["bronze_events.malformed"] > 0 and counts["silver.duplicates"] > 0
    assert counts["bronze_events.blank_lines"] > 0  # BOM, CRLF and blank-lined files were drawn
    assert counts["silver.quarantined"] > 0 and counts["gold.gold_rows"] > 0
    assert_the_drawn_masters_reached_the_marts(results["spark"][0], masters)
    failed = [check for check in mart_reconciliations(counts) if not check.passed]
    assert failed == []


def assert_the_drawn_masters_reached_the_marts(lake: Path, masters: Sequence[MasterRows]) -> None:
    """Every drawn invoice and ticket is a silver row, and the drawing did not degenerate:
    credit notes, USD invoices (rates forced to 1 among them) and others, critical and open
    tickets, several tickets of one organisation, day and severity."""
    for name in ("billing_monthly", "support_tickets"):
        drawn_rows = sum(len(example[name]) for example in masters)
        assert len(table(lake, SILVER_MASTERS[name])) == drawn_rows > 50, name
    # The quirky CSV forms (BOM, CRLF, blank lines, a quoted line break) lost or added no row.
    orgs = table(lake, SILVER_MASTERS["customers_orgs"])
    assert QUOTED_NAME in {row["org_name"] for row in orgs} and len(orgs) == len(ORG_IDS)
    assert len(table(lake, SILVER_MASTERS["resources"])) == len(RESOURCES)
    assert len(table(lake, SILVER_MASTERS["users"])) == len(ORG_IDS)
    revenue = table(lake, REVENUE.table)
    assert len(revenue) > 50
    assert sum(row["credit_note"] for row in revenue) > 5
    assert sum(row["usd_rate_forced"] for row in revenue) > 5
    assert {"USD", "EUR", "ARS"} <= {row["currency"] for row in revenue}
    assert sum(row["invoice_count"] for row in revenue) == len(revenue)
    tickets = table(lake, TICKETS.table)
    assert sum(row["tickets"] for row in tickets if row["severity"] == "critical") > 5
    assert sum(row["open_tickets"] for row in tickets) > 5
    assert max(row["tickets"] for row in tickets) > 1
    assert sum(row["sla_breached"] for row in tickets) > 0
    assert sum(row["csat_responses"] for row in tickets) > 0


def test_a_landing_of_one_empty_events_file_gives_the_same_empty_lake_in_both_engines(
    spark_engine: Any, tmp_path: Path
) -> None:
    """The simplest generated landing, once its own lake: every events table is empty."""
    landing = {**master_csvs(), "usage_events_stream/events_part_0000.jsonl": b""}
    write_landing(landing, tmp_path / "landing")
    results = run_both(tmp_path / "landing", tmp_path / "lakes", spark_engine)
    assert_same_lakes(results, spark_engine)
    for declared in (BRONZE_EVENTS, SILVER_EVENTS, QUARANTINE_EVENTS, DAILY_USAGE.table):
        assert table(results["spark"][0], declared) == [], declared.id
    assert len(table(results["spark"][0], LANDING_FILES)) == 1


# ---- a fixed sample landing ---------------------------------------------------------------------


def sample_landing() -> dict[str, bytes]:
    """The strategies' masters and `sample_events` in two files, the first ending in a line
    that is not JSON."""
    from tests.test_spark_engine import sample_events

    events = [json.dumps(event).encode() for event in sample_events()]
    return {
        **master_csvs(),
        "usage_events_stream/events_part_0000.jsonl": b"\n".join(events[::2]) + b"\nnot json\n",
        "usage_events_stream/events_part_0001.jsonl": b"\n".join(events[1::2]) + b"\n",
    }


@pytest.fixture(scope="module")
def spark_sample_lake(spark_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample landing after a Spark batch; tests that write copy it first."""
    lake = tmp_path_factory.mktemp("sample") / "lake"
    write_landing(sample_landing(), lake / "landing")
    layout = LakeLayout(lake)
    usecases.run_batch(spark_engine, layout, RUN, SilentProgress(), landing_events(layout.landing))
    return lake


def test_the_spark_engine_with_the_master_tables_built_on_the_driver_gives_the_same_lake(
    spark: Any, tmp_path: Path
) -> None:
    """As the container composes it: the memory engine's master stages, Spark's events."""
    from adapters.spark.engine import SparkEngine

    composed = SparkEngine(spark=spark, masters=MemoryEngine(DeltaLake))
    write_landing(sample_landing(), tmp_path / "landing")
    results = run_both(tmp_path / "landing", tmp_path / "lakes", composed)
    assert_same_lakes(results, composed)
    counts = usecases.merged_counts(results["spark"][1])
    assert counts["bronze_masters.customers_orgs_rows"] > 0
    assert counts["silver.silver_rows"] > 0 and counts["bronze_events.malformed"] == 1


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
    spark_engine: Any, spark_sample_lake: Path, tmp_path: Path
) -> None:
    memory = MemoryEngine(DeltaLake)
    lakes = {"a": tmp_path / "a", "b": tmp_path / "b"}
    write_landing(sample_landing(), lakes["a"] / "landing")
    layout = LakeLayout(lakes["a"])
    usecases.run_batch(memory, layout, RUN, SilentProgress(), landing_events(layout.landing))
    shutil.copytree(spark_sample_lake, lakes["b"])  # what the Spark engine wrote first
    for name, first, second in (("a", memory, spark_engine), ("b", spark_engine, memory)):
        lake = lakes[name]
        layout = LakeLayout(lake)
        files = landing_events(layout.landing)
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
    spark_engine: Any, spark_sample_lake: Path, tmp_path: Path
) -> None:
    from adapters.spark.storage import read_table

    layout = LakeLayout(spark_sample_lake)
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


# ---- the dirty generated landing and the real dataset -------------------------------------------


@pytest.mark.slow
def test_a_dirty_generated_landing_gives_the_same_lake_in_both_engines(
    dirty_lakes: Lakes, spark_engine: Any
) -> None:
    assert_same_lakes(dirty_lakes, spark_engine)
    counts = usecases.merged_counts(dirty_lakes["spark"][1])
    assert counts["bronze_events.malformed"] > 0  # the dirt reached quarantine
    assert counts["silver.duplicates"] > 0


@pytest.fixture(scope="module")
def real_lakes(
    real_landing: Path, spark_engine: Any, tmp_path_factory: pytest.TempPathFactory
) -> Lakes:
    """The real dataset after a batch with each engine (built once; tests that write copy)."""
    return run_both(real_landing, tmp_path_factory.mktemp("real-lakes"), spark_engine)


@pytest.mark.slow
def test_the_real_dataset_gives_the_same_lake_in_both_engines(
    real_lakes: Lakes, spark_engine: Any
) -> None:
    assert_same_lakes(real_lakes, spark_engine)
    counts = usecases.merged_counts(real_lakes["spark"][1])
    assert counts["silver.silver_rows"] == 42_989
    assert counts["silver.quarantined"] == counts["silver.reason.cost_below_min"] == 211
    assert counts["gold.gold_rows"] == 11_050
    # The figures of the other marts on the real data.
    assert counts[f"gold.{rows_count(REVENUE)}"] == 240
    assert counts[f"gold.{rows_count(TICKETS)}"] == 984
    assert counts[f"gold.{COST_ANOMALIES.name}_rows"] == 11_050  # one scored row per gold row
    tickets = table(real_lakes["spark"][0], TICKETS.table)
    assert sum(row["tickets"] for row in tickets) == 1_000
    assert sum(row["sla_breached"] for row in tickets) == 95
    assert sum(row["tickets"] for row in tickets if row["severity"] == "critical") == 56
    checks = usecases.reconcile(counts)
    assert all(check.passed for check in checks), [c for c in checks if not c.passed]
    assert {f"{mart.name}: source rows kept = rows counted" for mart in MARTS[1:]} <= {
        check.name for check in checks
    }


@pytest.mark.slow
def test_a_rerun_of_finops_batch_leaves_gold_and_quarantine_unchanged(
    spark: Any, real_lakes: Lakes, tmp_path: Path
) -> None:
    """`finops batch --engine spark`, in this process, over a copy of the real dataset's Spark
    lake (its first batch is the one above)."""
    real_lake = tmp_path / "lake"
    shutil.copytree(real_lakes["spark"][0], real_lake)
    lake = DeltaLake(LakeLayout(real_lake))
    quarantine = lake.read_table(QUARANTINE_EVENTS)
    gold = sorted(lake.read_table(DAILY_USAGE.table), key=repr)
    silver_rows = len(lake.read_table(SILVER_EVENTS))
    assert len(quarantine) == 211 and silver_rows == 42_989 and len(gold) == 11_050

    assert main(["batch", "--engine", "spark", "--lake", str(real_lake)]) == 0
    again = lake.read_table(QUARANTINE_EVENTS)
    assert len(again) == len(quarantine)
    assert sorted(str(row["quarantine_key"]) for row in again) == sorted(
        str(row["quarantine_key"]) for row in quarantine
    )
    assert sorted(lake.read_table(DAILY_USAGE.table), key=repr) == gold
    assert (
        spark.range(2).count() == 2
    )  # the CLI borrowed the test run's session and left it running
