"""Every setting of `finops`, where it comes from, and how it is checked.

Layers, each overriding the one before: the defaults declared on `Settings`, a TOML file
(`--config PATH`), environment variables (`./cred.env` first, then the process environment), and
command-line flags. Loading is strict: an unknown key or a value of the wrong kind is a
ConfigurationError naming the setting and where the value came from.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import errno
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from adapters.cassandra.settings import (
    CRED_FILE,
    DEFAULT_KEYSPACE,
    DEFAULT_REPLICATION_TEXT,
    CassandraSettings,
    check_keyspace,
    parse_contact_points,
    parse_replication,
    read_env_file,
)
from adapters.landing.zip_intake import DEFAULT_LIMITS, LandingLimits, Limit
from finops_core.errors import ConfigurationError, FinopsError, StorageFailed

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ENGINES = ("spark", "memory")
SERVING_KINDS = ("sqlite", "cassandra", "astra", "memory")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")

Parser = Callable[[str, Any, str], Any]


# -- value parsers: (setting name, raw value, source) -> checked value -------------------------


def _bad(name: str, value: Any, source: str, expected: str) -> ConfigurationError:
    """The one error for a bad setting value. A secret setting's value is never shown, whatever
    its type: the message names the setting, where it came from and what is wrong."""
    if name in secret_setting_names():
        return ConfigurationError(
            f"The setting {name} (from {source}) is not valid: expected {expected}, not "
            f"{_kind(value)} (a secret: its value is not shown)."
        )
    return ConfigurationError(
        f"The setting {name} = {value!r} (from {source}) is not valid: expected {expected}."
    )


_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "true or false"),
    (int, "a whole number"),
    (float, "a number"),
    (str, "text"),
    (list, "an array"),
    (dict, "a table"),
    (datetime.date, "a date or date-time"),
    (datetime.time, "a time"),
)


def _kind(value: Any) -> str:
    """What kind of value `value` is, in words (never the value itself)."""
    return next(
        (words for kind, words in _KINDS if isinstance(value, kind)),
        f"a value of type {type(value).__name__}",
    )


def _text(name: str, value: Any, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(name, value, source, "a non-empty string")
    return value.strip()


def _optional_text(name: str, value: Any, source: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(name, value, source, "a string")
    return value


def _path(name: str, value: Any, source: str) -> Path:
    if isinstance(value, Path):
        return value
    return Path(_text(name, value, source)).expanduser()


def _optional_path(name: str, value: Any, source: str) -> Path | None:
    if value is None or value == "":
        return None
    return _path(name, value, source)


def _choice(*choices: str) -> Parser:
    def parse(name: str, value: Any, source: str) -> str:
        if not isinstance(value, str) or value.strip().lower() not in choices:
            raise _bad(name, value, source, f"one of {', '.join(choices)}")
        return value.strip().lower()

    return parse


def _positive_int(name: str, value: Any, source: str) -> int:
    number = int(value.strip()) if isinstance(value, str) and value.strip().isdigit() else value
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise _bad(name, value, source, "a whole number of at least 1")
    return number


def _flag(name: str, value: Any, source: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in (*_TRUE, *_FALSE):
        return value.strip().lower() in _TRUE
    raise _bad(name, value, source, "true or false")


def _contact_points(name: str, value: Any, source: str) -> str:
    text = _text(name, value, source)
    try:
        parse_contact_points(text)
    except ConfigurationError:
        raise _bad(name, value, source, "host or host:port, comma-separated") from None
    return text


def _keyspace(name: str, value: Any, source: str) -> str:
    text = _text(name, value, source)
    try:
        return check_keyspace(text)
    except ConfigurationError:
        raise _bad(name, value, source, "a CQL identifier (letters, digits, _)") from None


def _replication(name: str, value: Any, source: str) -> str:
    text = _text(name, value, source)
    try:
        parse_replication(text)
    except ConfigurationError:
        raise _bad(
            name,
            value,
            source,
            "SimpleStrategy:N or NetworkTopologyStrategy:DC=N[,DC=N], "
            "e.g. NetworkTopologyStrategy:datacenter1=3",
        ) from None
    return text


# -- the settings ------------------------------------------------------------------------------


def _setting(default: Any, env: str, meaning: str, parse: Parser, *, secret: bool = False) -> Any:
    """An attrs field carrying its environment variable, meaning and parser as metadata."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        parse(attribute.name, value, "Settings")

    return attrs.field(
        default=default,
        repr=not secret,
        validator=check,
        metadata={"env": env, "meaning": meaning, "parse": parse, "secret": secret},
    )


@attrs.frozen(kw_only=True)
class Settings:
    """The whole configuration of a `finops` process, immutable once loaded."""

    lake: Path = _setting(
        Path("datalake"),
        "FINOPS_LAKE",
        "the lake folder (landing, bronze, silver, gold, runs)",
        _path,
    )
    engine: str = _setting(
        "spark",
        "FINOPS_ENGINE",
        "batch engine: `spark` or `memory` (pure Python)",
        _choice(*ENGINES),
    )
    serving: str = _setting(
        "sqlite",
        "FINOPS_SERVING",
        "serving store: `sqlite` (a file in the lake), `cassandra`, `astra` or `memory`",
        _choice(*SERVING_KINDS),
    )
    spark_master: str = _setting(
        "local[*]", "SPARK_MASTER", "Spark master URL, e.g. `spark://host:7077`", _text
    )
    shuffle_partitions: int = _setting(
        4, "FINOPS_SHUFFLE_PARTITIONS", "Spark `spark.sql.shuffle.partitions`", _positive_int
    )
    verbose: bool = _setting(False, "FINOPS_VERBOSE", "show tracebacks and Spark's own logs", _flag)
    landing_max_total_bytes: int = _setting(
        DEFAULT_LIMITS.total_bytes.value,
        DEFAULT_LIMITS.total_bytes.env,
        "most bytes `finops landing` lets the dataset zip unpack to (declared and written)",
        _positive_int,
    )
    landing_max_members: int = _setting(
        DEFAULT_LIMITS.members.value,
        DEFAULT_LIMITS.members.env,
        "most entries `finops landing` accepts in the dataset zip",
        _positive_int,
    )
    cassandra_contact_points: str = _setting(
        "127.0.0.1:9042",
        "CASSANDRA_CONTACT_POINTS",
        "Cassandra nodes, `host[:port]` comma-separated",
        _contact_points,
    )
    cassandra_keyspace: str = _setting(
        DEFAULT_KEYSPACE,
        "CASSANDRA_KEYSPACE",
        "Cassandra keyspace of the serving tables",
        _keyspace,
    )
    cassandra_replication: str = _setting(
        DEFAULT_REPLICATION_TEXT,
        "CASSANDRA_REPLICATION",
        "replication of the keyspace a load creates: `SimpleStrategy:N` or "
        "`NetworkTopologyStrategy:DC=N[,DC=N]`",
        _replication,
    )
    cassandra_username: str | None = _setting(
        None, "CASSANDRA_USERNAME", "Cassandra user (optional)", _optional_text
    )
    cassandra_password: str | None = _setting(
        None,
        "CASSANDRA_PASSWORD",
        "Cassandra password (secret; needed with a user)",
        _optional_text,
        secret=True,
    )
    astra_db_secure_bundle_path: Path | None = _setting(
        None,
        "ASTRA_DB_SECURE_BUNDLE_PATH",
        "AstraDB secure connect bundle (zip from the Astra UI)",
        _optional_path,
    )
    astra_db_token: str | None = _setting(
        None, "ASTRA_DB_TOKEN", "AstraDB application token (secret)", _optional_text, secret=True
    )
    astra_db_keyspace: str = _setting(
        DEFAULT_KEYSPACE, "ASTRA_DB_KEYSPACE", "AstraDB keyspace of the serving tables", _keyspace
    )

    def as_config(self) -> dict[str, Any]:
        """Plain values for a dependency-injector Configuration provider."""
        values = attrs.asdict(self, recurse=False)
        values["lake"] = str(self.lake)
        return values

    def landing_limits(self) -> LandingLimits:
        """The limits `finops landing` checks the dataset zip against, each naming its setting."""
        return LandingLimits(
            total_bytes=_limit("landing_max_total_bytes", self.landing_max_total_bytes),
            members=_limit("landing_max_members", self.landing_max_members),
        )

    def cassandra(self) -> CassandraSettings:
        """The Cassandra or AstraDB settings of the chosen serving store, built from these
        settings alone (the adapter never reads the environment or ./cred.env itself)."""
        if self.serving == "astra":
            return self._astra()
        username = self.cassandra_username or None
        if username and self.cassandra_password is None:
            raise ConfigurationError(
                "cassandra_username (CASSANDRA_USERNAME) is set but cassandra_password "
                "(CASSANDRA_PASSWORD) is not."
            )
        return CassandraSettings(
            contact_points=parse_contact_points(self.cassandra_contact_points),
            keyspace=self.cassandra_keyspace,
            username=username,
            password=self.cassandra_password if username else None,
            replication=parse_replication(self.cassandra_replication),
        )

    def _astra(self) -> CassandraSettings:
        missing = [
            field.metadata["env"]
            for field in attrs.fields(Settings)
            if field.name in ("astra_db_secure_bundle_path", "astra_db_token")
            and not getattr(self, field.name)
        ]
        if missing:
            raise ConfigurationError(
                f"AstraDB needs {' and '.join(missing)} (a TOML file, the environment or "
                f"{CRED_FILE}; see {CRED_FILE}.example)."
            )
        bundle = Path(str(self.astra_db_secure_bundle_path)).expanduser()
        if not bundle.is_file():
            raise ConfigurationError(
                f"The AstraDB secure connect bundle {bundle} does not exist; download it from "
                "the database's Connect page in the Astra UI."
            )
        return CassandraSettings(
            contact_points=(),
            keyspace=self.astra_db_keyspace,
            username="token",
            astra_secure_bundle_path=bundle,
            astra_token=self.astra_db_token,
        )


def _limit(name: str, value: int) -> Limit:
    return Limit(value, name, attrs.fields_dict(Settings)[name].metadata["env"])


def setting_names() -> tuple[str, ...]:
    return tuple(field.name for field in attrs.fields(Settings))


def secret_setting_names() -> tuple[str, ...]:
    """The settings declared secret: their values are never printed, logged or put in an error."""
    return tuple(field.name for field in attrs.fields(Settings) if field.metadata["secret"])


# The settings each serving store kind is configured by (`finops doctor` shows them).
SERVING_SETTING_PREFIXES = {
    "sqlite": ("lake",),
    "cassandra": ("cassandra_",),
    "astra": ("astra_db_",),
    "memory": (),
}


def shown_settings(settings: Settings, kind: str) -> list[tuple[str, str, str]]:
    """(name, environment variable, value as shown) of the settings of the serving store
    `kind`; a secret shows only whether it is set."""
    shown = []
    for field in attrs.fields(Settings):
        if not field.name.startswith(SERVING_SETTING_PREFIXES[kind]):
            continue
        value = getattr(settings, field.name)
        if field.metadata["secret"]:
            text = "(not set)" if value is None else "(set; a secret, not shown)"
        else:
            text = "(not set)" if value is None else str(value)
        shown.append((field.name, field.metadata["env"], text))
    return shown


def env_names() -> dict[str, str]:
    """Environment variable -> setting name."""
    return {field.metadata["env"]: field.name for field in attrs.fields(Settings)}


# -- loading -----------------------------------------------------------------------------------


def read_toml(path: Path) -> dict[str, Any]:
    """The settings in a TOML file: top-level keys named like the settings."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigurationError(f"The configuration file {path} does not exist.") from None
    except OSError as error:
        raise ConfigurationError(
            f"The configuration file {path} cannot be read ({error.strerror})."
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(
            f"The configuration file {path} is not valid TOML ({error})."
        ) from None
    known = setting_names()
    for key, value in data.items():
        if key not in known:
            hint = " (settings are top-level keys, not tables)" if isinstance(value, dict) else ""
            raise ConfigurationError(
                f"The configuration file {path} has an unknown setting {key!r}{hint}; "
                f"known settings: {', '.join(known)}."
            )
    return data


def read_environment(
    env: Mapping[str, str] | None = None, cred_file: Path | None = None
) -> dict[str, tuple[str, str]]:
    """Setting name -> (value, source) from ./cred.env overlaid by the process environment."""
    by_env = env_names()
    found: dict[str, tuple[str, str]] = {}
    path = cred_file if cred_file is not None else Path(CRED_FILE)
    if path.is_file():
        for key, value in read_env_file(path).items():
            if key in by_env:
                found[by_env[key]] = (value, f"{key} in {path}")
    for key, value in (os.environ if env is None else env).items():
        if key in by_env:
            found[by_env[key]] = (value, f"the environment variable {key}")
    return found


def load_settings(
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cred_file: Path | None = None,
) -> Settings:
    """defaults < TOML file < ./cred.env < environment < overrides (CLI flags; None = not given)."""
    fields = {field.name: field for field in attrs.fields(Settings)}
    raw: dict[str, tuple[Any, str]] = {}
    if config_file is not None:
        for key, value in read_toml(Path(config_file)).items():
            raw[key] = (value, str(config_file))
    raw.update(read_environment(env, cred_file))
    for key, value in (overrides or {}).items():
        if key not in fields:
            raise ConfigurationError(
                f"Unknown setting {key!r}; known settings: {', '.join(fields)}."
            )
        if value is not None:
            raw[key] = (value, "the command line")
    values = {
        key: fields[key].metadata["parse"](key, value, source)
        for key, (value, source) in raw.items()
    }
    return Settings(**values)


def render_settings_table() -> str:
    """The configuration table (Markdown) the README shows, generated from `Settings`."""
    lines = [
        "| setting | default | environment variable | meaning |",
        "|---|---|---|---|",
    ]
    for field in attrs.fields(Settings):
        value = field.default
        default = (
            "(none)"
            if value is None
            else f"`{str(value).lower() if isinstance(value, bool) else value}`"
        )
        lines.append(
            f"| `{field.name}` | {default} | `{field.metadata['env']}` "
            f"| {field.metadata['meaning']} |"
        )
    return "\n".join(lines)


# -- the command line's configuration, for every command ---------------------------------------

# Command-line attributes (argparse dest) that override a setting when the flag was given.
CLI_SETTINGS = {"lake": "lake", "engine": "engine", "master": "spark_master", "serving": "serving"}


def cli_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the command line gave (a flag left out is None: not given)."""
    overrides: dict[str, Any] = {
        name: getattr(args, dest) for dest, name in CLI_SETTINGS.items() if hasattr(args, dest)
    }
    if getattr(args, "verbose", False):
        overrides["verbose"] = True
    return overrides


@contextlib.contextmanager
def cli_configuration(args: argparse.Namespace) -> Iterator[Settings]:
    """The settings of one CLI invocation: `args.config` (the TOML file) < ./cred.env <
    environment < the flags given. While the command runs, a failed file operation inside the
    lake becomes one sentence naming the folder."""
    settings = load_settings(getattr(args, "config", None), cli_overrides(args))
    args.verbose = settings.verbose
    check_lake_location(settings.lake)
    try:
        yield settings
    except OSError as error:
        translated = lake_write_error(settings.lake, error)
        if translated is None:
            raise
        raise translated from None


def check_lake_location(lake: Path) -> None:
    """A ConfigurationError when a file stands where the lake folder must be.

    That is the lake folder itself or one of its parents.
    """
    for folder in (lake, *lake.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ConfigurationError(
                    f"The lake folder {lake} cannot be used: {folder} is a file, not a folder; "
                    "choose another --lake or move the file."
                )
            return


_IN_THE_WAY = {errno.ENOTDIR, errno.EEXIST, errno.EISDIR}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def lake_write_error(lake: Path, error: OSError) -> FinopsError | None:
    """One sentence for a failed file operation inside the lake (read-only folder, a file where
    a folder must be, a full disk); None for errors elsewhere.

    A full disk is reported even when the error names no file (a write to an open file names
    none): the command was writing the lake, so the lake's disk is the one to free.
    """
    if error.errno in _DISK_FULL:
        full = lake if error.filename is None else Path(os.fsdecode(error.filename))
        return StorageFailed(
            f"The disk holding {full} is full ({os.strerror(error.errno)}); "
            f"free space there (see `df -h {full.parent if full != lake else lake}`) and run "
            "the command again."
        )
    if error.filename is None:
        return None
    target = Path(os.fsdecode(error.filename)).absolute()
    root = lake.absolute()
    if target != root and root not in target.parents and target not in root.parents:
        return None
    if error.errno in _NOT_WRITABLE:
        problem, fix = "is not writable", "fix its permissions"
    elif error.errno in _IN_THE_WAY:
        problem, fix = (
            "has a file where a folder must be (or the reverse)",
            "move what is in the way",
        )
    else:
        return None
    return ConfigurationError(
        f"The lake folder {lake} {problem} ({error.strerror or type(error).__name__}: {target}); "
        f"choose another --lake or {fix}."
    )
