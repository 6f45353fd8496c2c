"""The Astra token and the Cassandra password never leak: not in repr/str, errors or logs."""

from __future__ import annotations

import logging
import pickle
import socket
import zipfile
from pathlib import Path

import attrs
import pytest

from adapters.cassandra.session import connect
from adapters.cassandra.settings import CassandraSettings
from entrypoints.cli import main
from entrypoints.config import Settings, env_names, secret_setting_names
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


# -- a bad value of a secret setting is named, never echoed (issue 15) -----------------------------
# Every setting the configuration declares secret, each with values of every wrong TOML type; the
# value's text must appear nowhere: not on stdout, stderr (even with --verbose and its traceback)
# nor in any log record.

SECRET_SETTINGS = secret_setting_names()
WRONG_TYPES = {
    "an integer": ("918273645", "a whole number"),
    "a float": ("9182.73645", "a number"),
    "an array": ('["pw-918273645"]', "an array"),
    "an inline table": ('{ value = "pw-918273645" }', "a table"),
    "a date-time": ("1981-02-07T13:45:18Z", "a date or date-time"),
    "a boolean": ("true", "true or false"),
}
# The text of each value that must never show (a boolean's text is everywhere, so its own check
# is that the message says what it got without repeating anything of the file's line).
LEAK_MARKERS = {
    "an integer": ("918273645",),
    "a float": ("9182.73645", "73645"),
    "an array": ("918273645",),
    "an inline table": ("918273645",),
    "a date-time": ("1981", "13:45:18"),
    "a boolean": (" = true", " = True"),
}


def test_the_secret_settings_are_the_ones_the_configuration_declares_secret() -> None:
    assert {"cassandra_password", "astra_db_token"} <= set(SECRET_SETTINGS)
    described_secret = {
        field.name for field in attrs.fields(Settings) if "secret" in field.metadata["meaning"]
    }
    assert set(SECRET_SETTINGS) == described_secret
    assert all(attrs.fields_dict(Settings)[name].repr is False for name in SECRET_SETTINGS)


@pytest.fixture
def no_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory (no ./cred.env) and no setting from the shell's environment."""
    monkeypatch.chdir(tmp_path)
    for variable in env_names():
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def _finops(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("kind", sorted(WRONG_TYPES))
@pytest.mark.parametrize("name", SECRET_SETTINGS)
@pytest.mark.parametrize("verbose", [False, True], ids=["plain", "verbose"])
def test_a_secret_of_the_wrong_type_in_the_config_file_is_named_but_never_shown(
    no_settings: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    name: str,
    kind: str,
    verbose: bool,
) -> None:
    caplog.set_level(logging.DEBUG)
    written, got = WRONG_TYPES[kind]
    config = no_settings / "finops.toml"
    config.write_text(f"{name} = {written}\n", encoding="utf-8")
    argv = ["--config", str(config), *(["--verbose"] if verbose else []), "audit"]

    code, output = _finops(argv, capsys)

    assert code == 2
    assert (
        f"finops: The setting {name} (from {config}) is not valid: expected a string, not {got} "
        "(a secret: its value is not shown)." in output.splitlines()
    )
    for marker in LEAK_MARKERS[kind]:
        assert marker not in output
        assert marker not in caplog.text
    assert not (no_settings / "datalake").exists()


@pytest.mark.parametrize("name", SECRET_SETTINGS)
def test_a_secret_of_the_wrong_type_given_to_settings_directly_is_named_but_never_shown(
    name: str,
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings(**{name: 918273645})
    assert str(refused.value) == (
        f"The setting {name} (from Settings) is not valid: expected a string, not a whole "
        "number (a secret: its value is not shown)."
    )


@pytest.mark.parametrize("name", SECRET_SETTINGS)
def test_a_secret_written_without_quotes_is_a_toml_error_naming_the_place_not_the_value(
    no_settings: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    config = no_settings / "finops.toml"
    config.write_text(f"{name} = {PASSWORD}\n", encoding="utf-8")

    code, output = _finops(["--config", str(config), "--verbose", "audit"], capsys)

    assert code == 2
    assert f"The configuration file {config} is not valid TOML (" in output
    assert "line 1" in output
    assert_secret_free(output)


@pytest.mark.parametrize("source", ["environment", "cred.env"])
@pytest.mark.parametrize("name", SECRET_SETTINGS)
def test_a_secret_from_the_environment_never_shows_when_another_setting_is_bad(
    no_settings: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    source: str,
) -> None:
    """Environment values are text, which a secret accepts: no value of its own is invalid
    there, so the check is that the secret rides along unseen when loading fails."""
    caplog.set_level(logging.DEBUG)
    variable = attrs.fields_dict(Settings)[name].metadata["env"]
    secret = PASSWORD if name == "cassandra_password" else TOKEN
    if source == "environment":
        monkeypatch.setenv(variable, secret)
    else:
        (no_settings / "cred.env").write_text(f"{variable}='{secret}'\n", encoding="utf-8")
    monkeypatch.setenv("FINOPS_ENGINE", "flink")

    code, output = _finops(["--verbose", "audit"], capsys)

    assert code == 2
    assert "The setting engine = 'flink' (from the environment variable FINOPS_ENGINE)" in output
    assert_secret_free(output)
    assert_secret_free(caplog.text)
