"""The AstraDB path end to end, against the local stand-in of `tests.astra_standin`: a secure
connect bundle, the metadata service and the SNI proxy with mutual TLS, and the token as the
password of the role `token` on a real Cassandra node with PasswordAuthenticator.

Without a node: every failure of the bundle or of the metadata service (the driver meets them
before any CQL connection), and Astra's rate limit on a session that rejects requests.
With the node: `finops load` and every question through the CLI, equal to SQLite's answers; a
wrong token, a proxy that is down, a keyspace that was not created in the Astra UI.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.cassandra.schema import table_names
from adapters.cassandra.serving import CassandraServingStore, RetryPolicy
from entrypoints.cli import main
from finops_core.errors import ConfigurationError, ServingUnavailable
from finops_core.serving import DAILY_USAGE_BY_ORG
from tests.astra_standin import (
    AstraStandIn,
    MetadataService,
    SniProxy,
    application_token,
    make_certificates,
    metadata_document,
    running_standin,
    write_bundle,
)
from tests.small_lakes import memory_lake
from tests.test_serving_cassandra import SUPERUSER, CassandraNode, cassandra_auth_node, gold_rows

__all__ = ["cassandra_auth_node"]  # the shared fixture, imported so that pytest finds it here

UNAVAILABLE = ServingUnavailable.exit_code
DOWNLOAD = "download the bundle again from the database's Connect page in the Astra UI"


def _cred_env(work: Path, bundle: Path, token: str, keyspace: str | None = None) -> None:
    lines = [f"ASTRA_DB_SECURE_BUNDLE_PATH={bundle}", f"ASTRA_DB_TOKEN={token}"]
    if keyspace is not None:
        lines.append(f"ASTRA_DB_KEYSPACE={keyspace}")
    (work / "cred.env").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _finops(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("finops: "), err
    assert "Traceback" not in err
    return lines[0]


# ---- without a node: the bundle and the metadata service ---------------------------------------


class Offline:
    """A metadata service and an SNI proxy that routes nowhere: enough for the driver's steps
    before the first CQL connection."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.certificates = make_certificates(("host-1",))
        self.proxy = SniProxy(self.certificates, {})
        self.metadata = MetadataService(
            self.certificates, metadata_document("dc-test", ["host-1"], self.proxy.port)
        )
        self.token = application_token()
        self.bundle = self.variant("secure-connect-test.zip")

    def variant(self, name: str, **changes: Any) -> Path:
        arguments: dict[str, Any] = {
            "ca": self.certificates.ca.cert,
            "client": self.certificates.client,
            "metadata_port": self.metadata.port,
            "keyspace": "cloud_analytics",
            "local_dc": "dc-test",
        }
        arguments.update(changes)
        return write_bundle(self.folder / name, **arguments)

    def close(self) -> None:
        self.proxy.stop()
        self.metadata.stop()


@pytest.fixture
def offline(tmp_path: Path) -> Iterator[Offline]:
    standin = Offline(tmp_path / "astra")
    yield standin
    standin.close()


def _doctor_fails(capsys: pytest.CaptureFixture[str], work: Path, bundle: Path, token: str) -> str:
    _cred_env(work, bundle, token)
    code, out, err = _finops(capsys, "doctor", "--serving", "astra", "--lake", str(work / "lake"))
    assert code == UNAVAILABLE, (out, err)
    assert token not in out + err
    return _one_line_error(err)


def test_the_bundle_is_laid_out_as_astra_ships_it_and_the_metadata_needs_its_certificate(
    offline: Offline,
) -> None:
    import ssl
    import urllib.request

    with zipfile.ZipFile(offline.bundle) as bundle:
        assert sorted(bundle.namelist()) == ["ca.crt", "cert", "config.json", "cqlshrc", "key"]
        config = json.loads(bundle.read("config.json"))
    assert config["host"] == "127.0.0.1"
    assert config["port"] == offline.metadata.port
    assert config["keyspace"] == "cloud_analytics"
    assert config["localDC"] == "dc-test"
    url = f"https://127.0.0.1:{offline.metadata.port}/metadata"
    anonymous = ssl.create_default_context(cadata=offline.certificates.ca.cert.decode())
    anonymous.check_hostname = False
    with pytest.raises(OSError):  # no client certificate: the service refuses the handshake
        urllib.request.urlopen(url, context=anonymous, timeout=5).read()


def test_a_corrupt_bundle_is_one_line_naming_the_file_and_what_to_do(
    offline: Offline, cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt = offline.folder / "corrupt.zip"
    corrupt.write_bytes(offline.bundle.read_bytes()[:100])
    line = _doctor_fails(capsys, cli, corrupt, offline.token)
    assert f"the secure connect bundle {corrupt} is not a readable zip file" in line
    assert DOWNLOAD in line


def test_a_bundle_without_config_json_says_which_file_is_missing(
    offline: Offline, cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    partial = offline.folder / "partial.zip"
    with zipfile.ZipFile(offline.bundle) as full, zipfile.ZipFile(partial, "w") as kept:
        for name in full.namelist():
            if name != "config.json":
                kept.writestr(name, full.read(name))
    line = _doctor_fails(capsys, cli, partial, offline.token)
    assert f"the secure connect bundle {partial} has no config.json" in line


def test_a_bundle_whose_ca_is_not_the_servers_says_the_bundle_is_of_another_database(
    offline: Offline, cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = make_certificates()
    bundle = offline.variant("other-ca.zip", ca=other.ca.cert)
    line = _doctor_fails(capsys, cli, bundle, offline.token)
    url = f"https://127.0.0.1:{offline.metadata.port}/metadata"
    assert f"the certificate of {url} is not signed by the bundle's ca.crt" in line
    assert DOWNLOAD in line


def test_a_client_certificate_the_database_does_not_trust_is_named(
    offline: Offline, cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = make_certificates()
    bundle = offline.variant("other-client.zip", client=other.client)
    line = _doctor_fails(capsys, cli, bundle, offline.token)
    assert "refused the bundle's client certificate" in line
    assert DOWNLOAD in line


def test_a_metadata_service_that_is_down_says_to_check_the_database_is_active(
    offline: Offline, cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    offline.metadata.stop()
    line = _doctor_fails(capsys, cli, offline.bundle, offline.token)
    url = f"https://127.0.0.1:{offline.metadata.port}/metadata"
    assert f"{url} did not answer (ConnectionRefusedError)" in line
    assert "database is active" in line


# ---- without a node: Astra's rate limit ---------------------------------------------------------


class Future:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    def add_callbacks(
        self, callback: Any, errback: Any, callback_args: Any = (), errback_args: Any = ()
    ) -> None:
        if self.error is None:
            callback([], *callback_args)
        else:
            errback(self.error, *errback_args)


class RateLimitedSession:
    """Rejects the first `rejections` requests as Astra does over its rate limit."""

    def __init__(self, rejections: int) -> None:
        self.rejections = rejections
        self.requests: list[Any] = []

    def prepare(self, cql: str) -> str:
        return cql.replace("?", "%s")  # the driver binds a plain statement's %s client-side

    def execute_async(self, statement: Any, params: Any = None) -> Future:
        from cassandra.protocol import OverloadedErrorMessage

        self.requests.append(statement)
        if len(self.requests) <= self.rejections:
            message = "Rate limit reached, please consult our documentation at https://astra.dev/rate-limit"
            return Future(OverloadedErrorMessage(0x1001, message, None))
        return Future(None)


def test_requests_rejected_by_the_rate_limit_are_retried_and_every_row_is_written_once() -> None:
    from cassandra.query import BatchStatement

    rows = gold_rows(orgs=3, days=4)  # 60 rows in 3 partitions
    session = RateLimitedSession(rejections=2)
    store = CassandraServingStore(
        session, "ks", concurrency=1, retry=RetryPolicy(attempts=4, base_delay_s=0.001)
    )
    assert store.upsert(DAILY_USAGE_BY_ORG, rows) == len(rows)
    writes = [r for r in session.requests if isinstance(r, BatchStatement)]
    accepted = writes[2:]  # the first two were rejected, then retried
    orgs = [
        {
            re.search(r"VALUES \('([^']*)'", entry[1]).group(1)
            for entry in batch._statements_and_parameters
        }  # type: ignore[union-attr]
        for batch in accepted
    ]
    assert sorted(o for batch in orgs for o in batch) == ["org_00000", "org_00001", "org_00002"]
    assert all(len(batch) == 1 for batch in orgs)  # each batch writes one partition (org_id)
    assert sum(len(batch._statements_and_parameters) for batch in accepted) == len(rows)
    assert len(accepted) == 3  # 20 rows per partition, 20 rows per batch


def test_a_rate_limit_that_does_not_lift_ends_in_one_clear_error_after_the_retries() -> None:
    session = RateLimitedSession(rejections=10**6)
    store = CassandraServingStore(
        session,
        "ks",
        concurrency=1,
        retry=RetryPolicy(attempts=3, base_delay_s=0.001),
        where="AstraDB (test)",
    )
    with pytest.raises(ServingUnavailable) as failure:
        store.upsert(DAILY_USAGE_BY_ORG, gold_rows(orgs=1, days=1))
    message = str(failure.value)
    assert "after 3 attempts" in message
    assert "rejected requests as overloaded or rate-limited (Rate limit reached" in message
    assert "wait, then rerun (loads are idempotent)" in message
    assert len(session.requests) == 3


# ---- with the node -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def astra(
    cassandra_auth_node: CassandraNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AstraStandIn]:
    node = (cassandra_auth_node.host, cassandra_auth_node.port)
    keyspace = cassandra_auth_node.new_keyspace("astra")
    with running_standin(tmp_path_factory.mktemp("astra"), node, SUPERUSER, keyspace) as standin:
        yield standin


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated landing through the memory engine's batch, loaded into SQLite."""
    return memory_lake(tmp_path_factory.mktemp("astra-lake"), "0.05")


def _questions(lake: Path) -> list[list[str]]:
    """Every question's arguments, for the org with the most cost and its days."""
    from adapters.sqlite.serving import SqliteServingStore
    from finops_core import queries

    store = SqliteServingStore(lake / "serving" / "finops.sqlite", create_schema=False)
    try:
        orgs = queries.known_orgs(store)
        first, last = queries.usage_dates(store) or (dt.date.min, dt.date.min)
    finally:
        store.close()
    assert len(orgs) >= 2
    org = orgs[0]
    middle = first + (last - first) / 2
    return [
        ["q1", "--org", org, "--from", first.isoformat(), "--to", last.isoformat()],
        ["q2", "--org", org, "--days", "30"],
        ["q3", "--org", org, "--days", "90"],
        ["q4", "--org", org],
        ["q4"],
        ["q5", "--org", org],
        ["anomalies"],
        ["day", "--org", org, "--date", middle.isoformat()],
    ]


@pytest.mark.cassandra
def test_load_and_every_question_through_astra_give_sqlites_answers_and_never_show_the_token(
    astra: AstraStandIn,
    small_lake: Path,
    cli: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    _cred_env(cli, astra.bundle, astra.token, astra.keyspace)
    lake = str(small_lake)
    seen: list[str] = []
    code, out, err = _finops(
        capsys, "--verbose", "load", "--lake", lake, "--engine", "memory", "--serving", "astra"
    )
    seen += [out, err]
    assert code == 0, err
    assert "into astra" in out
    answered = 0
    for question in _questions(small_lake):
        expected = _finops(capsys, "query", *question, "--lake", lake, "--json")
        actual = _finops(capsys, "query", *question, "--lake", lake, "--json", "--serving", "astra")
        seen += [*actual[1:], *expected[1:]]
        assert expected[0] == actual[0] == 0, (question, expected, actual)
        assert json.loads(actual[1]) == json.loads(expected[1]), question
        answered += len(json.loads(actual[1]))
    assert answered > 100  # the questions answered with rows, not only with empty lists
    code, out, err = _finops(capsys, "doctor", "--serving", "astra", "--lake", lake)
    seen += [out, err]
    assert code == 0, err
    assert "Cassandra 5.0" in out
    tables = len(table_names())
    assert f"{astra.keyspace}: {tables} of {tables} serving tables, schema version 3" in out
    assert "ASTRA_DB_TOKEN) = (set; a secret, not shown)" in out
    # The connections went through the SNI proxy, named by the node's host id.
    assert astra.host_id in astra.proxy.server_names
    records = [
        p.read_text(encoding="utf-8")
        for p in small_lake.rglob("*")
        if p.is_file() and p.suffix in (".json", ".jsonl", ".log", ".txt")
    ]
    logs = [record.getMessage() for record in caplog.records]
    assert not [text for text in seen + records + logs if astra.token in text]


@pytest.mark.cassandra
def test_the_astra_session_writes_and_reads_at_local_quorum(astra: AstraStandIn) -> None:
    from cassandra import ConsistencyLevel
    from cassandra.cluster import EXEC_PROFILE_DEFAULT

    from adapters.cassandra.session import close_session, connect
    from adapters.cassandra.settings import CassandraSettings

    settings = CassandraSettings(
        contact_points=(),
        keyspace=astra.keyspace,
        astra_secure_bundle_path=astra.bundle,
        astra_token=astra.token,
    )
    session = connect(settings)
    try:
        profile = session.cluster.profile_manager.profiles[EXEC_PROFILE_DEFAULT]
        assert profile.consistency_level == ConsistencyLevel.LOCAL_QUORUM
        row = session.execute("SELECT release_version FROM system.local").one()
        assert row.release_version.startswith("5.0")
    finally:
        close_session(session)


@pytest.mark.cassandra
def test_a_wrong_token_is_refused_credentials_and_never_echoed(
    astra: AstraStandIn, cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = application_token()
    _cred_env(cli, astra.bundle, wrong, astra.keyspace)
    for verbose in ([], ["--verbose"]):
        code, out, err = _finops(
            capsys, *verbose, "query", "q4", "--serving", "astra", "--lake", str(cli / "lake")
        )
        assert code == UNAVAILABLE
        line = _one_line_error(err) if not verbose else err
        assert "the credentials were refused" in line
        assert "set ASTRA_DB_TOKEN in cred.env" in line
        assert wrong not in out + err and astra.token not in out + err


@pytest.mark.cassandra
def test_a_keyspace_not_created_in_the_astra_ui_is_named_with_the_ones_that_exist(
    astra: AstraStandIn, small_lake: Path, cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cred_env(cli, astra.bundle, astra.token, "not_created")
    code, out, err = _finops(
        capsys, "load", "--lake", str(small_lake), "--engine", "memory", "--serving", "astra"
    )
    assert code == ConfigurationError.exit_code
    line = _one_line_error(err)
    assert "The keyspace not_created does not exist in AstraDB (secure bundle" in line
    assert astra.keyspace in line  # the keyspace the token may use is listed
    assert "created in the Astra UI" in line


@pytest.mark.cassandra
def test_an_sni_proxy_that_is_down_is_named_with_its_address(
    cassandra_auth_node: CassandraNode,
    tmp_path: Path,
    cli: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    node = (cassandra_auth_node.host, cassandra_auth_node.port)
    keyspace = cassandra_auth_node.new_keyspace("astra_down")
    with running_standin(tmp_path / "astra", node, SUPERUSER, keyspace) as standin:
        standin.proxy.stop()
        line = _doctor_fails(capsys, cli, standin.bundle, standin.token)
        assert f"the database's SNI proxy at 127.0.0.1:{standin.proxy.port} refused" in line
        assert "database is active" in line
