"""The composition root: selectors pick the configured adapters, overrides replace them, and
resources are closed by `shutdown_resources()` (but a borrowed SparkSession never is)."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from dependency_injector import providers

from adapters.lake.delta import DeltaLake
from adapters.memory.engine import MemoryEngine
from adapters.memory.serving import InMemoryServingStore
from adapters.sqlite.serving import SqliteServingStore
from entrypoints import cli
from entrypoints.cli import build_parser
from entrypoints.config import SERVING_KINDS, Settings, cli_configuration
from entrypoints.containers import Container, build_container, container_for
from finops_core import usecases
from finops_core.errors import ConfigurationError, EngineUnavailable, ServingUnavailable
from finops_core.intake import IntakePlan, LandingFile
from finops_core.lake import LakeLayout
from finops_core.ports import PartitionSink, RunContext, StageResult
from finops_core.serving import DAILY_USAGE_BY_ORG
from finops_core.tables import Table

ENVIRONMENT = (
    "FINOPS_LAKE",
    "FINOPS_ENGINE",
    "FINOPS_SERVING",
    "SPARK_MASTER",
    "FINOPS_SHUFFLE_PARTITIONS",
    "FINOPS_VERBOSE",
    "CASSANDRA_CONTACT_POINTS",
    "CASSANDRA_KEYSPACE",
    "CASSANDRA_USERNAME",
    "CASSANDRA_PASSWORD",
    "ASTRA_DB_SECURE_BUNDLE_PATH",
    "ASTRA_DB_TOKEN",
    "ASTRA_DB_KEYSPACE",
)


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No FINOPS_*/CASSANDRA_*/ASTRA_* from the developer's shell and no ./cred.env."""
    monkeypatch.chdir(tmp_path)
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


class FakeEngine:
    """An engine that keeps the stages it ran, each returning fixed counts."""

    name = "fake"
    distributed = False

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.plans: list[IntakePlan] = []

    def _stage(self, stage: str, **counts: float) -> StageResult:
        self.ran.append(stage)
        return StageResult(stage, counts)

    def bronze_masters(self, lake: LakeLayout, run: RunContext) -> StageResult:
        return self._stage("bronze_masters")

    def bronze_events(self, lake: LakeLayout, run: RunContext, plan: IntakePlan) -> StageResult:
        self.plans.append(plan)
        return self._stage("bronze_events", landing_lines=3, bronze_rows=2, malformed=1)

    def silver(self, lake: LakeLayout, run: RunContext) -> StageResult:
        return self._stage("silver", bronze_rows=2, silver_rows=2, quarantined=0, duplicates=0)

    def gold(self, lake: LakeLayout, run: RunContext) -> StageResult:
        return self._stage("gold", gold_rows=1)

    def read_rows(self, lake: LakeLayout, table: Table) -> Iterator[dict[str, object]]:
        return iter(())

    def export(self, lake: LakeLayout, table: Table, sink: PartitionSink) -> int:
        return sink(iter(()))


class FakeCassandraSession:
    """Keeps every CQL statement it is given; its cluster remembers being shut down. Its
    cluster has the keyspaces in `keyspaces` (as the schema's keyspace check reads them)."""

    class Cluster:
        shut_down = False

        def shutdown(self) -> None:
            self.shut_down = True

    def __init__(self, keyspaces: tuple[str, ...] = ()) -> None:
        self.statements: list[str] = []
        self.cluster = self.Cluster()
        self.keyspaces = keyspaces

    def execute(self, statement: Any, parameters: object = None) -> list[Any]:
        self.statements.append(str(statement))
        if "FROM system_schema.keyspaces" in str(statement):
            return [SimpleNamespace(keyspace_name=name) for name in ("system", *self.keyspaces)]
        return []


def test_the_memory_engine_over_the_delta_lake_is_selected_by_configuration(
    tmp_path: Path,
) -> None:
    container = build_container(lake=tmp_path, engine="memory")
    engine = container.engine()
    assert isinstance(engine, MemoryEngine)
    assert engine is container.engine()  # a singleton
    assert container.layout() == LakeLayout(tmp_path)
    assert isinstance(container.lake(), DeltaLake)
    assert container.lake().layout == LakeLayout(tmp_path)


def test_the_engine_setting_comes_from_the_environment_when_no_flag_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINOPS_ENGINE", "memory")
    assert isinstance(build_container(lake=tmp_path).engine(), MemoryEngine)
    monkeypatch.setenv("FINOPS_ENGINE", "flink")
    with pytest.raises(ConfigurationError, match="FINOPS_ENGINE"):
        build_container(lake=tmp_path)


def test_the_container_gives_back_the_settings_it_was_built_from(tmp_path: Path) -> None:
    settings = Settings(lake=tmp_path / "lake", engine="memory", serving="memory")
    assert container_for(settings).settings() == settings


class FakeSparkSession:
    """Just enough of a SparkSession to be handed to the engine: keeps the conf it is given,
    and was started with Delta's extension and catalog (as the engine requires)."""

    class Conf(dict[str, str]):
        def set(self, key: str, value: str) -> None:
            self[key] = value

    def __init__(self) -> None:
        self.conf = self.Conf(
            {
                "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
                "spark.sql.catalog.spark_catalog": (
                    "org.apache.spark.sql.delta.catalog.DeltaCatalog"
                ),
            }
        )
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
        landing = [LandingFile("usage_events_stream/a.jsonl", "a.jsonl", 3, "aa")]
        results = usecases.run_batch(
            container.engine(), container.layout(), run, container.progress(), landing
        )
    assert fake.ran == ["bronze_masters", "bronze_events", "silver", "gold"]
    assert [plan.ingest for plan in fake.plans] == [tuple(landing)]  # the fake's ledger is empty
    checks = usecases.reconcile(usecases.merged_counts(results))
    assert [c.name for c in checks if c.passed] == [
        "landing lines = bronze rows + malformed + blank lines",
        "bronze = silver + quarantine + duplicates",
    ]
    assert not container.spark.initialized  # overriding the engine never started Spark


def test_the_table_reader_is_the_memory_engine_whatever_the_engine_setting(
    tmp_path: Path,
) -> None:
    container = build_container(lake=tmp_path, engine="spark")
    assert isinstance(container.table_reader(), MemoryEngine)
    assert not container.spark.initialized  # the audit reads tables without a JVM


def test_the_sqlite_store_lives_in_the_lake_and_is_closed_at_shutdown(tmp_path: Path) -> None:
    container = build_container(lake=tmp_path, engine="memory", serving="sqlite")
    store = container.serving()
    assert isinstance(store, SqliteServingStore)
    assert store.path == LakeLayout(tmp_path).serving_sqlite
    assert store.count(DAILY_USAGE_BY_ORG) == 0
    container.shutdown_resources()
    with pytest.raises(Exception, match="closed"):
        store.count(DAILY_USAGE_BY_ORG)


def test_a_read_only_container_never_creates_the_sqlite_store(tmp_path: Path) -> None:
    container = build_container(lake=tmp_path, serving="sqlite", read_only=True)
    with pytest.raises(ServingUnavailable, match="run `finops load` first"):
        container.serving()
    assert not LakeLayout(tmp_path).serving_sqlite.parent.exists()
    build_container(lake=tmp_path, serving="sqlite").serving().close()  # a load creates it
    reader = build_container(lake=tmp_path, serving="sqlite", read_only=True)
    assert reader.serving().count(DAILY_USAGE_BY_ORG) == 0
    reader.shutdown_resources()


def test_the_memory_store_is_selected_by_configuration(tmp_path: Path) -> None:
    assert isinstance(
        build_container(lake=tmp_path, serving="memory").serving(), InMemoryServingStore
    )


def _choices(parser: argparse.ArgumentParser, *path: str) -> tuple[str, ...] | None:
    """The choices of `--serving` of the sub-command at `path`."""
    for name in path:
        (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = sub.choices[name]
    (option,) = [a for a in parser._actions if "--serving" in a.option_strings]
    return tuple(option.choices) if option.choices is not None else None


def test_one_list_of_serving_kinds_for_the_settings_the_flags_and_the_selector(
    tmp_path: Path,
) -> None:
    container = build_container(lake=tmp_path)
    assert tuple(container.serving.providers) == SERVING_KINDS
    parser = build_parser()
    for path in (("load",), ("query", "q1"), ("query", "q2"), ("query", "q3")):
        assert _choices(parser, *path) == SERVING_KINDS
    for kind in SERVING_KINDS:  # each kind the settings accept has a store
        assert build_container(lake=tmp_path, serving=kind).settings().serving == kind
    with pytest.raises(ConfigurationError, match="sqlite, cassandra, astra, memory"):
        build_container(lake=tmp_path, serving="postgres")


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
    session = FakeCassandraSession(keyspaces=("finops_astra",))
    container.cassandra_session.override(providers.Object(session))
    store = container.serving()
    assert type(store).__name__ == "CassandraServingStore"
    keyspace = "finops_test" if kind == "cassandra" else "finops_astra"
    assert store.keyspace == keyspace  # type: ignore[attr-defined]
    assert store.kind == kind
    assert session.statements
    creates_keyspace = any("CREATE KEYSPACE" in s.upper() for s in session.statements)
    assert creates_keyspace is (kind == "cassandra")  # AstraDB keyspaces are made in its UI
    assert all(keyspace in s for s in session.statements if "system_schema" not in s)
    assert container.cassandra_settings().is_astra is (kind == "astra")
    container.shutdown_resources()


def test_an_astra_keyspace_that_does_not_exist_is_refused_before_any_ddl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "secure-connect.zip"
    bundle.write_bytes(b"zip")
    monkeypatch.setenv("ASTRA_DB_SECURE_BUNDLE_PATH", str(bundle))
    monkeypatch.setenv("ASTRA_DB_TOKEN", "AstraCS:secret")
    monkeypatch.setenv("ASTRA_DB_KEYSPACE", "not_made")
    container = build_container(lake=tmp_path, serving="astra")
    session = FakeCassandraSession(keyspaces=("other_one", "finops"))
    container.cassandra_session.override(providers.Object(session))
    with pytest.raises(ConfigurationError) as refused:
        container.serving()
    message = str(refused.value)
    assert "The keyspace not_made does not exist in AstraDB (secure bundle" in message
    assert "(keyspaces there: finops, other_one)" in message  # system keyspaces left out
    assert "AstraCS:secret" not in message
    assert [s for s in session.statements if "CREATE" in s.upper()] == []
    container.shutdown_resources()


def test_a_read_only_cassandra_store_applies_no_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASSANDRA_KEYSPACE", "finops_ro")
    container = build_container(lake=tmp_path, serving="cassandra", read_only=True)
    session = FakeCassandraSession(keyspaces=("finops_ro",))
    container.cassandra_session.override(providers.Object(session))
    store = container.serving()
    assert store.keyspace == "finops_ro"  # type: ignore[attr-defined]
    assert session.statements == ["SELECT keyspace_name FROM system_schema.keyspaces"]


def test_an_unreachable_cassandra_is_serving_unavailable_naming_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("cassandra")
    monkeypatch.setenv("CASSANDRA_CONTACT_POINTS", "127.0.0.1:1")
    container = build_container(lake=tmp_path, serving="cassandra")
    with pytest.raises(ServingUnavailable, match="127.0.0.1:1"):
        container.serving()
    container.shutdown_resources()


def test_the_cli_config_file_gives_the_settings_of_the_commands_container(
    tmp_path: Path,
) -> None:
    toml = tmp_path / "finops.toml"
    toml.write_text('engine = "memory"\nserving = "memory"\nshuffle_partitions = 3\n')
    args = build_parser().parse_args(["--config", str(toml), "batch", "--lake", str(tmp_path)])
    with cli_configuration(args) as settings:
        container = container_for(settings)
        assert settings.engine == "memory"  # a flag left out comes from the settings
        assert settings.lake == tmp_path  # a flag given wins
        assert container.settings().shuffle_partitions == 3
        assert isinstance(container.engine(), MemoryEngine)
        assert isinstance(container.serving(), InMemoryServingStore)
    assert build_container(lake=tmp_path).settings().engine == "spark"  # nothing is left behind


def test_every_command_module_is_imported_and_a_broken_one_fails_loudly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(sub.choices) == {name.rsplit(".", 1)[1] for name in cli.COMMAND_MODULES}
    monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "entrypoints.commands.nope"))
    with pytest.raises(ModuleNotFoundError, match="entrypoints.commands.nope"):
        build_parser()


def test_no_container_is_built_at_import_time() -> None:
    import entrypoints.containers as module

    assert not [value for value in vars(module).values() if isinstance(value, Container)]
    for name in ("entrypoints.cli", "entrypoints.app", "entrypoints.notebook"):
        imported = importlib.import_module(name)
        assert not [value for value in vars(imported).values() if isinstance(value, Container)]


def test_nothing_outside_the_container_builds_an_adapter() -> None:
    """Stores, engines, lakes and sessions are constructed in entrypoints/containers.py only."""
    root = Path(__file__).resolve().parents[1] / "entrypoints"
    constructors = (
        "SqliteServingStore(",
        "CassandraServingStore(",
        "InMemoryServingStore(",
        "MemoryEngine(",
        "SparkEngine(",
        "DeltaLake(",
        "SparkSessions(",
        "JsonRunLog(",
        "connect(",
    )
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "containers.py":
            continue
        text = path.read_text()
        found += [f"{path.name}: {name}" for name in constructors if name in text]
    assert found == []
    assert not (root / "serving_factory.py").exists()


@pytest.mark.spark
def test_a_borrowed_spark_session_is_not_stopped_by_shutdown(tmp_path: Path) -> None:
    session_module = pytest.importorskip("adapters.spark.session")
    foreign = session_module.SparkSessions(session_module.SessionSettings(master="local[1]"))
    session = foreign.get()  # somebody else's session, e.g. a notebook's
    try:
        container = build_container(lake=tmp_path, engine="spark")
        assert container.spark() is session
        assert container.engine().spark is session  # type: ignore[attr-defined]
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
