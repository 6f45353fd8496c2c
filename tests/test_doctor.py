"""`finops doctor` on the embedded stores (the Cassandra and AstraDB paths: tests/test_astra.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from adapters.sqlite.serving import SCHEMA_VERSION
from entrypoints.cli import main
from entrypoints.config import SERVING_KINDS, SERVING_SETTING_PREFIXES, Settings, shown_settings
from finops_core.errors import ServingUnavailable
from finops_core.serving import SERVING_TABLES


def test_every_serving_kind_names_the_settings_doctor_shows() -> None:
    assert tuple(SERVING_SETTING_PREFIXES) == SERVING_KINDS


def test_a_secret_setting_shows_only_whether_it_is_set() -> None:
    settings = Settings(cassandra_username="analyst", cassandra_password="s3cr3t-value")
    shown = {name: value for name, _env, value in shown_settings(settings, "cassandra")}
    assert shown["cassandra_username"] == "analyst"
    assert shown["cassandra_password"] == "(set; a secret, not shown)"
    assert "s3cr3t-value" not in repr(shown_settings(settings, "cassandra"))
    assert {name for name, _e, _v in shown_settings(Settings(), "astra")} == {
        "astra_db_secure_bundle_path",
        "astra_db_token",
        "astra_db_keyspace",
    }


def test_doctor_before_a_load_says_there_is_no_store_and_after_it_lists_every_table(
    cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = str(cli / "lake")
    assert main(["doctor", "--lake", lake]) == ServingUnavailable.exit_code
    assert "There is no SQLite serving store" in capsys.readouterr().err
    assert main(["generate", "--lake", lake, "--scale", "0.02"]) == 0
    assert main(["batch", "--lake", lake, "--engine", "memory"]) == 0
    assert main(["load", "--lake", lake, "--engine", "memory"]) == 0
    capsys.readouterr()
    assert main(["doctor", "--lake", lake]) == 0
    out = capsys.readouterr().out
    expected = len(SERVING_TABLES) + 1  # and the schema version table
    assert f"{expected} of {expected} serving tables, schema version {SCHEMA_VERSION}" in out
    assert f"SQLite {sqlite3.sqlite_version}" in out
    assert "ready: `finops query` answers from this store" in out

    database = Path(lake) / "serving" / "finops.sqlite"
    with sqlite3.connect(database) as connection:
        connection.execute(f"DROP TABLE {SERVING_TABLES[1].name}")
    assert main(["doctor", "--lake", lake]) == 1
    out = capsys.readouterr().out
    assert f"missing tables: {SERVING_TABLES[1].name}; run `finops load --serving sqlite`" in out
