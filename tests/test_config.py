"""Settings: layered defaults < TOML < cred.env < environment < flags, strict, self-documenting."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from adapters.landing.zip_intake import DEFAULT_LIMITS, Limit
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


def test_the_default_landing_limits_are_the_adapters_defaults_named_by_their_settings() -> None:
    limits = Settings().landing_limits()
    assert limits == DEFAULT_LIMITS
    assert (limits.total_bytes.value, limits.members.value) == (256 * 1024**2, 2000)
    fields = attrs.fields_dict(Settings)
    for limit in (limits.total_bytes, limits.members):
        assert fields[limit.setting].metadata["env"] == limit.env


def test_the_landing_limits_come_from_the_layered_settings(workdir: Path) -> None:
    toml = write(workdir / "finops.toml", "landing_max_total_bytes = 1000\n")
    limits = load_settings(toml, env={"FINOPS_LANDING_MAX_MEMBERS": " 12 "}).landing_limits()
    assert limits.total_bytes == Limit(
        1000, "landing_max_total_bytes", "FINOPS_LANDING_MAX_TOTAL_BYTES"
    )
    assert limits.members == Limit(12, "landing_max_members", "FINOPS_LANDING_MAX_MEMBERS")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"FINOPS_LANDING_MAX_TOTAL_BYTES": "0"}, "landing_max_total_bytes = '0'"),
        ({"FINOPS_LANDING_MAX_TOTAL_BYTES": "1GB"}, "landing_max_total_bytes = '1GB'"),
        ({"FINOPS_LANDING_MAX_MEMBERS": "-5"}, "landing_max_members = '-5'"),
    ],
)
def test_a_bad_landing_limit_names_the_setting(
    workdir: Path, env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env=env)
    assert named in str(caught.value) and "a whole number of at least 1" in str(caught.value)


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


# -- every command's settings reach its adapters, through the command line ----------------------
# Each test writes a TOML file and runs `finops --config FILE COMMAND` without the matching flag:
# the value must arrive where the adapter uses it (a folder read or written, a run record's
# engine, the host an error names, the settings a Spark or Cassandra session is opened with).

ORG = "org_aaaa0001"
DAY = "2025-07-03"
EVENT_LINES = (
    b'{"event_id": "evt_a00000000001", "timestamp": "2025-07-03T10:00:00Z", '
    b'"org_id": "org_aaaa0001", '
    b'"resource_id": "res_aaaa0001", "service": "compute", "region": "us-east", '
    b'"metric": "requests", '
    b'"value": 12.0, "unit": "requests", "cost_usd_increment": 1.5, "schema_version": 1}\n'
    b'{"event_id": "evt_a00000000002", "timestamp": "2025-07-03T11:00:00Z", '
    b'"org_id": "org_aaaa0001", '
    b'"resource_id": "res_aaaa0001", "service": "compute", "region": "us-east", '
    b'"metric": "requests", '
    b'"value": 8.0, "unit": "requests", "cost_usd_increment": 0.5, "schema_version": 1}\n'
)


def landing_files() -> dict[str, bytes]:
    from tests.strategies import master_csvs

    return {**master_csvs(), "usage_events_stream/events_part_0000.jsonl": EVENT_LINES}


def landed_lake(root: Path) -> Path:
    from tests.strategies import write_landing

    write_landing(landing_files(), root / "landing")
    return root


def toml_file(folder: Path, **values: object) -> Path:
    """A TOML file of top-level settings (strings quoted, numbers as they are)."""
    lines = [
        f"{key} = {value}"
        if isinstance(value, int)
        else f"{key} = {str(value)!r}".replace("'", '"')
        for key, value in values.items()
    ]
    return write(folder / "finops.toml", "\n".join(lines) + "\n")


def finops(capsys: pytest.CaptureFixture[str], config: Path, *argv: str) -> tuple[int, str, str]:
    from entrypoints.cli import main

    capsys.readouterr()
    code = main(["--config", str(config), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def sentence(err: str) -> str:
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("finops: ")]
    return line


def run_records(lake: Path) -> list[dict[str, object]]:
    import json

    return [json.loads(path.read_text()) for path in sorted((lake / "_runs").glob("*.json"))]


def test_landing_generate_and_profile_use_the_lake_of_the_toml_file(
    cli: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import zipfile

    archive = tmp_path / "dataset.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for name, data in landing_files().items():
            handle.writestr(f"datalake/landing/{name}", data)
    landed = tmp_path / "landed"
    config = toml_file(tmp_path, lake=landed)
    assert finops(capsys, config, "landing", "--zip", str(archive))[0] == 0
    assert (landed / "landing" / "_manifest.json").is_file()
    code, out, _ = finops(capsys, config, "profile")
    assert code == 0 and f"landing {landed / 'landing'}" in out

    generated = tmp_path / "generated"
    config = toml_file(tmp_path, lake=generated)
    assert finops(capsys, config, "generate", "--scale", "0.01")[0] == 0
    assert (generated / "landing" / "usage_events_stream").is_dir()
    assert not (cli / "datalake").exists()  # the default lake was never touched


def test_batch_load_query_and_audit_use_the_lake_engine_and_store_of_the_toml_file(
    cli: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.lake.delta import DeltaLake
    from finops_core.lake import LakeLayout
    from finops_core.marts import DAILY_USAGE

    lake = landed_lake(tmp_path / "configured")
    config = toml_file(tmp_path, lake=lake, engine="memory", serving="sqlite")
    assert finops(capsys, config, "batch")[0] == 0
    (batch,) = run_records(lake)
    assert (batch["kind"], batch["engine"]) == ("batch", "memory")

    code, out, _ = finops(capsys, config, "load")
    assert code == 0 and "loaded 7 gold rows into sqlite" in out
    assert LakeLayout(lake).serving_sqlite.is_file()
    load = run_records(lake)[-1]
    assert (load["kind"], load["engine"]) == ("load", "memory")

    code, out, _ = finops(capsys, config, "query", "day", "--org", ORG, "--date", DAY, "--json")
    import json

    answered = json.loads(out)
    gold = DeltaLake(LakeLayout(lake)).read_table(DAILY_USAGE.table)
    assert code == 0 and len(answered) == len(gold) == 1
    assert answered[0]["daily_cost_usd"] == gold[0]["daily_cost_usd"] == 2.0
    assert list(answered[0]) == list(DAILY_USAGE.table.column_names)  # keys = the mart's columns

    code, out, _ = finops(capsys, config, "audit")
    assert code == 0 and f"run {load['run_id']} (load, engine memory" in out
    assert not (cli / "datalake").exists()


def test_a_memory_serving_store_from_the_toml_file_is_accepted_by_load_and_query(
    cli: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = landed_lake(tmp_path / "lake")
    config = toml_file(tmp_path, lake=lake, engine="memory", serving="memory")
    assert finops(capsys, config, "batch")[0] == 0
    code, out, _ = finops(capsys, config, "load")
    assert code == 0 and "loaded 7 gold rows into memory" in out
    code, out, _ = finops(capsys, config, "query", "q2", "--org", ORG)
    assert code == 0 and out.strip() == "(no rows)"  # a fresh process: its store is empty
    assert not (lake / "serving").exists()


def test_the_demo_uses_the_lake_and_engine_of_the_toml_file(
    cli: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = landed_lake(tmp_path / "demo")
    config = toml_file(tmp_path, lake=lake, engine="memory", serving="memory")
    code, out, err = finops(capsys, config, "demo", "--zip", str(tmp_path / "none.zip"))
    assert code == 0, err
    (record,) = run_records(lake)
    assert (record["kind"], record["engine"]) == ("demo", "memory")
    assert (lake / "serving" / "finops.sqlite").is_file()  # the demo always serves from SQLite
    assert f"Q1: daily cost and requests for {ORG}" in out


class RecordingSessions:
    """Stands in for `adapters.spark.session.SparkSessions`: keeps the settings it was built
    with and refuses to start a JVM."""

    made: list[object] = []

    def __init__(self, settings: object) -> None:
        RecordingSessions.made.append(settings)

    def get(self) -> object:
        from finops_core.errors import EngineUnavailable

        raise EngineUnavailable("no JVM in this test")

    def close(self) -> None:
        return None


@pytest.fixture
def spark_sessions(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    session = pytest.importorskip("adapters.spark.session")
    RecordingSessions.made = []
    monkeypatch.setattr(session, "SparkSessions", RecordingSessions)
    return RecordingSessions.made


@pytest.mark.parametrize(
    "command",
    [("batch",), ("demo", "--zip", "none.zip"), ("stream", "--once"), ("load",)],
    ids=lambda argv: argv[0],
)
def test_the_spark_master_and_shuffle_partitions_of_the_toml_file_reach_the_spark_session(
    cli: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    spark_sessions: list[object],
    command: tuple[str, ...],
) -> None:
    lake = landed_lake(tmp_path / "lake")
    if command[0] == "load":  # gold to load, built without Spark
        plain = toml_file(tmp_path, lake=lake, engine="memory")
        assert finops(capsys, plain, "batch")[0] == 0
    config = toml_file(
        tmp_path,
        lake=lake,
        engine="spark",
        spark_master="spark://toml-master:7077",
        shuffle_partitions=7,
    )
    code, _, err = finops(capsys, config, *command)
    assert code == 6 and "no JVM in this test" in sentence(err)
    (settings,) = spark_sessions
    assert settings.master == "spark://toml-master:7077"  # type: ignore[attr-defined]
    assert settings.shuffle_partitions == 7  # type: ignore[attr-defined]


def gold_lake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    lake = landed_lake(tmp_path / "gold")
    assert finops(capsys, toml_file(tmp_path, lake=lake, engine="memory"), "batch")[0] == 0
    return lake


SERVING_COMMANDS = [
    ("load",),
    ("query", "q1", "--org", ORG, "--from", DAY, "--to", DAY),
    ("query", "q2", "--org", ORG),
    ("query", "day", "--org", ORG, "--date", DAY),
    ("query", "tickets", "--org", ORG),
]


@pytest.mark.parametrize("command", SERVING_COMMANDS, ids=lambda argv: " ".join(argv[:2]))
def test_the_cassandra_contact_points_of_the_toml_file_are_the_ones_connected_to(
    cli: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    """The bug of issue 10: `finops query` connected to 127.0.0.1:9042 whatever the TOML said."""
    pytest.importorskip("cassandra")
    config = toml_file(
        tmp_path,
        lake=gold_lake(tmp_path, capsys),
        engine="memory",
        serving="cassandra",
        cassandra_contact_points="127.0.0.1:1",
        cassandra_keyspace="finops_from_toml",
    )
    code, _, err = finops(capsys, config, *command)
    line = sentence(err)
    assert code == 5 and "Cannot connect to Cassandra at 127.0.0.1:1" in line
    assert "9042" not in line


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """`adapters.cassandra.session.connect` keeps the settings it is called with and refuses."""
    session = pytest.importorskip("adapters.cassandra.session")
    from finops_core.errors import ServingUnavailable

    made: list[object] = []

    def connect(settings: object) -> object:
        made.append(settings)
        raise ServingUnavailable("no Cassandra node in this test")

    monkeypatch.setattr(session, "connect", connect)
    return made


@pytest.mark.parametrize("command", SERVING_COMMANDS, ids=lambda argv: " ".join(argv[:2]))
def test_every_cassandra_setting_of_the_toml_file_reaches_the_session(
    cli: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    connections: list[object],
    command: tuple[str, ...],
) -> None:
    config = toml_file(
        tmp_path,
        lake=gold_lake(tmp_path, capsys),
        engine="memory",
        serving="cassandra",
        cassandra_contact_points="10.1.2.3:9142,10.1.2.4",
        cassandra_keyspace="finops_from_toml",
        cassandra_username="analyst",
        cassandra_password="from-toml-pw",
    )
    code, _, err = finops(capsys, config, *command)
    assert code == 5 and "no Cassandra node in this test" in sentence(err)
    (settings,) = connections
    assert settings.contact_points == (("10.1.2.3", 9142), ("10.1.2.4", 9042))  # type: ignore[attr-defined]
    assert settings.keyspace == "finops_from_toml"  # type: ignore[attr-defined]
    assert settings.username == "analyst"  # type: ignore[attr-defined]
    assert settings.password == "from-toml-pw"  # type: ignore[attr-defined]
    assert not settings.is_astra  # type: ignore[attr-defined]


def astra_config(tmp_path: Path, lake: Path) -> Path:
    import zipfile

    bundle = tmp_path / "secure-connect-toml.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("config.json", "{}")  # not a usable bundle
    return toml_file(
        tmp_path,
        lake=lake,
        engine="memory",
        serving="astra",
        astra_db_secure_bundle_path=bundle,
        astra_db_token="AstraCS:from-toml",
        astra_db_keyspace="astra_from_toml",
    )


@pytest.mark.parametrize("command", SERVING_COMMANDS, ids=lambda argv: " ".join(argv[:2]))
def test_every_astra_setting_of_the_toml_file_reaches_the_session(
    cli: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    connections: list[object],
    command: tuple[str, ...],
) -> None:
    config = astra_config(tmp_path, gold_lake(tmp_path, capsys))
    code, _, err = finops(capsys, config, *command)
    assert code == 5 and "no Cassandra node in this test" in sentence(err)
    (settings,) = connections
    assert settings.is_astra  # type: ignore[attr-defined]
    assert settings.astra_secure_bundle_path == tmp_path / "secure-connect-toml.zip"  # type: ignore[attr-defined]
    assert settings.astra_token == "AstraCS:from-toml"  # type: ignore[attr-defined]
    assert settings.keyspace == "astra_from_toml"  # type: ignore[attr-defined]


def test_the_astra_bundle_of_the_toml_file_is_the_one_the_driver_opens(
    cli: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("cassandra")
    config = astra_config(tmp_path, gold_lake(tmp_path, capsys))
    code, _, err = finops(capsys, config, "query", "q2", "--org", ORG)
    line = sentence(err)
    assert code == 5 and "AstraDB (secure bundle secure-connect-toml.zip)" in line
    assert "from-toml" not in line.replace("secure-connect-toml", "")  # the token never shows
