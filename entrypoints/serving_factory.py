"""The one place that chooses and builds a serving store (a DI container will take this over)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from finops_core.errors import ConfigurationError, FinopsError, ServingUnavailable
from finops_core.lake import LakeLayout
from finops_core.ports import ServingStore

SERVING_KINDS = ("sqlite", "cassandra", "astra")
DEFAULT_SERVING = "sqlite"


class ClosableServingStore(ServingStore, Protocol):
    def close(self) -> None: ...


def open_serving_store(
    kind: str, lake: Path | LakeLayout, *, create_schema: bool = True
) -> ClosableServingStore:
    """sqlite: the file in the lake; cassandra: CASSANDRA_* settings; astra: ASTRA_DB_* settings
    (from the environment or ./cred.env). Close it with `close_serving_store`."""
    layout = lake if isinstance(lake, LakeLayout) else LakeLayout(lake)
    if kind == "sqlite":
        from adapters.sqlite.serving import SqliteServingStore

        if not create_schema and not layout.serving_sqlite.is_file():
            raise ServingUnavailable(
                f"There is no SQLite serving store at {layout.serving_sqlite}; run `finops load` first."
            )
        return SqliteServingStore(layout.serving_sqlite)
    if kind in ("cassandra", "astra"):
        from adapters.cassandra.schema import apply_schema
        from adapters.cassandra.serving import CassandraServingStore
        from adapters.cassandra.session import close_session, connect
        from adapters.cassandra.settings import CassandraSettings

        settings = (
            CassandraSettings.astra_from_env()
            if kind == "astra"
            else CassandraSettings.cassandra_from_env()
        )
        session = connect(settings)
        try:
            if create_schema:
                apply_schema(session, settings.keyspace, create_keyspace=not settings.is_astra)
        except FinopsError:
            close_session(session)
            raise
        except Exception as error:
            close_session(session)
            raise ServingUnavailable(
                f"Cassandra at {settings.hosts} did not accept the serving schema "
                f"({type(error).__name__}: {error})."
            ) from None
        return CassandraServingStore(
            session, settings.keyspace, where=settings.hosts, owns_session=True
        )
    raise ConfigurationError(
        f"Unknown serving store {kind!r}; choose one of {', '.join(SERVING_KINDS)}."
    )


def close_serving_store(store: ClosableServingStore) -> None:
    store.close()
