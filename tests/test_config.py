"""Settings: layered defaults < TOML < cred.env < environment < flags, strict, self-documenting."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from entrypoints.config import (
    Settings,
    check_lake_location,
    load_settings,
    render_settings_table,
    setting_names,
)
from finops_core.errors import ConfigurationError

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, so no stray ./cred.env is read."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_without_any_source_every_setting_has_its_declared_default(workdir: Path) -> None:
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.engine == "spark" and settings.serving == "sqlite"
    assert settings.lake == Path("datalake") and settings.shuffle_partitions == 4


def test_each_layer_overrides_the_one_before(workdir: Path) -> None:
    toml = write(
        workdir / "finops.toml",
        'engine = "memory"\nserving = "cassandra"\nshuffle_partitions = 4\nlake = "from-toml"\n',
    )
    write(
        workdir / "cred.env",
        "FINOPS_SERVING=astra\nFINOPS_SHUFFLE_PARTITIONS=3\nCASSANDRA_KEYSPACE=from_cred\n",
    )
    env = {"FINOPS_SHUFFLE_PARTITIONS": "2", "FINOPS_LAKE": "from-env", "UNRELATED": "x"}
    settings = load_settings(toml, {"lake": Path("from-flag"), "engine": None}, env=env)
    assert settings.engine == "memory"  # TOML (the flag was not given)
    assert settings.serving == "astra"  # cred.env over TOML
    assert settings.cassandra_keyspace == "from_cred"
    assert settings.shuffle_partitions == 2  # the environment over cred.env
    assert settings.lake == Path("from-flag")  # the flag over everything


def test_an_unknown_key_in_the_toml_file_names_the_key_and_the_file(workdir: Path) -> None:
    toml = write(workdir / "finops.toml", 'engine = "memory"\nshufle_partitions = 4\n')
    with pytest.raises(ConfigurationError, match="unknown setting 'shufle_partitions'") as caught:
        load_settings(toml, env={})
    assert str(toml) in str(caught.value)


def test_a_table_in_the_toml_file_is_an_unknown_key_with_a_hint(workdir: Path) -> None:
    toml = write(workdir / "finops.toml", '[spark]\nmaster = "local[2]"\n')
    with pytest.raises(ConfigurationError, match="'spark'.*top-level keys"):
        load_settings(toml, env={})


@pytest.mark.parametrize(
    ("env", "named"),
    [
        (
            {"FINOPS_ENGINE": "flink"},
            "engine = 'flink' (from the environment variable FINOPS_ENGINE)",
        ),
        ({"FINOPS_SHUFFLE_PARTITIONS": "-1"}, "shuffle_partitions = '-1'"),
        ({"FINOPS_SHUFFLE_PARTITIONS": "0"}, "shuffle_partitions = '0'"),
        ({"FINOPS_SERVING": "postgres"}, "serving = 'postgres'"),
        ({"FINOPS_VERBOSE": "maybe"}, "verbose = 'maybe'"),
        ({"CASSANDRA_CONTACT_POINTS": "host:port"}, "cassandra_contact_points"),
        ({"CASSANDRA_KEYSPACE": "drop table;"}, "cassandra_keyspace"),
    ],
)
def test_a_bad_environment_value_names_the_setting_and_its_source(
    workdir: Path, env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env=env)
    assert named in str(caught.value)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("shuffle_partitions = -1\n", "shuffle_partitions = -1"),
        ("shuffle_partitions = true\n", "shuffle_partitions = True"),
        ('shuffle_partitions = "many"\n', "shuffle_partitions = 'many'"),
        ('engine = "flink"\n', "engine = 'flink'"),
        ("verbose = 1\n", "verbose = 1"),
        ("lake = 3\n", "lake = 3"),
    ],
)
def test_a_bad_toml_value_names_the_setting_and_the_file(
    workdir: Path, text: str, named: str
) -> None:
    toml = write(workdir / "finops.toml", text)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(toml, env={})
    assert named in str(caught.value) and str(toml) in str(caught.value)


def test_a_missing_or_broken_toml_file_is_a_configuration_error(workdir: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(workdir / "absent.toml", env={})
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_settings(write(workdir / "bad.toml", "engine = \n"), env={})


def test_environment_text_is_converted_to_the_setting_type(workdir: Path) -> None:
    settings = load_settings(
        env={
            "FINOPS_VERBOSE": "yes",
            "FINOPS_SHUFFLE_PARTITIONS": " 16 ",
            "FINOPS_ENGINE": "Memory",
        }
    )
    assert (
        settings.verbose is True
        and settings.shuffle_partitions == 16
        and settings.engine == "memory"
    )


def test_secrets_never_appear_in_the_settings_repr(workdir: Path) -> None:
    settings = load_settings(
        env={
            "CASSANDRA_USERNAME": "finops",
            "CASSANDRA_PASSWORD": "s3cret-pw",
            "ASTRA_DB_TOKEN": "AstraCS:tok",
        }
    )
    assert settings.cassandra_password == "s3cret-pw"
    assert "s3cret-pw" not in repr(settings) and "AstraCS:tok" not in repr(settings)


def test_cassandra_settings_come_from_the_layered_settings(workdir: Path) -> None:
    toml = write(
        workdir / "finops.toml",
        'cassandra_contact_points = "10.0.0.1:9142,10.0.0.2"\ncassandra_keyspace = "ks_toml"\n',
    )
    cassandra = load_settings(toml, env={"CASSANDRA_KEYSPACE": "ks_env"}).cassandra()
    assert cassandra.contact_points == (("10.0.0.1", 9142), ("10.0.0.2", 9042))
    assert cassandra.keyspace == "ks_env"


def test_astra_needs_its_bundle_and_token(workdir: Path) -> None:
    with pytest.raises(ConfigurationError, match="ASTRA_DB_SECURE_BUNDLE_PATH and ASTRA_DB_TOKEN"):
        load_settings(env={"FINOPS_SERVING": "astra"}).cassandra()


def test_a_file_in_place_of_the_lake_folder_is_refused(tmp_path: Path) -> None:
    blocker = write(tmp_path / "blocker", "not a folder")
    with pytest.raises(ConfigurationError, match="is a file, not a folder"):
        check_lake_location(blocker / "lake")
    check_lake_location(tmp_path / "fresh" / "lake")  # a lake still to be created is fine


def test_the_table_has_one_row_per_setting_with_default_and_variable() -> None:
    table = render_settings_table().splitlines()
    assert table[0] == "| setting | default | environment variable | meaning |"
    rows = table[2:]
    assert [row.split("|")[1].strip(" `") for row in rows] == list(setting_names())
    for name, row in zip(setting_names(), rows, strict=True):
        assert f"`{attrs.fields_dict(Settings)[name].metadata['env']}`" in row
    assert "| `engine` | `spark` | `FINOPS_ENGINE` |" in render_settings_table()


def test_the_readme_shows_the_configuration_table_generated_from_the_code() -> None:
    assert render_settings_table() in README.read_text(encoding="utf-8")
