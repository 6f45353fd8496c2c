"""One SparkSession for the whole test run (registered in conftest via `pytest_plugins`).

The session is started lazily by the first test that asks for `spark`, through the project's own
factory (so tests run with the settings `finops batch` uses), and stopped once at the end.
Tests that build engines or containers borrow it: nothing else starts or stops a session.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

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
