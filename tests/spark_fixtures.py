"""One SparkSession for the whole test run (registered in conftest via `pytest_plugins`).

The session is started lazily by the first test that asks for `spark`, through the project's own
factory (so tests run with the settings `finops batch` uses), and stopped once at the end.
Tests that build engines or containers borrow it: nothing else starts or stops a session.
A Spark batch costs tens of seconds whatever the size of its landing, so a lake several tests
read is built once: the dirty generated landing through both engines is one such lake.
Also a picklable partition sink for `Engine.export` tests.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from finops_core.ports import RunContext, StageResult

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

RUN = RunContext(
    run_id="differential", started_at=dt.datetime(2025, 9, 1, 12, 0, tzinfo=dt.timezone.utc)
)
# name -> (the lake, the stages `usecases.run_batch` returned)
Lakes = dict[str, tuple[Path, list[StageResult]]]


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    pytest.importorskip("pyspark")
    from adapters.spark.session import SessionSettings, SparkSessions, java_executable

    if java_executable() is None:
        pytest.skip("Spark needs Java 17 and there is none")
    sessions = SparkSessions(SessionSettings(master="local[2]", shuffle_partitions=4))
    session = sessions.get()
    try:
        yield session
    finally:
        sessions.close()


def run_both(landing: Path, root: Path, spark_engine: Any) -> Lakes:
    """Copy `landing` into two lakes under `root` and run the batch layer with each engine."""
    from adapters.console import SilentProgress
    from adapters.lake.delta import DeltaLake
    from adapters.landing.manifest import landing_events
    from adapters.memory.engine import MemoryEngine
    from finops_core import usecases
    from finops_core.lake import LakeLayout

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


@pytest.fixture(scope="session")
def dirty_lakes(
    spark: SparkSession,
    dirty_landing: tuple[Path, dict[str, object]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Lakes:
    """The dirty generated landing after a batch (a backfill: no stream ran) with each engine,
    built once per session; tests only read these lakes."""
    from adapters.spark.engine import SparkEngine

    landing, _ = dirty_landing
    return run_both(landing, tmp_path_factory.mktemp("dirty-lakes"), SparkEngine(spark=spark))


@attrs.frozen
class JsonLinesSink:
    """A picklable `PartitionSink`: each call writes its rows to a new JSON Lines file in
    `folder` (keys sorted, dates as text) and returns how many it wrote."""

    folder: str

    def __call__(self, rows: Iterable[Mapping[str, object]]) -> int:
        lines = [json.dumps(dict(row), sort_keys=True, default=str) for row in rows]
        folder = Path(self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".{uuid.uuid4().hex}.tmp"
        staging.write_text("".join(f"{line}\n" for line in lines))
        staging.rename(folder / f"{uuid.uuid4().hex}.jsonl")
        return len(lines)
