"""The Cassandra serving store against a real single-node Cassandra 5.0 (scripts/cassandra-node).

One node serves the whole session (shared with the contract suite through `cassandra_node`);
a second node with PasswordAuthenticator is started once for the login, sink and outage tests.
The tests without a node (marked nothing) check the derived statements over a fake session.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters.cassandra.schema import (
    SCHEMA_VERSION,
    applied_version,
    apply_schema,
    table_ddl,
    table_names,
)
from adapters.cassandra.serving import CassandraPartitionSink, CassandraServingStore, RetryPolicy
from adapters.cassandra.session import close_session, connect
from adapters.cassandra.settings import CassandraSettings
from adapters.lake.delta import DeltaLake
from entrypoints.cli import main
from entrypoints.output import json_value
from finops_core import queries
from finops_core.errors import ServingUnavailable
from finops_core.lake import LakeLayout
from finops_core.marts import DAILY_USAGE
from finops_core.serving import (
    ANOMALIES_BY_DAY,
    DAILY_USAGE_BY_ORG,
    GENAI_TOKENS_BY_ORG,
    REVENUE_BY_ORG,
    TICKETS_BY_ORG,
)
from finops_core.tables import WriteMode
from tests.cassandra_node import java_and_maven_available, start_node, stop_node

DAILY = DAILY_USAGE_BY_ORG
SUPERUSER = ("cassandra", "cassandra")
# The tables clients of schema version 1 know, by name.
VERSION_1_TABLES = ["daily_usage_by_org", "orgs", "schema_version", "usage_dates"]
# Version 2 adds the revenue, tickets and GenAI tables and their indexes.
VERSION_2_TABLES = sorted(
    [
        *VERSION_1_TABLES,
        "revenue_by_org",
        "revenue_orgs",
        "tickets_by_org",
        "ticket_dates",
        "ticket_orgs",
        "genai_tokens_by_org",
        "genai_orgs",
    ]
)
# Version 3 adds the cost anomalies table and its index of days.
VERSION_3_TABLES = sorted([*VERSION_2_TABLES, "cost_anomalies_by_day", "anomaly_dates"])
# The hand-written DDL of schema version 1 (before the DDL was derived), kept to prove the
# derived DDL creates the same schema.
VERSION_1_DDL = [
    """CREATE TABLE IF NOT EXISTS {ks}.daily_usage_by_org (
        org_id text, usage_date date, service text, daily_cost_usd double, requests double,
        cpu_hours double, storage_gb_hours double, genai_tokens bigint, carbon_kg double,
        event_count bigint, cost_per_request_usd double, quality_flags frozen<map<text, int>>,
        PRIMARY KEY ((org_id), usage_date, service)
    ) WITH CLUSTERING ORDER BY (usage_date ASC, service ASC)""",
    """CREATE TABLE IF NOT EXISTS {ks}.usage_dates (
        scope text, usage_date date, PRIMARY KEY ((scope), usage_date)
    ) WITH CLUSTERING ORDER BY (usage_date DESC)""",
    "CREATE TABLE IF NOT EXISTS {ks}.orgs (scope text, org_id text, PRIMARY KEY ((scope), org_id))",
    """CREATE TABLE IF NOT EXISTS {ks}.schema_version (
        component text PRIMARY KEY, version int, applied_at timestamp
    )""",
]


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
        session, keyspace, settings=settings, owns_session=True, retry=retry
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


_SHARED_AUTH_NODE = pytest.StashKey[CassandraNode]()


@pytest.fixture(scope="session")
def cassandra_auth_node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> CassandraNode:
    """A second node with PasswordAuthenticator (superuser cassandra/cassandra), shared like
    `cassandra_node` by every module that imports this fixture; stopped when pytest ends."""
    config = request.config
    if _SHARED_AUTH_NODE not in config.stash:
        _tools_or_skip()
        directory = tmp_path_factory.mktemp("cassandra-auth-node")
        config.stash[_SHARED_AUTH_NODE] = CassandraNode.start(directory, auth=True)
        config.add_cleanup(lambda: stop_node(directory))
    return config.stash[_SHARED_AUTH_NODE]


def gold_rows(orgs: int, days: int, services: int = 5) -> list[dict[str, object]]:
    """orgs x days x services distinct gold rows with values derived from their position."""
    first = dt.date(2025, 1, 1)
    rows: list[dict[str, object]] = [
        {
            "org_id": f"org_{o:05d}",
            "usage_date": first + dt.timedelta(days=d),
            "service": f"service_{s}",
            "daily_cost_usd": o + d / 10 + s / 100,
            "requests": float(d * s),
            "cpu_hours": d * 0.5,
            "storage_gb_hours": s * 1.5,
            "genai_tokens": None if s % 2 else o * d,
            "carbon_kg": None if d % 3 == 0 else d * 0.01,
            "event_count": o + d + s + 1,
            "cost_per_request_usd": (o + d / 10 + s / 100) / (d * s) if d * s else None,
            "quality_flags": {"unit_imputed": d} if s == 0 else {},
        }
        for o in range(orgs)
        for d in range(days)
        for s in range(services)
    ]
    assert all(tuple(row) == DAILY_USAGE.table.column_names for row in rows)
    return rows


# ---- without a node: the derived statements ----------------------------------------------------


class RecordingSession:
    """Enough of a driver session to see what the store prepares and executes."""

    def __init__(self) -> None:
        self.prepared: list[str] = []
        self.executed: list[tuple[str, tuple[object, ...]]] = []

    def prepare(self, cql: str) -> str:
        self.prepared.append(cql)
        return cql

    def execute(self, statement: str, params: tuple[object, ...] = ()) -> list[Any]:
        self.executed.append((statement, params))
        return []


def test_a_slice_is_a_tuple_relation_on_a_clustering_prefix_of_one_partition() -> None:
    session = RecordingSession()
    store = CassandraServingStore(session, "ks")  # type: ignore[arg-type]
    day = dt.date(2025, 7, 1)
    assert (
        store.read_slice(DAILY, ("org_a",), (day, "compute"), (day,), descending=True, limit=3)
        == []
    )
    assert store.read_slice(DAILY, ("org_a",), (day,), (day,), columns=("service",)) == []
    assert session.prepared == [
        "SELECT org_id, usage_date, service, daily_cost_usd, requests, cpu_hours, "
        "storage_gb_hours, genai_tokens, carbon_kg, event_count, cost_per_request_usd, "
        "quality_flags FROM ks.daily_usage_by_org WHERE org_id = ? "
        "AND (usage_date, service) >= (?, ?) AND (usage_date) <= (?) "
        "ORDER BY usage_date DESC, service DESC LIMIT ?",
        "SELECT service FROM ks.daily_usage_by_org WHERE org_id = ? "
        "AND (usage_date) >= (?) AND (usage_date) <= (?)",
    ]
    assert [params for _, params in session.executed] == [
        ("org_a", day, "compute", day, 3),
        ("org_a", day, day),
    ]
    store.index_values(DAILY, "usage_date", 1)
    assert (
        session.prepared[-1] == "SELECT usage_date FROM ks.usage_dates WHERE scope = 'all' LIMIT ?"
    )
    assert not any("ALLOW FILTERING" in cql.upper() for cql in session.prepared)


def test_q3_q4_q5_read_one_partition_each_or_an_index_partition() -> None:
    session = RecordingSession()
    store = CassandraServingStore(session, "ks")  # type: ignore[arg-type]
    as_of, first = dt.date(2025, 7, 31), dt.date(2025, 7, 2)
    assert queries.tickets(store, "org_a") == []  # no ticket date loaded: no as-of
    assert queries.tickets(store, "org_a", as_of) == []
    assert queries.revenue(store, "org_a") == [] and queries.revenue(store) == []
    assert queries.genai(store, "org_a", first, as_of) == []
    assert session.prepared == [
        "SELECT ticket_date FROM ks.ticket_dates WHERE scope = 'all' LIMIT ?",
        "SELECT ticket_date, severity, tickets, sla_breached FROM ks.tickets_by_org "
        "WHERE org_id = ? AND (ticket_date) >= (?) AND (ticket_date) <= (?)",
        "SELECT org_id, month, currency, fx_applied, subtotal_usd, credits_usd, taxes_usd, "
        "net_revenue_usd FROM ks.revenue_by_org WHERE org_id = ?",
        "SELECT org_id FROM ks.revenue_orgs WHERE scope = 'all'",
        "SELECT usage_date, total_tokens, genai_cost_usd, cost_per_1k_tokens_usd "
        "FROM ks.genai_tokens_by_org WHERE org_id = ? "
        "AND (usage_date) >= (?) AND (usage_date) <= (?)",
    ]
    assert [params for _, params in session.executed] == [
        (1,),
        ("org_a", as_of - dt.timedelta(days=29), as_of),
        ("org_a",),
        (),
        ("org_a", first, as_of),
    ]


def test_the_derived_ddl_keys_each_table_and_index_as_declared() -> None:
    statements = table_ddl("ks")
    assert [s.split()[5] for s in statements] == [
        "ks.daily_usage_by_org",
        "ks.usage_dates",
        "ks.orgs",
        "ks.revenue_by_org",
        "ks.revenue_orgs",
        "ks.tickets_by_org",
        "ks.ticket_dates",
        "ks.ticket_orgs",
        "ks.genai_tokens_by_org",
        "ks.genai_orgs",
        "ks.cost_anomalies_by_day",
        "ks.anomaly_dates",
        "ks.schema_version",
    ]
    usage, dates, orgs, revenue, _, tickets, ticket_dates, _, genai, _, anomalies, _, _ = statements
    assert "PRIMARY KEY ((org_id), usage_date, service)" in usage
    assert usage.endswith("WITH CLUSTERING ORDER BY (usage_date ASC, service ASC)")
    assert "quality_flags frozen<map<text, int>>" in usage and "genai_tokens bigint" in usage
    assert "PRIMARY KEY ((scope), usage_date)" in dates and dates.endswith("(usage_date DESC)")
    assert "PRIMARY KEY ((scope), org_id)" in orgs and orgs.endswith("(org_id ASC)")
    assert "PRIMARY KEY ((org_id), month)" in revenue and revenue.endswith("(month ASC)")
    for column in ("month date", "credit_note boolean", "net_revenue_usd double"):
        assert column in revenue
    assert "PRIMARY KEY ((org_id), ticket_date, severity)" in tickets
    assert tickets.endswith("(ticket_date ASC, severity ASC)") and "tickets bigint" in tickets
    assert "PRIMARY KEY ((scope), ticket_date)" in ticket_dates
    assert ticket_dates.endswith("(ticket_date DESC)")
    assert "PRIMARY KEY ((org_id), usage_date)" in genai and "total_tokens bigint" in genai
    assert "PRIMARY KEY ((usage_date), org_id, service)" in anomalies
    assert "flagged_methods frozen<set<text>>" in anomalies
    assert anomalies.endswith("(org_id ASC, service ASC)")
    assert sorted(table_names()) == VERSION_3_TABLES
    assert table_names((DAILY,)) == ("daily_usage_by_org", "usage_dates", "orgs", "schema_version")


def test_the_partition_sink_pickles_with_its_settings_and_never_shows_the_password() -> None:
    settings = CassandraSettings(
        contact_points=(("db.example", 9142),), keyspace="other", username="u", password="S3cr3t!x"
    )
    store = CassandraServingStore(RecordingSession(), "finops_ks", settings=settings)  # type: ignore[arg-type]
    sink = store.partition_sink(DAILY)
    assert isinstance(sink, CassandraPartitionSink)
    copy = pickle.loads(pickle.dumps(sink))
    assert copy == sink
    assert copy.table == "daily_usage_by_org"
    assert copy.settings.keyspace == "finops_ks"  # the store's keyspace, wherever the sink runs
    assert copy.settings.password == "S3cr3t!x" and "S3cr3t!x" not in repr(copy)
    assert store.kind == "cassandra"
    assert CassandraServingStore(RecordingSession(), "ks").partition_sink(DAILY) is None  # type: ignore[arg-type]


def test_a_store_on_astra_settings_is_of_kind_astra(tmp_path: Path) -> None:
    bundle = tmp_path / "secure-connect.zip"
    bundle.write_bytes(b"zip")
    settings = CassandraSettings(
        contact_points=(), astra_secure_bundle_path=bundle, astra_token="AstraCS:t"
    )
    store = CassandraServingStore(RecordingSession(), "ks", settings=settings)  # type: ignore[arg-type]
    assert store.kind == "astra"
    assert "AstraDB" in store.where


# ---- against a node ----------------------------------------------------------------------------


def _schema_snapshot(session: object, keyspace: str) -> dict[str, object]:
    execute = session.execute  # type: ignore[attr-defined]
    tables = sorted(
        row.table_name
        for row in execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (keyspace,)
        )
    )
    columns = sorted(
        (row.table_name, row.column_name, row.kind, row.position, row.type, row.clustering_order)
        for row in execute(
            "SELECT table_name, column_name, kind, position, type, clustering_order "
            "FROM system_schema.columns WHERE keyspace_name = %s",
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


@pytest.mark.cassandra
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
    assert first["tables"] == sorted(table_names()) == VERSION_3_TABLES
    assert first["replication"] == {
        "class": "org.apache.cassandra.locator.SimpleStrategy",
        "replication_factor": "1",
    }
    columns: Any = first["columns"]
    usage = {c[1]: c[2:] for c in columns if c[0] == DAILY.name}
    assert usage["org_id"] == ("partition_key", 0, "text", "none")
    assert usage["usage_date"] == ("clustering", 0, "date", "asc")
    assert usage["service"] == ("clustering", 1, "text", "asc")
    assert usage["quality_flags"] == ("regular", -1, "frozen<map<text, int>>", "none")
    assert len(usage) == len(DAILY.columns) == 12
    dates = {c[1]: c[2:] for c in columns if c[0] == "usage_dates"}
    assert dates == {
        "scope": ("partition_key", 0, "text", "none"),
        "usage_date": ("clustering", 0, "date", "desc"),
    }
    orgs = {c[1]: c[2:] for c in columns if c[0] == "orgs"}
    assert orgs == {
        "scope": ("partition_key", 0, "text", "none"),
        "org_id": ("clustering", 0, "text", "asc"),
    }
    tickets = {c[1]: c[2:] for c in columns if c[0] == TICKETS_BY_ORG.name}
    assert tickets["org_id"] == ("partition_key", 0, "text", "none")
    assert tickets["ticket_date"] == ("clustering", 0, "date", "asc")
    assert tickets["severity"] == ("clustering", 1, "text", "asc")
    revenue = {c[1]: c[2:] for c in columns if c[0] == REVENUE_BY_ORG.name}
    assert revenue["month"] == ("clustering", 0, "date", "asc")
    assert revenue["usd_rate_forced"] == ("regular", -1, "boolean", "none")
    genai = {c[1]: c[2:] for c in columns if c[0] == GENAI_TOKENS_BY_ORG.name}
    assert genai["usage_date"] == ("clustering", 0, "date", "asc")
    assert {c[1]: c[2:] for c in columns if c[0] == "ticket_dates"}["ticket_date"] == (
        "clustering",
        0,
        "date",
        "desc",
    )
    anomalies = {c[1]: c[2:] for c in columns if c[0] == ANOMALIES_BY_DAY.name}
    assert anomalies["usage_date"] == ("partition_key", 0, "date", "none")
    assert anomalies["org_id"] == ("clustering", 0, "text", "asc")
    assert anomalies["service"] == ("clustering", 1, "text", "asc")
    assert anomalies["flagged_methods"] == ("regular", -1, "frozen<set<text>>", "none")
    assert {c[1]: c[2:] for c in columns if c[0] == "anomaly_dates"}["usage_date"] == (
        "clustering",
        0,
        "date",
        "desc",
    )
    assert version == SCHEMA_VERSION == 3


@pytest.mark.cassandra
def test_the_derived_schema_of_the_daily_table_is_the_hand_written_version_1(
    cassandra_node: CassandraNode,
) -> None:
    """Versions 2 and 3 only add tables: version 1's are derived exactly as they were written."""
    derived, written = cassandra_node.new_keyspace("derived"), cassandra_node.new_keyspace("v1")
    session = connect(cassandra_node.settings(derived))
    try:
        apply_schema(session, derived, tables=(DAILY,))
        apply_schema(session, written, tables=())  # the keyspace and the version table only
        for statement in VERSION_1_DDL:
            session.execute(statement.format(ks=written))
        assert _schema_snapshot(session, derived) == _schema_snapshot(session, written)
        apply_schema(session, written)  # a version 1 keyspace gains the new tables
        assert _schema_snapshot(session, written)["tables"] == VERSION_3_TABLES
    finally:
        close_session(session)


@pytest.mark.spark
@pytest.mark.cassandra
def test_finops_load_twice_gives_the_gold_rows_once_and_the_queries_match_the_delta_table(
    cassandra_node: CassandraNode,
    spark: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`finops load` with its default engine (Spark: here it borrows the test run's session
    instead of starting one per load)."""
    from tests.test_serving_contract import GOLD, SERVED

    lake = LakeLayout(tmp_path / "lake")
    delta = DeltaLake(lake)
    for table, rows in SERVED.items():
        delta.write_table(table.source, rows, WriteMode.OVERWRITE)
    gold = delta.read_table(DAILY_USAGE.table)
    reference = queries.RowsReader(gold, tables={t: delta.read_table(t.source) for t in SERVED})
    loaded = sum(len(rows) for rows in SERVED.values())
    keyspace = cassandra_node.new_keyspace("load")
    monkeypatch.chdir(tmp_path)  # no stray ./cred.env
    monkeypatch.setenv("CASSANDRA_CONTACT_POINTS", cassandra_node.contact_point)
    monkeypatch.setenv("CASSANDRA_KEYSPACE", keyspace)
    for _ in range(2):
        assert main(["load", "--lake", str(lake.root), "--serving", "cassandra"]) == 0
        assert f"loaded {loaded} gold rows into cassandra" in capsys.readouterr().out

    store = open_cassandra_store(cassandra_node, keyspace)
    try:
        assert store.count(DAILY) == len(gold) == len(GOLD)
        orgs = sorted({str(row["org_id"]) for row in gold})
        dates = sorted({day for row in gold if isinstance(day := row["usage_date"], dt.date)})
        for org in orgs:
            assert queries.daily_usage(store, org, dates[0], dates[-1]) == queries.daily_usage(
                reference, org, dates[0], dates[-1]
            )
            assert queries.top_services(store, org) == queries.top_services(reference, org)
            for day in dates[::5]:
                assert queries.org_day(store, org, day) == queries.org_day(reference, org, day)
            assert queries.tickets(store, org) == queries.tickets(reference, org)
            assert queries.revenue(store, org) == queries.revenue(reference, org)
            assert queries.genai(store, org) == queries.genai(reference, org)
        assert queries.revenue(store) == queries.revenue(reference)
        for table, rows in SERVED.items():  # two loads: every row once
            assert store.count(table) == len(rows)
    finally:
        store.close()

    assert (
        main(["query", "q2", "--org", orgs[0], "--serving", "cassandra", "--days", "7", "--json"])
        == 0
    )
    expected = [
        {"service": c.service, "total_cost_usd": json_value(c.total_cost_usd)}
        for c in queries.top_services(reference, orgs[0], days=7)
    ]
    assert json.loads(capsys.readouterr().out) == expected


@pytest.mark.cassandra
def test_a_load_deletes_the_rows_and_index_values_a_new_gold_no_longer_has(
    cassandra_node: CassandraNode,
) -> None:
    rows = gold_rows(orgs=4, days=6)
    last_day = max(day for row in rows if isinstance(day := row["usage_date"], dt.date))
    kept = [row for row in rows if row["usage_date"] != last_day and row["org_id"] != "org_00002"]
    store = open_cassandra_store(cassandra_node, cassandra_node.new_keyspace("replace"))
    try:
        assert store.replace(DAILY, rows) == len(rows) == 120
        assert store.replace(DAILY, iter(kept)) == len(kept) == 75
        reference = queries.RowsReader(kept)
        assert store.count(DAILY) == len(kept)
        assert store.index_values(DAILY, "usage_date") == reference.index_values(
            DAILY, "usage_date"
        )
        assert store.index_values(DAILY, "org_id") == ["org_00000", "org_00001", "org_00003"]
        assert store.read_slice(DAILY, ("org_00002",)) == []
        for org in ("org_00000", "org_00003"):
            assert store.read_slice(DAILY, (org,)) == reference.read_slice(DAILY, (org,))
        assert queries.latest_usage_date(store) == last_day - dt.timedelta(days=1)
        assert store.prune(DAILY, kept) == 0  # a load of the same rows deletes nothing
    finally:
        store.close()


@pytest.mark.cassandra
def test_a_password_node_accepts_the_right_login_and_refuses_a_wrong_one_without_echoing_it(
    cassandra_auth_node: CassandraNode,
) -> None:
    keyspace = cassandra_auth_node.new_keyspace("auth")
    store = open_cassandra_store(cassandra_auth_node, keyspace)
    try:
        rows = gold_rows(orgs=3, days=4)
        assert store.upsert(DAILY, rows) == len(rows) == 60
        assert store.count(DAILY) == 60
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


@pytest.mark.cassandra
def test_the_partition_sink_loads_from_an_unpickled_copy_with_its_own_session(
    cassandra_auth_node: CassandraNode,
) -> None:
    """What a Spark executor does: unpickle the sink, call it once per partition of rows."""
    keyspace = cassandra_auth_node.new_keyspace("sink")
    rows = gold_rows(orgs=4, days=6)
    store = open_cassandra_store(cassandra_auth_node, keyspace)
    try:
        sink = store.partition_sink(DAILY)
        assert sink is not None
        shipped = pickle.loads(pickle.dumps(sink))
        halves = rows[: len(rows) // 2], rows[len(rows) // 2 :]
        assert [shipped(iter(half)) for half in halves] == [len(half) for half in halves]
        assert shipped(iter(halves[0])) == len(halves[0])  # a retried partition: idempotent
        assert store.count(DAILY) == len(rows)
        reference = queries.RowsReader(rows)
        for org in sorted({str(row["org_id"]) for row in rows}):
            assert store.read_slice(DAILY, (org,)) == reference.read_slice(DAILY, (org,))
        assert store.index_values(DAILY, "usage_date") == reference.index_values(
            DAILY, "usage_date"
        )
    finally:
        store.close()


@pytest.mark.cassandra
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

    def rows_that_wait_for_the_outage() -> Iterator[dict[str, object]]:
        """Yield the first chunk, then hold the load until the node is down."""
        for position, row in enumerate(rows):
            if position == chunk:
                first_chunk_written.set()
                node_stopped.wait(timeout=120)
            yield row

    def load() -> None:
        try:
            outcome.append(store.upsert(DAILY, rows_that_wait_for_the_outage()))
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
    assert "failed to write daily_usage_by_org rows" in message and "after 3 attempts" in message

    node.restart()
    store = open_cassandra_store(node, keyspace)
    try:
        assert store.count(DAILY) == chunk  # the first chunk survived the outage
        assert store.upsert(DAILY, rows) == len(rows)
        assert store.count(DAILY) == len(rows) == 4_000
        for org in ("org_00000", "org_00003", "org_00007"):
            expected = [row for row in rows if row["org_id"] == org]
            assert len(expected) == 500
            got = queries.daily_usage(store, org, dt.date(2025, 1, 1), dt.date(2025, 12, 31))
            assert got == expected
    finally:
        store.close()


class _Quiet:
    """A Progress that reports nothing."""

    def stage_started(self, stage: str) -> None: ...

    def update(self, stage: str, message: str) -> None: ...

    def stage_finished(self, result: object) -> None: ...


@pytest.mark.spark
@pytest.mark.cassandra
def test_load_serving_with_spark_writes_cassandra_from_the_executors_through_the_sink(
    spark: Any, cassandra_node: CassandraNode, tmp_path: Path
) -> None:
    """`usecases.load_serving` hands the store's partition sink to `SparkEngine.export`: every
    Spark partition is upserted by an unpickled sink with its own session."""
    from adapters.spark.engine import SparkEngine
    from finops_core import usecases
    from tests.test_serving_contract import GOLD, SERVED

    lake = LakeLayout(tmp_path / "lake")
    for table, rows in SERVED.items():
        DeltaLake(lake).write_table(table.source, rows, WriteMode.OVERWRITE)
    loaded = sum(len(rows) for rows in SERVED.values())
    store = open_cassandra_store(cassandra_node, cassandra_node.new_keyspace("export"))
    try:
        assert isinstance(store.partition_sink(DAILY), CassandraPartitionSink)
        stale = {**GOLD[0], "org_id": "org_gone_from_gold"}  # a row an earlier gold had
        assert store.upsert(DAILY, [stale]) == 1
        result = usecases.load_serving(SparkEngine(spark), lake, store, _Quiet())
        assert result.counts == {"rows_upserted": loaded, "serving_rows": loaded}
        assert all(store.count(table) == len(rows) for table, rows in SERVED.items())
        reference = queries.RowsReader(GOLD)
        for org in sorted({str(row["org_id"]) for row in GOLD}):
            assert store.read_slice(DAILY, (org,)) == reference.read_slice(DAILY, (org,))
            assert queries.top_services(store, org) == queries.top_services(reference, org)
        assert store.index_values(DAILY, "org_id") == reference.index_values(DAILY, "org_id")
    finally:
        store.close()
