"""The Cassandra serving store against a real single-node Cassandra 5.0 (scripts/cassandra-node).

One node serves the whole session (shared with the contract suite through `cassandra_node`);
a second node with PasswordAuthenticator is started once for the login and outage tests.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters.cassandra.schema import (
    SCHEMA_VERSION,
    TABLES,
    USAGE_TABLE,
    applied_version,
    apply_schema,
)
from adapters.cassandra.serving import CassandraServingStore, RetryPolicy
from adapters.cassandra.session import close_session, connect
from adapters.cassandra.settings import CassandraSettings
from adapters.lake.gold import read_gold_rows, write_gold_partitions
from entrypoints.cli import main
from finops_core import queries
from finops_core.aggregate import GoldRow
from finops_core.errors import ServingUnavailable
from finops_core.lake import LakeLayout
from tests.cassandra_node import java_and_maven_available, start_node, stop_node

SUPERUSER = ("cassandra", "cassandra")


@attrs.define
class CassandraNode:
    """A running test node; `restart` may move it to another port."""

    directory: Path
    host: str
    port: int
    auth: bool = False
    _keyspaces: Iterator[int] = attrs.field(factory=itertools.count)

    @classmethod
    def start(cls, directory: Path, auth: bool = False) -> CassandraNode:
        host, port = start_node(directory, auth=auth)
        return cls(directory, host, port, auth)

    def restart(self) -> None:
        self.host, self.port = start_node(self.directory, auth=self.auth)

    @property
    def contact_point(self) -> str:
        return f"{self.host}:{self.port}"

    def new_keyspace(self, prefix: str) -> str:
        return f"{prefix}_{os.getpid()}_{next(self._keyspaces)}"

    def settings(self, keyspace: str = "cloud_analytics", **changes: Any) -> CassandraSettings:
        base = CassandraSettings(contact_points=((self.host, self.port),), keyspace=keyspace)
        if self.auth:
            base = attrs.evolve(base, username=SUPERUSER[0], password=SUPERUSER[1])
        return attrs.evolve(base, **changes)


def open_cassandra_store(
    node: CassandraNode, keyspace: str, retry: RetryPolicy | None = None, **changes: Any
) -> CassandraServingStore:
    """A store on a keyspace of `node` whose schema is applied; it owns (and closes) its session."""
    settings = node.settings(keyspace, **changes)
    session = connect(settings)
    apply_schema(session, keyspace)
    return CassandraServingStore(
        session, keyspace, where=settings.hosts, owns_session=True, retry=retry
    )


def _tools_or_skip() -> None:
    if java_and_maven_available():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("CI must run the Cassandra tests, but java or mvn is missing.")
    pytest.skip("the Cassandra test node needs Java 17 and Maven")


_SHARED_NODE = pytest.StashKey[CassandraNode]()


@pytest.fixture(scope="session")
def cassandra_node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> CassandraNode:
    """One node per pytest run, kept in the config so every module that imports this fixture
    shares it; stopped when pytest ends."""
    config = request.config
    if _SHARED_NODE not in config.stash:
        _tools_or_skip()
        directory = tmp_path_factory.mktemp("cassandra-node")
        config.stash[_SHARED_NODE] = CassandraNode.start(directory)
        config.add_cleanup(lambda: stop_node(directory))
    return config.stash[_SHARED_NODE]


@pytest.fixture(scope="session")
def cassandra_auth_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CassandraNode]:
    """A second node with PasswordAuthenticator (superuser cassandra/cassandra)."""
    _tools_or_skip()
    directory = tmp_path_factory.mktemp("cassandra-auth-node")
    node = CassandraNode.start(directory, auth=True)
    yield node
    stop_node(directory)


def gold_rows(orgs: int, days: int, services: int = 5) -> list[GoldRow]:
    """orgs x days x services distinct gold rows with values derived from their position."""
    first = dt.date(2025, 1, 1)
    return [
        GoldRow(
            org_id=f"org_{o:05d}",
            usage_date=first + dt.timedelta(days=d),
            service=f"service_{s}",
            daily_cost_usd=o + d / 10 + s / 100,
            requests=float(d * s),
            cpu_hours=d * 0.5,
            storage_gb_hours=s * 1.5,
            genai_tokens=None if s % 2 else o * d,
            carbon_kg=None if d % 3 == 0 else d * 0.01,
            event_count=o + d + s + 1,
            cost_per_request_usd=(o + d / 10 + s / 100) / (d * s) if d * s else None,
            quality_flags={"unit_imputed": d} if s == 0 else {},
        )
        for o in range(orgs)
        for d in range(days)
        for s in range(services)
    ]


pytestmark = pytest.mark.cassandra


def _schema_snapshot(session: object, keyspace: str) -> dict[str, object]:
    execute = session.execute  # type: ignore[attr-defined]
    tables = sorted(
        row.table_name
        for row in execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (keyspace,)
        )
    )
    columns = sorted(
        (row.table_name, row.column_name, row.kind, row.position, row.type)
        for row in execute(
            "SELECT table_name, column_name, kind, position, type FROM system_schema.columns "
            "WHERE keyspace_name = %s",
            (keyspace,),
        )
    )
    replication = (
        execute(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (keyspace,)
        )
        .one()
        .replication
    )
    return {"tables": tables, "columns": columns, "replication": dict(replication)}


def test_the_schema_creates_the_query_tables_and_applying_it_twice_changes_nothing(
    cassandra_node: CassandraNode,
) -> None:
    keyspace = cassandra_node.new_keyspace("ddl")
    session = connect(cassandra_node.settings(keyspace))
    try:
        apply_schema(session, keyspace)
        first = _schema_snapshot(session, keyspace)
        apply_schema(session, keyspace)
        second = _schema_snapshot(session, keyspace)
        version = applied_version(session, keyspace)
    finally:
        close_session(session)
    assert first == second
    assert first["tables"] == sorted(TABLES)
    assert first["replication"] == {
        "class": "org.apache.cassandra.locator.SimpleStrategy",
        "replication_factor": "1",
    }
    usage = {c[1]: c[2:] for c in first["columns"] if c[0] == USAGE_TABLE}  # type: ignore[attr-defined]
    assert usage["org_id"] == ("partition_key", 0, "text")
    assert usage["usage_date"] == ("clustering", 0, "date")
    assert usage["service"] == ("clustering", 1, "text")
    assert usage["quality_flags"] == ("regular", -1, "frozen<map<text, int>>")
    assert len(usage) == 12
    assert version == SCHEMA_VERSION


def test_finops_load_twice_gives_the_gold_rows_once_and_the_queries_match_the_parquet(
    cassandra_node: CassandraNode,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.test_serving_contract import GOLD

    lake = LakeLayout(tmp_path / "lake")
    write_gold_partitions(lake, GOLD)
    gold = list(read_gold_rows(lake))
    keyspace = cassandra_node.new_keyspace("load")
    monkeypatch.chdir(tmp_path)  # no stray ./cred.env
    monkeypatch.setenv("CASSANDRA_CONTACT_POINTS", cassandra_node.contact_point)
    monkeypatch.setenv("CASSANDRA_KEYSPACE", keyspace)
    for _ in range(2):
        assert main(["load", "--lake", str(lake.root), "--serving", "cassandra"]) == 0
        assert f"loaded {len(gold)} gold rows into cassandra" in capsys.readouterr().out

    store = open_cassandra_store(cassandra_node, keyspace)
    try:
        assert store.row_count() == len(gold) == len(GOLD)
        orgs = sorted({row.org_id for row in gold})
        dates = sorted({row.usage_date for row in gold})
        for org in orgs:
            assert store.daily_usage(org, dates[0], dates[-1]) == queries.daily_usage(
                gold, org, dates[0], dates[-1]
            )
            assert store.top_services(org) == queries.top_services(gold, org)
            for day in dates[::5]:
                assert store.org_day(org, day) == queries.org_day(gold, org, day)
    finally:
        store.close()

    assert (
        main(["query", "q2", "--org", orgs[0], "--serving", "cassandra", "--days", "7", "--json"])
        == 0
    )
    expected = [
        {"service": c.service, "total_cost_usd": c.total_cost_usd}
        for c in queries.top_services(gold, orgs[0], days=7)
    ]
    assert json.loads(capsys.readouterr().out) == expected


def test_a_password_node_accepts_the_right_login_and_refuses_a_wrong_one_without_echoing_it(
    cassandra_auth_node: CassandraNode,
) -> None:
    keyspace = cassandra_auth_node.new_keyspace("auth")
    store = open_cassandra_store(cassandra_auth_node, keyspace)
    try:
        rows = gold_rows(orgs=3, days=4)
        assert store.upsert(rows) == len(rows) == 60
        assert store.row_count() == 60
    finally:
        store.close()

    wrong = "Wr0ng-Passw0rd-7f3a"
    with pytest.raises(ServingUnavailable) as refused:
        connect(cassandra_auth_node.settings(keyspace, password=wrong))
    message = str(refused.value)
    assert cassandra_auth_node.contact_point in message
    assert "credentials were refused" in message
    assert wrong not in message and wrong not in repr(refused.value)

    with pytest.raises(ServingUnavailable, match="credentials were refused"):
        connect(cassandra_auth_node.settings(keyspace, username=None, password=None))


def test_a_load_interrupted_by_the_node_stopping_fails_clearly_and_a_rerun_completes_once(
    cassandra_auth_node: CassandraNode,
) -> None:
    node = cassandra_auth_node
    keyspace = node.new_keyspace("outage")
    chunk = 2_000
    rows = gold_rows(orgs=8, days=100)  # 4,000 rows: two loader chunks
    assert len(rows) == 2 * chunk
    retry = RetryPolicy(attempts=3, base_delay_s=0.2)
    store = open_cassandra_store(node, keyspace, retry=retry, request_timeout_s=3.0)
    store.chunk_rows = chunk
    where = node.contact_point
    first_chunk_written = threading.Event()
    node_stopped = threading.Event()
    outcome: list[BaseException | int] = []

    def rows_that_wait_for_the_outage() -> Iterator[GoldRow]:
        """Yield the first chunk, then hold the load until the node is down."""
        for position, row in enumerate(rows):
            if position == chunk:
                first_chunk_written.set()
                node_stopped.wait(timeout=120)
            yield row

    def load() -> None:
        try:
            outcome.append(store.upsert(rows_that_wait_for_the_outage()))
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcome.append(error)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    assert first_chunk_written.wait(timeout=120)
    stop_node(node.directory)
    node_stopped.set()
    loader.join(timeout=120)
    store.close()
    assert not loader.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], ServingUnavailable), outcome
    message = str(outcome[0])
    assert where in message
    assert "failed to write gold rows" in message and "after 3 attempts" in message

    node.restart()
    store = open_cassandra_store(node, keyspace)
    try:
        assert store.row_count() == chunk  # the first chunk survived the outage
        assert store.upsert(rows) == len(rows)
        assert store.row_count() == len(rows) == 4_000
        for org in ("org_00000", "org_00003", "org_00007"):
            expected = [row for row in rows if row.org_id == org]
            assert store.daily_usage(org, dt.date(2025, 1, 1), dt.date(2025, 12, 31)) == expected
    finally:
        store.close()
