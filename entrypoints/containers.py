"""The composition root: the one place where adapters are chosen and built.

Nothing here runs at import time: `build_container(...)` loads the settings and returns a fresh
container; `container.shutdown_resources()` closes what it opened (a SparkSession it created, a
Cassandra session, the SQLite connection) and leaves alone what it only borrowed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dependency_injector import containers, providers

from adapters.clock import SystemClock
from adapters.console import ConsoleProgress
from adapters.runlog import JsonRunLog
from entrypoints.config import Settings, active_config_file, load_settings
from finops_core.errors import EngineUnavailable, FinopsError, ServingUnavailable
from finops_core.lake import LakeLayout

if TYPE_CHECKING:
    from adapters.cassandra.settings import CassandraSettings

LOG = logging.getLogger(__name__)


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


def _memory_engine() -> object:
    from adapters.memory.engine import MemoryEngine

    return MemoryEngine()


def _spark_engine(
    session: Any, master: str | None, verbose: bool, shuffle_partitions: int
) -> object:
    """The Spark engine over the container's session (which the engine never stops)."""
    try:
        from adapters.spark.engine import SparkEngine
    except ModuleNotFoundError as error:
        raise _spark_missing(error) from None
    return SparkEngine(
        master=master, verbose=verbose, spark=session, shuffle_partitions=shuffle_partitions
    )


# -- serving stores ----------------------------------------------------------------------------


def _sqlite_store(layout: LakeLayout) -> Iterator[object]:
    from adapters.sqlite.serving import SqliteServingStore

    store = SqliteServingStore(layout.serving_sqlite)
    try:
        yield store
    finally:
        store.close()


def _memory_store() -> object:
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


def _cassandra_store(session: Any, settings: CassandraSettings) -> object:
    from adapters.cassandra.schema import apply_schema
    from adapters.cassandra.serving import CassandraServingStore

    try:
        apply_schema(session, settings.keyspace, create_keyspace=not settings.is_astra)
    except FinopsError:
        raise
    except Exception as error:
        raise ServingUnavailable(
            f"Cassandra at {settings.hosts} did not accept the serving schema "
            f"({type(error).__name__}: {error})."
        ) from None
    return CassandraServingStore(
        session, settings.keyspace, where=settings.hosts, owns_session=False
    )


# -- the container -----------------------------------------------------------------------------


class Container(containers.DeclarativeContainer):
    config = providers.Configuration(strict=True)
    settings = providers.Singleton(lambda values: Settings(**values), config)

    layout = providers.Singleton(LakeLayout, root=config.lake)
    clock = providers.Singleton(SystemClock)
    progress = providers.Singleton(ConsoleProgress, detail=config.verbose)
    run_log = providers.Singleton(lambda layout: JsonRunLog(layout.runs), layout)

    spark = providers.Resource(
        spark_session,
        master=config.spark_master,
        shuffle_partitions=config.shuffle_partitions,
        verbose=config.verbose,
    )
    engine = providers.Selector(
        config.engine,
        memory=providers.Singleton(_memory_engine),
        spark=providers.Singleton(
            _spark_engine,
            session=spark,
            master=config.spark_master,
            verbose=config.verbose,
            shuffle_partitions=config.shuffle_partitions,
        ),
    )

    cassandra_settings = providers.Singleton(_cassandra_settings, settings)
    cassandra_session = providers.Resource(cassandra_session, cassandra_settings)
    cassandra_store = providers.Singleton(
        _cassandra_store, session=cassandra_session, settings=cassandra_settings
    )
    serving = providers.Selector(
        config.serving,
        sqlite=providers.Resource(_sqlite_store, layout),
        cassandra=cassandra_store,
        astra=cassandra_store,
        memory=providers.Singleton(_memory_store),
    )


def container_for(settings: Settings) -> Container:
    """A fresh container over already-loaded settings."""
    container = Container()
    container.config.from_dict(settings.as_config())
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
) -> Container:
    """Settings from defaults < TOML (`config_file`, else `finops --config`) < environment <
    these arguments (None = not given), then a fresh container over them."""
    source = Path(config_file) if config_file is not None else active_config_file()
    settings = load_settings(
        source,
        {
            "lake": lake,
            "engine": engine,
            "spark_master": spark_master,
            "verbose": True if verbose else None,
            "serving": serving,
            "shuffle_partitions": shuffle_partitions,
        },
    )
    return container_for(settings)
