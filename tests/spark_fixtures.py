"""One SparkSession for the whole test run (registered in conftest via `pytest_plugins`).

The session is started lazily by the first test that asks for `spark`, through the project's own
factory (so tests run with the settings `finops batch` uses), and stopped once at the end.
Tests that build engines or containers borrow it: nothing else starts or stops a session.
Also a picklable partition sink for `Engine.export` tests.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


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
