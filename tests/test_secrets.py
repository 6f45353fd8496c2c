"""The Astra token and the Cassandra password never leak: not in repr/str, errors or logs."""

from __future__ import annotations

import logging
import pickle
import socket
import zipfile
from pathlib import Path

import pytest

from adapters.cassandra.session import connect
from adapters.cassandra.settings import CassandraSettings
from entrypoints.cli import main
from finops_core.errors import ConfigurationError, ServingUnavailable

PASSWORD = "pw-Secr3t-4d1f9c"
TOKEN = "AstraCS:tokenSecr3t:0123456789abcdef"


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def assert_secret_free(text: str) -> None:
    assert PASSWORD not in text
    assert TOKEN not in text
    assert "Secr3t" not in text


@pytest.fixture
def cred_file(tmp_path: Path) -> Path:
    bundle = tmp_path / "secure-connect-db.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("config.json", "{}")  # not a usable bundle: connecting must fail
    path = tmp_path / "cred.env"
    path.write_text(
        "# test credentials\n"
        f"CASSANDRA_CONTACT_POINTS=127.0.0.1:{closed_port()}\n"
        "CASSANDRA_USERNAME=analyst\n"
        f"CASSANDRA_PASSWORD='{PASSWORD}'\n"
        "CASSANDRA_KEYSPACE=cloud_analytics\n"
        f"export ASTRA_DB_SECURE_BUNDLE_PATH={bundle}\n"
        f'ASTRA_DB_TOKEN="{TOKEN}"\n'
        "ASTRA_DB_KEYSPACE=finops\n"
    )
    return path


def test_settings_read_from_cred_env_hold_the_secrets_but_never_show_them(cred_file: Path) -> None:
    cassandra = CassandraSettings.cassandra_from_env(env={}, cred_file=cred_file)
    astra = CassandraSettings.astra_from_env(env={}, cred_file=cred_file)
    assert cassandra.password == PASSWORD and cassandra.username == "analyst"
    assert astra.astra_token == TOKEN and astra.keyspace == "finops" and astra.username == "token"
    for settings in (cassandra, astra):
        assert_secret_free(repr(settings))
        assert_secret_free(str(settings))
        assert_secret_free(f"{settings}")
        assert_secret_free(settings.hosts)
    # Spark executors receive the settings pickled: the secret must survive the trip.
    assert pickle.loads(pickle.dumps(cassandra)).password == PASSWORD


def test_the_process_environment_overrides_cred_env(cred_file: Path) -> None:
    settings = CassandraSettings.cassandra_from_env(
        env={"CASSANDRA_CONTACT_POINTS": "10.0.0.1:9142,10.0.0.2", "CASSANDRA_KEYSPACE": "other"},
        cred_file=cred_file,
    )
    assert settings.contact_points == (("10.0.0.1", 9142), ("10.0.0.2", 9042))
    assert settings.keyspace == "other"
    assert settings.password == PASSWORD


def test_a_refused_connection_names_the_host_but_not_the_password(
    cred_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = CassandraSettings.cassandra_from_env(env={}, cred_file=cred_file)
    with pytest.raises(ServingUnavailable) as refused:
        connect(settings)
    host, port = settings.contact_points[0]
    assert f"{host}:{port}" in str(refused.value)
    assert_secret_free(str(refused.value))
    assert_secret_free(repr(refused.value))
    assert caplog.records  # the driver did log its attempts
    assert_secret_free(caplog.text)


def test_an_unusable_astra_bundle_fails_without_the_token(
    cred_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = CassandraSettings.astra_from_env(env={}, cred_file=cred_file)
    with pytest.raises(ServingUnavailable) as failed:
        connect(settings)
    assert "AstraDB (secure bundle secure-connect-db.zip)" in str(failed.value)
    assert_secret_free(str(failed.value))
    assert_secret_free(caplog.text)


def test_missing_astra_settings_are_named_without_echoing_the_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as missing:
        CassandraSettings.astra_from_env(
            env={"ASTRA_DB_TOKEN": TOKEN}, cred_file=tmp_path / "none.env"
        )
    assert "does not exist" in str(missing.value)
    with pytest.raises(ConfigurationError) as missing:
        CassandraSettings.astra_from_env(env={"ASTRA_DB_TOKEN": TOKEN})
    assert "ASTRA_DB_SECURE_BUNDLE_PATH" in str(missing.value)
    assert_secret_free(str(missing.value))


def test_the_cli_error_for_an_unreachable_cluster_carries_no_secret(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CASSANDRA_CONTACT_POINTS", f"127.0.0.1:{closed_port()}")
    monkeypatch.setenv("CASSANDRA_USERNAME", "analyst")
    monkeypatch.setenv("CASSANDRA_PASSWORD", PASSWORD)
    code = main(
        [
            "--verbose",
            "query",
            "day",
            "--org",
            "o",
            "--date",
            "2025-07-01",
            "--serving",
            "cassandra",
        ]
    )
    captured = capsys.readouterr()
    assert code == 5
    assert "Cannot connect to Cassandra at 127.0.0.1:" in captured.err
    assert_secret_free(captured.out + captured.err)  # --verbose prints the traceback too
    assert_secret_free(caplog.text)
