"""The same landing zone through the memory engine and the Spark engine gives the same lake.

Silver events, quarantine entries (key, reasons, raw, file, event id), gold rows, the master
tables and every stage count must agree: floats within math.isclose(rel 1e-9, abs 1e-9),
everything else exactly. Run ids and ingest times differ by design and are left out.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from adapters.lake.parquet import ParquetLake
from adapters.memory.engine import MemoryEngine
from finops_core import usecases
from finops_core.contracts import MASTER_SOURCES
from finops_core.lake import GOLD_DAILY, QUARANTINE_EVENTS, SILVER_EVENTS, LakeLayout
from finops_core.ports import RunContext, StageResult
from tests.strategies import landing_zones, write_landing

pytestmark = pytest.mark.spark

RUN = RunContext(
    run_id="differential", started_at=dt.datetime(2025, 9, 1, 12, 0, tzinfo=dt.timezone.utc)
)
GENERATED = ("run_id", "ingest_ts")  # provenance stamped by the run, not data


class SilentProgress:
    def stage_started(self, stage: str) -> None: ...

    def update(self, stage: str, message: str) -> None: ...

    def stage_finished(self, result: StageResult) -> None: ...


def run_both(
    landing: Path, root: Path, spark_engine: Any
) -> dict[str, tuple[Path, list[StageResult]]]:
    """Copy `landing` into two lakes and run the batch layer with each engine."""
    results = {}
    for name, engine in (("memory", MemoryEngine()), ("spark", spark_engine)):
        lake = root / name
        shutil.copytree(landing, lake / "landing")
        results[name] = (lake, usecases.run_batch(engine, LakeLayout(lake), RUN, SilentProgress()))
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


def table(lake: Path, layer: str, name: str) -> list[dict[str, Any]]:
    rows = ParquetLake(LakeLayout(lake)).read_table(layer, name)
    cleaned = [{k: v for k, v in row.items() if k not in GENERATED} for row in rows]
    return sorted(cleaned, key=_sort_key)


def assert_same_table(memory: Path, spark: Path, layer: str, name: str) -> None:
    expected, got = table(memory, layer, name), table(spark, layer, name)
    assert len(got) == len(expected), (
        f"{layer}/{name}: spark {len(got)} rows, memory {len(expected)}"
    )
    for want, have in zip(expected, got, strict=True):
        assert _same(want, have), f"{layer}/{name} differs:\n memory {want}\n spark  {have}"


def assert_same_lakes(results: dict[str, tuple[Path, list[StageResult]]]) -> None:
    memory, memory_stages = results["memory"]
    spark, spark_stages = results["spark"]
    for layer, name in (
        ("silver", SILVER_EVENTS),
        ("quarantine", QUARANTINE_EVENTS),
        ("gold", GOLD_DAILY),
    ):
        assert_same_table(memory, spark, layer, name)
    for contract in MASTER_SOURCES:
        assert_same_table(memory, spark, "bronze", contract.name)
        assert_same_table(memory, spark, "silver", contract.name)
    for want, have in zip(memory_stages, spark_stages, strict=True):
        assert want.stage == have.stage
        assert _same(dict(want.counts), {k: v for k, v in have.counts.items()}), (
            f"{want.stage} counts differ:\n memory {dict(want.counts)}\n spark  {dict(have.counts)}"
        )
    gold = {(row.org_id, row.usage_date, row.service) for row in ParquetLakeGold(spark)}
    assert len(gold) == len(table(spark, "gold", GOLD_DAILY))


def ParquetLakeGold(lake: Path) -> list[Any]:  # noqa: N802 - reads like the table it returns
    from adapters.lake.gold import read_gold_rows

    return list(read_gold_rows(LakeLayout(lake)))


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
        assert_same_lakes(run_both(root / "landing", root / "lakes", spark_engine))


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
    assert_same_lakes(results)
    counts = usecases.merged_counts(results["spark"][1])
    assert counts["bronze_events.malformed"] > 0  # the dirt reached quarantine
    assert counts["silver.duplicates"] > 0


@pytest.mark.slow
def test_the_real_dataset_gives_the_same_lake_in_both_engines(
    real_landing: Path, tmp_path: Path, spark_engine: Any
) -> None:
    results = run_both(real_landing, tmp_path, spark_engine)
    assert_same_lakes(results)
    counts = usecases.merged_counts(results["spark"][1])
    assert counts["silver.silver_rows"] == 42_989
    assert counts["silver.quarantined"] == counts["silver.reason.cost_below_min"] == 211
    assert counts["gold.gold_rows"] == 11_050
    assert all(check.passed for check in usecases.reconcile(counts))
