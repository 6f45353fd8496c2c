"""The Cassandra serving store on a real three-node ring (scripts/cassandra-node on 127.0.0.1-3).

The keyspace is created by `finops load` with CASSANDRA_REPLICATION
`NetworkTopologyStrategy:datacenter1=3`; the session writes and reads at LOCAL_QUORUM (2 of 3
replicas), so one node down changes nothing a client sees. What these tests show:
- a node stopped in the middle of `finops load` does not stop it: the load completes at
  LOCAL_QUORUM, and after the node is back a rerun leaves every served table with exactly the
  SQLite store's row count and every answer equal to SQLite's;
- with one node down, every question answers as SQLite does;
- rows written while a node was down reach it when it returns through hinted handoff (the live
  replicas keep hints for it and replay them within seconds): a session that talks to that node
  alone, at consistency ONE, serves them.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters.cassandra.schema import apply_schema, keyspace_ddl
from adapters.cassandra.serving import CassandraServingStore
from adapters.cassandra.session import close_session, connect
from adapters.cassandra.settings import CassandraSettings, parse_replication
from adapters.sqlite.serving import SqliteServingStore
from entrypoints.cli import main
from entrypoints.config import load_settings
from finops_core import queries
from finops_core.errors import ConfigurationError
from finops_core.serving import DAILY_USAGE_BY_ORG, SERVING_TABLES, ServingTable
from tests.cassandra_node import RingMember, ring_members, start_node, stop_node
from tests.test_astra import _questions, small_lake
from tests.test_serving_cassandra import _tools_or_skip, gold_rows

__all__ = ["small_lake"]  # a module fixture shared with tests/test_astra.py

NODES = 3
REPLICATION = "NetworkTopologyStrategy:datacenter1=3"
RING_READY_S = 60.0
HINTS_DELIVERED_S = 90.0


def test_the_replication_setting_becomes_the_keyspace_s_replication_map() -> None:
    assert keyspace_ddl("ks", parse_replication("NetworkTopologyStrategy:datacenter1=3,dc2=2")) == (
        "CREATE KEYSPACE IF NOT EXISTS ks WITH replication = "
        "{'class': 'NetworkTopologyStrategy', 'datacenter1': 3, 'dc2': 2}"
    )
    assert keyspace_ddl("ks", parse_replication("SimpleStrategy:2")).endswith(
        "{'class': 'SimpleStrategy', 'replication_factor': 2}"
    )
    assert keyspace_ddl("ks").endswith("{'class': 'SimpleStrategy', 'replication_factor': 1}")


@pytest.mark.parametrize(
    "text",
    ["SimpleStrategy", "SimpleStrategy:0", "NetworkTopologyStrategy:", "Other:dc=1", "NTS:dc=x"],
)
def test_a_replication_that_is_not_a_strategy_and_its_factors_is_refused(text: str) -> None:
    with pytest.raises(ConfigurationError, match="CASSANDRA_REPLICATION"):
        parse_replication(text)


def test_the_cassandra_settings_carry_the_replication_from_the_environment(cli: Path) -> None:
    settings = load_settings(
        env={"CASSANDRA_REPLICATION": REPLICATION, "FINOPS_SERVING": "cassandra"}
    )
    replication = settings.cassandra().replication
    assert replication.factors == (("datacenter1", 3),)
    assert str(replication) == REPLICATION
    with pytest.raises(ConfigurationError, match="cassandra_replication"):
        load_settings(env={"CASSANDRA_REPLICATION": "NetworkTopologyStrategy:dc1"})


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@attrs.define
class Ring:
    """Three nodes on loopback addresses, each in its own folder under `base`."""

    base: Path
    members: list[RingMember]

    def directory(self, index: int) -> Path:
        return self.base / f"node{index + 1}"

    def start(self, index: int) -> None:
        start_node(self.directory(index), ring=self.members[index])

    def stop(self, index: int) -> None:
        stop_node(self.directory(index))

    @property
    def contact_points(self) -> str:
        return ",".join(f"{m.address}:{m.port}" for m in self.members)

    def settings(self, keyspace: str) -> CassandraSettings:
        return CassandraSettings(
            contact_points=tuple((m.address, m.port) for m in self.members),
            keyspace=keyspace,
            replication=parse_replication(REPLICATION),
        )

    def wait_until_up(self, up: Iterable[int]) -> None:
        """Until every node in `up` sees the others of `up` as live peers (bounded)."""
        from cassandra.cluster import Cluster

        wanted = {self.members[i].address for i in up}
        deadline = time.monotonic() + RING_READY_S
        seen: set[str] = set()
        while time.monotonic() < deadline:
            cluster = Cluster(
                contact_points=[(self.members[0].address, self.members[0].port)],
                connect_timeout=5,
            )
            try:
                cluster.connect()
                seen = {host.address for host in cluster.metadata.all_hosts() if host.is_up}
            except Exception:  # noqa: BLE001 - retried until the deadline
                seen = set()
            finally:
                cluster.shutdown()
            if wanted <= seen:
                return
            time.sleep(1.0)
        raise AssertionError(f"the ring did not come up: {sorted(seen)} of {sorted(wanted)}")


_RING = pytest.StashKey[Ring]()


@pytest.fixture(scope="module")
def ring(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Ring:
    """The three nodes, started one after the other, stopped and deleted at the end."""
    config = request.config
    if _RING not in config.stash:
        _tools_or_skip()
        base = tmp_path_factory.mktemp("cassandra-ring")
        ring = Ring(base, ring_members(NODES, _free_port(), _free_port()))

        def stop_all() -> None:
            for index in range(NODES):
                ring.stop(index)
            shutil.rmtree(base, ignore_errors=True)

        config.add_cleanup(stop_all)
        started = time.monotonic()
        for index in range(NODES):
            ring.start(index)
        ring.wait_until_up(range(NODES))
        print(f"ring of {NODES} up in {time.monotonic() - started:.1f} s")
        config.stash[_RING] = ring
    return config.stash[_RING]


@pytest.fixture
def ring_cli(ring: Ring, cli: Path, monkeypatch: pytest.MonkeyPatch) -> Ring:
    """The CLI's Cassandra settings point at the ring, with the ring's replication."""
    monkeypatch.setenv("CASSANDRA_CONTACT_POINTS", ring.contact_points)
    monkeypatch.setenv("CASSANDRA_REPLICATION", REPLICATION)
    return ring


def _finops(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _sqlite_counts(lake: Path) -> dict[str, int]:
    store = SqliteServingStore(lake / "serving" / "finops.sqlite", create_schema=False)
    try:
        return {table.name: store.count(table) for table in SERVING_TABLES}
    finally:
        store.close()


def _ring_counts(ring: Ring, keyspace: str) -> dict[str, int]:
    settings = ring.settings(keyspace)
    store = CassandraServingStore(connect(settings), keyspace, settings=settings, owns_session=True)
    try:
        return {table.name: store.count(table) for table in SERVING_TABLES}
    finally:
        store.close()


def _replication_of(ring: Ring, keyspace: str) -> dict[str, str]:
    """The replication map the ring holds for `keyspace` (as the load created it)."""
    session = connect(ring.settings(keyspace))
    try:
        row = session.execute(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s",
            (keyspace,),
        ).one()
    finally:
        close_session(session)
    return dict(row.replication)


def _answers_equal_sqlite(capsys: pytest.CaptureFixture[str], lake: Path, keyspace: str) -> int:
    """Ask every question of the ring and of SQLite; return how many rows the ring answered."""
    answered = 0
    for question in _questions(lake):
        expected = _finops(capsys, "query", *question, "--lake", str(lake), "--json")
        actual = _finops(
            capsys, "query", *question, "--lake", str(lake), "--json", "--serving", "cassandra"
        )
        assert expected[0] == actual[0] == 0, (question, expected, actual)
        assert json.loads(actual[1]) == json.loads(expected[1]), question
        answered += len(json.loads(actual[1]))
    return answered


@pytest.mark.cassandra
@pytest.mark.slow
def test_a_load_survives_a_node_stopping_midway_and_a_rerun_serves_every_row_once(
    ring_cli: Ring,
    small_lake: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ring = ring_cli
    keyspace = "ring_outage"
    monkeypatch.setenv("CASSANDRA_KEYSPACE", keyspace)
    expected_counts = _sqlite_counts(small_lake)
    half = expected_counts[DAILY_USAGE_BY_ORG.name] // 2
    assert half > 100
    halfway = threading.Event()
    node_stopped = threading.Event()
    upsert = CassandraServingStore.upsert

    def upsert_that_waits(store: Any, table: ServingTable, rows: Iterable[Any]) -> int:
        """The daily table's load holds at its middle row until node 3 is down; chunks of 100
        rows, so the rows before it are written before the node stops."""
        store.chunk_rows = 100

        def held() -> Iterator[Any]:
            for position, row in enumerate(rows):
                if table is DAILY_USAGE_BY_ORG and position == half:
                    halfway.set()
                    assert node_stopped.wait(timeout=120)
                yield row

        return upsert(store, table, held())

    monkeypatch.setattr(CassandraServingStore, "upsert", upsert_that_waits)

    def stop_node_3_halfway() -> None:
        try:
            if halfway.wait(timeout=120):
                ring.stop(2)
        finally:
            node_stopped.set()

    stopper = threading.Thread(target=stop_node_3_halfway, daemon=True)
    stopper.start()
    lake = str(small_lake)
    load = ["load", "--lake", lake, "--engine", "memory", "--serving", "cassandra"]
    code, out, err = _finops(capsys, *load)
    stopper.join(timeout=60)
    assert halfway.is_set() and not stopper.is_alive()
    # At LOCAL_QUORUM two of three replicas acknowledge every write: the load completes.
    assert code == 0, err
    assert "into cassandra" in out
    assert _ring_counts(ring, keyspace) == expected_counts
    assert _replication_of(ring, keyspace) == {
        "class": "org.apache.cassandra.locator.NetworkTopologyStrategy",
        "datacenter1": "3",
    }

    monkeypatch.setattr(CassandraServingStore, "upsert", upsert)
    ring.start(2)
    ring.wait_until_up(range(NODES))
    code, out, err = _finops(capsys, *load)
    assert code == 0, err
    assert _ring_counts(ring, keyspace) == expected_counts
    assert _answers_equal_sqlite(capsys, small_lake, keyspace) > 100


@pytest.mark.cassandra
@pytest.mark.slow
def test_every_question_answers_as_sqlite_does_with_one_node_down(
    ring_cli: Ring,
    small_lake: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ring = ring_cli
    keyspace = "ring_questions"
    monkeypatch.setenv("CASSANDRA_KEYSPACE", keyspace)
    lake = str(small_lake)
    code, _, err = _finops(
        capsys, "load", "--lake", lake, "--engine", "memory", "--serving", "cassandra"
    )
    assert code == 0, err
    ring.stop(1)
    try:
        assert _answers_equal_sqlite(capsys, small_lake, keyspace) > 100
    finally:
        ring.start(1)
        ring.wait_until_up(range(NODES))


def _only_node(member: RingMember, keyspace: str) -> CassandraServingStore:
    """A store whose every request goes to `member` alone, answered by it alone (ONE)."""
    from cassandra import ConsistencyLevel
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy

    profile = ExecutionProfile(
        consistency_level=ConsistencyLevel.ONE,
        load_balancing_policy=WhiteListRoundRobinPolicy([member.address]),
        request_timeout=10.0,
    )
    cluster = Cluster(
        contact_points=[(member.address, member.port)],
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )
    session = cluster.connect()
    settings = CassandraSettings(contact_points=((member.address, member.port),), keyspace=keyspace)
    return CassandraServingStore(session, keyspace, settings=settings, owns_session=True)


@pytest.mark.cassandra
@pytest.mark.slow
def test_rows_written_while_a_node_was_down_are_served_by_it_once_hints_are_replayed(
    ring: Ring,
) -> None:
    keyspace = "ring_hints"
    settings = ring.settings(keyspace)
    session = connect(settings)
    try:
        apply_schema(session, keyspace, replication=settings.replication)
    finally:
        close_session(session)
    rows = gold_rows(orgs=4, days=30)  # 600 rows
    returning = ring.members[2]
    ring.stop(2)
    try:
        store = CassandraServingStore(
            connect(settings), keyspace, settings=settings, owns_session=True
        )
        try:
            assert store.upsert(DAILY_USAGE_BY_ORG, rows) == len(rows) == 600
        finally:
            store.close()
    finally:
        ring.start(2)
    ring.wait_until_up(range(NODES))
    # Node 3 alone, at ONE, never repairs from the others: what it serves it holds itself.
    deadline = time.monotonic() + HINTS_DELIVERED_S
    served = -1
    node3 = _only_node(returning, keyspace)
    try:
        while time.monotonic() < deadline:
            served = node3.count(DAILY_USAGE_BY_ORG)
            if served == len(rows):
                break
            time.sleep(1.0)
        assert served == len(rows), f"node 3 serves {served} of {len(rows)} rows"
        org = "org_00002"
        expected = [row for row in rows if row["org_id"] == org]
        got = queries.daily_usage(node3, org, dt.date(2025, 1, 1), dt.date(2025, 12, 31))
        assert got == expected and len(expected) == 150
    finally:
        node3.close()
