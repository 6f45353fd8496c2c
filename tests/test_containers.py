"""The composition root: selectors pick the configured adapters, overrides replace them, and
resources are closed by `shutdown_resources()` (but a borrowed SparkSession never is)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers

from adapters.memory.engine import MemoryEngine
from adapters.memory.serving import InMemoryServingStore
from adapters.sqlite.serving import SqliteServingStore
from entrypoints.cli import build_parser
from entrypoints.config import cli_configuration
from entrypoints.containers import Container, build_container
from finops_core import usecases
from finops_core.errors import ConfigurationError, EngineUnavailable, ServingUnavailable
from finops_core.lake import LakeLayout
from finops_core.ports import RunContext, StageResult


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No FINOPS_*/CASSANDRA_* from the developer's shell and no ./cred.env."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "FINOPS_LAKE",
        "FINOPS_ENGINE",
        "FINOPS_SERVING",
        "SPARK_MASTER",
        "FINOPS_SHUFFLE_PARTITIONS",
        "FINOPS_VERBOSE",
        "CASSANDRA_CONTACT_POINTS",
        "CASSANDRA_KEYSPACE",
    ):
        monkeypatch.delenv(name, raising=False)


class FakeEngine:
    """An engine that keeps the stages it ran, each returning fixed counts."""

    name = "fake"

    def __init__(self) -> None:
        self.ran: list[str] = []

    def _stage(self, stage: str, **counts: float) -> StageResult:
        self.ran.append(stage)
        return StageResult(stage, counts)

    def bronze_masters(self, lake: LakeLayout, run: RunContext) -> StageResult:
        return self._stage("bronze_masters")

    def has_bronze_events(self, lake: LakeLayout) -> bool:
        return False

    def bronze_events(self, lake: LakeLayout, run: RunContext) -> StageResult:
        return self._stage("bronze_events", landing_lines=3, bronze_rows=2, malformed=1)

    def silver(self, lake: LakeLayout, run: RunContext) -> StageResult:
        return self._stage("silver", bronze_rows=2, silver_rows=2, quarantined=0, duplicates=0)

    def gold(self, lake: LakeLayout, run: RunContext) -> StageResult:
        return self._stage("gold", gold_rows=1)

    def read_gold(self, lake: LakeLayout) -> Iterator[Any]:
        return iter(())


class FakeCassandraSession:
    """Keeps every CQL statement it is given; its cluster remembers being shut down."""

    class Cluster:
        shut_down = False

        def shutdown(self) -> None:
            self.shut_down = True

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.cluster = self.Cluster()

    def execute(self, statement: str, parameters: object = None) -> None:
        self.statements.append(statement)


def test_the_memory_engine_is_selected_by_configuration(tmp_path: Path) -> None:
    container = build_container(lake=tmp_path, engine="memory")
    assert isinstance(container.engine(), MemoryEngine)
    assert container.engine() is container.engine()  # a singleton
    assert container.layout() == LakeLayout(tmp_path)


def test_the_engine_setting_comes_from_the_environment_when_no_flag_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINOPS_ENGINE", "memory")
    assert isinstance(build_container(lake=tmp_path).engine(), MemoryEngine)
    monkeypatch.setenv("FINOPS_ENGINE", "flink")
    with pytest.raises(ConfigurationError, match="FINOPS_ENGINE"):
        build_container(lake=tmp_path)


class FakeSparkSession:
    """Just enough of a SparkSession to be handed to the engine: keeps the conf it is given."""

    class Conf(dict[str, str]):
        def set(self, key: str, value: str) -> None:
            self[key] = value

    def __init__(self) -> None:
        self.conf = self.Conf()
        self.sparkContext = object()


def test_the_spark_engine_gets_the_containers_session(tmp_path: Path) -> None:
    pytest.importorskip("adapters.spark.engine")
    container = build_container(lake=tmp_path, engine="spark", spark_master="local[1]")
    borrowed = FakeSparkSession()
    container.spark.override(providers.Object(borrowed))
    engine = container.engine()
    assert type(engine).__name__ == "SparkEngine"
    assert engine.spark is borrowed  # type: ignore[attr-defined]
    assert borrowed.conf["spark.sql.session.timeZone"] == "UTC"


def test_without_the_spark_adapter_the_spark_engine_is_unavailable_not_a_traceback(
    tmp_path: Path,
) -> None:
    try:
        import adapters.spark.engine  # noqa: F401
    except ModuleNotFoundError:
        container = build_container(lake=tmp_path, engine="spark")
        container.spark.override(providers.Object(object()))
        with pytest.raises(EngineUnavailable, match="--engine memory"):
            container.engine()
    else:
        pytest.skip("the Spark adapter is installed")


def test_an_overridden_engine_is_the_one_the_batch_use_case_runs(tmp_path: Path) -> None:
    container = build_container(lake=tmp_path, engine="spark")
    fake = FakeEngine()
    with container.engine.override(providers.Object(fake)):
        run = RunContext("r1", dt.datetime(2025, 7, 1, tzinfo=dt.timezone.utc))
        results = usecases.run_batch(
            container.engine(), container.layout(), run, container.progress()
        )
    assert fake.ran == ["bronze_masters", "bronze_events", "silver", "gold"]
    checks = usecases.reconcile(usecases.merged_counts(results))
    assert [c.name for c in checks if c.passed] == [
        "landing lines = bronze rows + malformed",
        "bronze = silver + quarantine + duplicates",
    ]
    assert not container.spark.initialized  # overriding the engine never started Spark


def test_the_sqlite_store_lives_in_the_lake_and_is_closed_at_shutdown(tmp_path: Path) -> None:
    container = build_container(lake=tmp_path, engine="memory", serving="sqlite")
    store = container.serving()
    assert isinstance(store, SqliteServingStore)
    assert store.path == LakeLayout(tmp_path).serving_sqlite
    assert store.row_count() == 0
    container.shutdown_resources()
    with pytest.raises(Exception, match="closed"):
        store.row_count()


def test_the_memory_store_is_selected_by_configuration(tmp_path: Path) -> None:
    assert isinstance(
        build_container(lake=tmp_path, serving="memory").serving(), InMemoryServingStore
    )


@pytest.mark.parametrize("kind", ["cassandra", "astra"])
def test_cassandra_and_astra_build_the_cassandra_store_over_the_session_resource(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    bundle = tmp_path / "secure-connect.zip"
    bundle.write_bytes(b"zip")
    monkeypatch.setenv("CASSANDRA_KEYSPACE", "finops_test")
    monkeypatch.setenv("ASTRA_DB_SECURE_BUNDLE_PATH", str(bundle))
    monkeypatch.setenv("ASTRA_DB_TOKEN", "AstraCS:secret")
    monkeypatch.setenv("ASTRA_DB_KEYSPACE", "finops_astra")
    container = build_container(lake=tmp_path, serving=kind)
    session = FakeCassandraSession()
    container.cassandra_session.override(providers.Object(session))
    store = container.serving()
    assert type(store).__name__ == "CassandraServingStore"
    keyspace = "finops_test" if kind == "cassandra" else "finops_astra"
    assert store.keyspace == keyspace  # type: ignore[attr-defined]
    creates_keyspace = any("CREATE KEYSPACE" in s.upper() for s in session.statements)
    assert creates_keyspace is (kind == "cassandra")  # AstraDB keyspaces are made in its UI
    assert all(keyspace in s for s in session.statements)
    assert container.cassandra_settings().is_astra is (kind == "astra")


def test_an_unreachable_cassandra_is_serving_unavailable_naming_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("cassandra")
    monkeypatch.setenv("CASSANDRA_CONTACT_POINTS", "127.0.0.1:1")
    container = build_container(lake=tmp_path, serving="cassandra")
    with pytest.raises(ServingUnavailable, match="127.0.0.1:1"):
        container.serving()
    container.shutdown_resources()


def test_the_cli_config_file_reaches_containers_built_while_the_command_runs(
    tmp_path: Path,
) -> None:
    toml = tmp_path / "finops.toml"
    toml.write_text('engine = "memory"\nserving = "memory"\nshuffle_partitions = 3\n')
    args = build_parser().parse_args(["--config", str(toml), "batch", "--lake", str(tmp_path)])
    with cli_configuration(args, ["--config", str(toml), "batch"]):
        container = build_container(lake=args.lake)
        assert args.engine == "memory"  # a flag left out is filled from the settings
        assert container.settings().shuffle_partitions == 3
        assert isinstance(container.engine(), MemoryEngine)
    assert build_container(lake=tmp_path).settings().engine == "spark"  # not after the command


def test_no_container_is_built_at_import_time() -> None:
    import entrypoints.containers as module

    assert not [value for value in vars(module).values() if isinstance(value, Container)]


@pytest.mark.spark
def test_a_borrowed_spark_session_is_not_stopped_by_shutdown(tmp_path: Path) -> None:
    session_module = pytest.importorskip("adapters.spark.session")
    foreign = session_module.SparkSessions(session_module.SessionSettings(master="local[1]"))
    session = foreign.get()  # somebody else's session, e.g. a notebook's
    try:
        container = build_container(lake=tmp_path, engine="spark")
        assert container.spark() is session
        container.shutdown_resources()
        from pyspark.sql import SparkSession

        assert session.range(3).count() == 3  # still alive
        assert SparkSession.getActiveSession() is session
    finally:
        foreign.close()


@pytest.mark.spark
def test_a_spark_session_the_container_created_is_stopped_by_shutdown(tmp_path: Path) -> None:
    pyspark_sql = pytest.importorskip("pyspark.sql")
    if pyspark_sql.SparkSession.getActiveSession() is not None:
        pytest.skip("another test's SparkSession is active")
    container = build_container(
        lake=tmp_path, engine="spark", spark_master="local[1]", shuffle_partitions=3
    )
    session = container.spark()
    assert session.conf.get("spark.sql.shuffle.partitions") == "3"
    container.shutdown_resources()
    assert pyspark_sql.SparkSession.getActiveSession() is None
