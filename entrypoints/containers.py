"""The composition root: the one place where adapters are chosen and built.

Every command and notebook helper gets its engine, lake, serving store, Spark session, clock,
progress and run log from a `Container`. Settings reach the adapters as explicit arguments taken
from the container's configuration (an adapter never reads the environment).

Nothing here runs at import time: `container_for(settings)` (or `build_container(...)`, which
loads the settings first) returns a fresh container; `container.shutdown_resources()` closes what
it opened (a SparkSession it created, a Cassandra session, the SQLite connection) and leaves alone
what it only borrowed (a notebook's SparkSession).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dependency_injector import containers, providers

from adapters.clock import SystemClock
from adapters.console import ConsoleProgress
from adapters.flock import FlockLakeLock
from adapters.runlog import JsonRunLog
from entrypoints.config import SERVING_KINDS, Settings, load_settings, setting_names
from entrypoints.output import is_terminal, no_color
from finops_core.errors import EngineUnavailable, FinopsError, ServingUnavailable
from finops_core.lake import LakeLayout

if TYPE_CHECKING:
    from adapters.cassandra.settings import CassandraSettings
    from adapters.memory.engine import MemoryEngine
    from finops_core.ports import Engine, Lake, MasterStages, Progress, ServingStore

# -- settings ----------------------------------------------------------------------------------


def _settings(values: Mapping[str, Any]) -> Settings:
    """The Settings value back from the configuration's plain values."""
    chosen = {name: values[name] for name in setting_names()}
    chosen["lake"] = Path(chosen["lake"])
    return Settings(**chosen)


def _layout(lake: str) -> LakeLayout:
    return LakeLayout(Path(lake))


# -- progress ----------------------------------------------------------------------------------


def progress_display(detail: bool) -> Iterator[Progress]:
    """Resource: where long work reports. On an interactive terminal (stderr is one, TERM not
    "dumb") a live line per running stage (Rich), without colour under NO_COLOR, erased at
    shutdown if a stage is still running (a failed or interrupted command); elsewhere (a pipe, a
    CI log) plain lines. Both print the same line when a stage finishes."""
    lines = ConsoleProgress(detail=detail)
    if not is_terminal(sys.stderr):
        yield lines
        return
    from adapters.rich.progress import RichProgress

    live = RichProgress(lines, no_color=no_color(), redirect_stdout=is_terminal(sys.stdout))
    try:
        yield live
    finally:
        live.close()


# -- Spark -------------------------------------------------------------------------------------


def spark_session(master: str, shuffle_partitions: int, verbose: bool) -> Iterator[Any]:
    """Resource: the active SparkSession (a notebook's, borrowed) or a new one (owned), from the
    session factory; at shutdown the factory stops it only if it started it."""
    try:
        from adapters.spark.session import SessionSettings, SparkSessions
    except ModuleNotFoundError as error:
        raise _spark_missing(error) from None
    sessions = SparkSessions(
        SessionSettings(master=master, verbose=verbose, shuffle_partitions=shuffle_partitions)
    )
    try:
        try:
            session = sessions.get()
        except ModuleNotFoundError as error:
            raise _spark_missing(error) from None
        yield session
    finally:
        sessions.close()


def _spark_missing(error: ModuleNotFoundError) -> Exception:
    """EngineUnavailable when Spark itself (pyspark, the adapter) is not installed."""
    if error.name and error.name.startswith(("adapters.spark", "pyspark", "py4j")):
        return EngineUnavailable(
            f"The Spark engine is not available in this installation (no module {error.name}); "
            "install pyspark or use --engine memory."
        )
    return error


# -- the lake and the engines ------------------------------------------------------------------


def _delta_lake(layout: LakeLayout) -> Lake:
    from adapters.lake.delta import DeltaLake

    return DeltaLake(layout)


def _memory_engine() -> MemoryEngine:
    """The pure-Python engine over the Delta lake (the same tables the Spark engine writes)."""
    from adapters.lake.delta import DeltaLake
    from adapters.memory.engine import MemoryEngine

    return MemoryEngine(DeltaLake)


def _spark_engine(session: Any, masters: MasterStages) -> Engine:
    """The Spark engine over the container's session (which the engine never stops), its master
    tables built on the driver by `masters` (the memory engine): on the real dataset a batch's
    master stages take well under a second that way, against 21-26 s of Spark jobs (the targets
    benchmark)."""
    try:
        from adapters.spark.engine import SparkEngine
    except ModuleNotFoundError as error:
        raise _spark_missing(error) from None

    return SparkEngine(spark=session, masters=masters)


# -- serving stores ----------------------------------------------------------------------------


def _sqlite_store(layout: LakeLayout, read_only: bool) -> Iterator[ServingStore]:
    """Resource: the SQLite file in the lake; read-only commands never create it."""
    from adapters.sqlite.serving import SqliteServingStore

    store = SqliteServingStore(layout.serving_sqlite, create_schema=not read_only)
    try:
        yield store
    finally:
        store.close()


def _memory_store() -> ServingStore:
    from adapters.memory.serving import InMemoryServingStore

    return InMemoryServingStore()


def _cassandra_settings(settings: Settings) -> CassandraSettings:
    return settings.cassandra()


def cassandra_session(settings: CassandraSettings) -> Iterator[Any]:
    """Resource: a driver session and its Cluster, shut down at container shutdown."""
    from adapters.cassandra.session import close_session, connect

    session = connect(settings)
    try:
        yield session
    finally:
        close_session(session)


def _cassandra_store(session: Any, settings: CassandraSettings, read_only: bool) -> ServingStore:
    """The Cassandra (or AstraDB) store over the session resource; loads apply the schema
    (idempotent DDL), read-only commands do not."""
    from adapters.cassandra.schema import apply_schema, require_keyspace
    from adapters.cassandra.serving import CassandraServingStore

    try:
        if settings.is_astra or read_only:
            require_keyspace(session, settings.keyspace, settings.hosts, astra=settings.is_astra)
        if not read_only:
            apply_schema(
                session,
                settings.keyspace,
                create_keyspace=not settings.is_astra,
                replication=settings.replication,
            )
    except FinopsError:
        raise
    except Exception as error:
        raise ServingUnavailable(
            f"Cassandra at {settings.hosts} did not accept the serving schema "
            f"({type(error).__name__}: {error})."
        ) from None
    return CassandraServingStore(session, settings.keyspace, settings=settings)


def _serving_stores(
    sqlite: providers.Provider[Any],
    cassandra: providers.Provider[Any],
    memory: providers.Provider[Any],
) -> dict[str, providers.Provider[Any]]:
    """One provider per serving kind, keyed by `config.SERVING_KINDS` (the one list of kinds the
    settings, the `--serving` choices and this selector share)."""
    stores = {"sqlite": sqlite, "cassandra": cassandra, "astra": cassandra, "memory": memory}
    if tuple(stores) != SERVING_KINDS:
        raise AssertionError(f"serving providers {tuple(stores)} != {SERVING_KINDS}")
    return stores


# -- the container -----------------------------------------------------------------------------


class Container(containers.DeclarativeContainer):
    """Configuration keys: every setting of `entrypoints.config.Settings`, plus `read_only`
    (True for commands that only read the serving store)."""

    config = providers.Configuration(strict=True)
    settings = providers.Singleton(_settings, config)

    layout = providers.Singleton(_layout, config.lake)
    lake = providers.Singleton(_delta_lake, layout)
    clock = providers.Singleton(SystemClock)
    progress = providers.Resource(progress_display, detail=config.verbose)
    run_log = providers.Singleton(lambda layout: JsonRunLog(layout.runs), layout)
    lake_lock = providers.Singleton(lambda layout: FlockLakeLock(layout.root), layout)

    spark = providers.Resource(
        spark_session,
        master=config.spark_master,
        shuffle_partitions=config.shuffle_partitions,
        verbose=config.verbose,
    )
    memory_engine = providers.Singleton(_memory_engine)
    engine = providers.Selector(
        config.engine,
        memory=memory_engine,
        spark=providers.Singleton(_spark_engine, session=spark, masters=memory_engine),
    )
    # What reads tables where no JVM is wanted (the audit), whatever the `engine` setting.
    table_reader = memory_engine

    cassandra_settings = providers.Singleton(_cassandra_settings, settings)
    cassandra_session = providers.Resource(cassandra_session, cassandra_settings)
    cassandra_store = providers.Singleton(
        _cassandra_store,
        session=cassandra_session,
        settings=cassandra_settings,
        read_only=config.read_only,
    )
    serving = providers.Selector(
        config.serving,
        **_serving_stores(
            sqlite=providers.Resource(_sqlite_store, layout, read_only=config.read_only),
            cassandra=cassandra_store,
            memory=providers.Singleton(_memory_store),
        ),
    )


def container_for(settings: Settings, *, read_only: bool = False) -> Container:
    """A fresh container over already-loaded settings."""
    container = Container()
    container.config.from_dict({**settings.as_config(), "read_only": read_only})
    return container


def build_container(
    lake: Path | str | None = None,
    engine: str | None = None,
    spark_master: str | None = None,
    verbose: bool = False,
    *,
    serving: str | None = None,
    shuffle_partitions: int | None = None,
    config_file: Path | str | None = None,
    read_only: bool = False,
) -> Container:
    """Settings from defaults < TOML (`config_file`) < ./cred.env < environment < these
    arguments (None = not given), then a fresh container over them (for notebooks and tests;
    the CLI loads its settings once and calls `container_for`)."""
    settings = load_settings(
        Path(config_file) if config_file is not None else None,
        {
            "lake": lake,
            "engine": engine,
            "spark_master": spark_master,
            "verbose": True if verbose else None,
            "serving": serving,
            "shuffle_partitions": shuffle_partitions,
        },
    )
    return container_for(settings, read_only=read_only)


@contextlib.contextmanager
def running(container: Container) -> Iterator[Container]:
    """The container, its resources shut down at the end of the block."""
    try:
        yield container
    finally:
        container.shutdown_resources()
