"""Where the Cassandra or AstraDB serving store lives and how to log in, from env or `cred.env`.

Secrets (the Cassandra password, the Astra token) are attrs fields with `repr=False`, so they
never appear in repr/str, in log lines or in error messages built from a settings value.
The value is picklable: Spark executors rebuild their own session from it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import attrs

from finops_core.errors import ConfigurationError

DEFAULT_KEYSPACE = "cloud_analytics"
DEFAULT_PORT = 9042
CRED_FILE = "cred.env"
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")
_DATACENTER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")
REPLICATION_STRATEGIES = ("SimpleStrategy", "NetworkTopologyStrategy")
DEFAULT_REPLICATION_TEXT = "SimpleStrategy:1"


@attrs.frozen
class Replication:
    """How a created keyspace is replicated: SimpleStrategy with one factor, or
    NetworkTopologyStrategy with a factor per datacenter."""

    strategy: str = "SimpleStrategy"
    factors: tuple[tuple[str, int], ...] = (("replication_factor", 1),)

    def cql_map(self) -> str:
        """The CQL map literal of `WITH replication = ...`."""
        entries = [f"'class': '{self.strategy}'"] + [
            f"'{name}': {factor}" for name, factor in self.factors
        ]
        return "{" + ", ".join(entries) + "}"

    def __str__(self) -> str:
        if self.strategy == "SimpleStrategy":
            return f"SimpleStrategy:{self.factors[0][1]}"
        return f"{self.strategy}:" + ",".join(f"{dc}={n}" for dc, n in self.factors)


DEFAULT_REPLICATION = Replication()


def parse_replication(text: str) -> Replication:
    """`SimpleStrategy:N` or `NetworkTopologyStrategy:dc1=N[,dc2=M]` -> Replication; anything
    else is a ConfigurationError."""
    strategy, _, spec = text.strip().partition(":")
    wanted = (
        "SimpleStrategy:N or NetworkTopologyStrategy:DC=N[,DC=N] "
        "(e.g. NetworkTopologyStrategy:datacenter1=3)"
    )
    if strategy == "SimpleStrategy" and spec.strip().isdigit() and int(spec) >= 1:
        return Replication("SimpleStrategy", (("replication_factor", int(spec)),))
    if strategy == "NetworkTopologyStrategy":
        factors = []
        for item in (part.strip() for part in spec.split(",")):
            name, sep, factor = item.partition("=")
            if not sep or not _DATACENTER.match(name.strip()) or not factor.strip().isdigit():
                raise ConfigurationError(f"CASSANDRA_REPLICATION {text!r} is not {wanted}.")
            factors.append((name.strip(), int(factor)))
        if factors and any(factor >= 1 for _, factor in factors):
            return Replication("NetworkTopologyStrategy", tuple(factors))
    raise ConfigurationError(f"CASSANDRA_REPLICATION {text!r} is not {wanted}.")


def parse_contact_points(text: str) -> tuple[tuple[str, int], ...]:
    """`host:port,host2` -> ((host, port), (host2, 9042)); a bad port is a ConfigurationError."""
    points = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep:
            host, port = item, str(DEFAULT_PORT)
        if not host or not port.isdigit():
            raise ConfigurationError(
                f"CASSANDRA_CONTACT_POINTS has an entry {item!r} that is not host or host:port."
            )
        points.append((host, int(port)))
    return tuple(points)


def check_keyspace(name: str) -> str:
    """A CQL keyspace name (it is spliced into DDL, so only plain identifiers are accepted)."""
    if not _IDENTIFIER.match(name):
        raise ConfigurationError(
            f"The keyspace name {name!r} is not a valid CQL identifier (letters, digits, _)."
        )
    return name


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a dotenv-style file; `#` comments, `export ` and quotes are allowed."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


@attrs.frozen
class CassandraSettings:
    """A self-managed cluster (contact points) or an AstraDB database (secure bundle + token)."""

    contact_points: tuple[tuple[str, int], ...] = (("127.0.0.1", DEFAULT_PORT),)
    keyspace: str = attrs.field(
        default=DEFAULT_KEYSPACE, validator=lambda _s, _a, v: check_keyspace(v)
    )
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    astra_secure_bundle_path: Path | None = None
    astra_token: str | None = attrs.field(default=None, repr=False)
    connect_timeout_s: float = 5.0
    request_timeout_s: float = 10.0
    # Used only when a load creates the keyspace (an existing keyspace is never altered).
    replication: Replication = DEFAULT_REPLICATION

    @property
    def is_astra(self) -> bool:
        return self.astra_secure_bundle_path is not None

    @property
    def hosts(self) -> str:
        """Where this store lives, for messages (never a secret)."""
        if self.astra_secure_bundle_path is not None:
            return f"AstraDB (secure bundle {self.astra_secure_bundle_path.name})"
        return ", ".join(f"{host}:{port}" for host, port in self.contact_points)

    def __str__(self) -> str:
        return repr(self)

    @classmethod
    def cassandra_from_env(
        cls, env: Mapping[str, str] | None = None, cred_file: Path | None = None
    ) -> CassandraSettings:
        """A self-managed cluster: CASSANDRA_CONTACT_POINTS (default 127.0.0.1:9042), keyspace,
        optional CASSANDRA_USERNAME / CASSANDRA_PASSWORD, CASSANDRA_REPLICATION."""
        values = _environment(env, cred_file)
        points = parse_contact_points(values.get("CASSANDRA_CONTACT_POINTS", ""))
        username = values.get("CASSANDRA_USERNAME") or None
        password = values.get("CASSANDRA_PASSWORD") or None
        if username and password is None:
            raise ConfigurationError("CASSANDRA_USERNAME is set but CASSANDRA_PASSWORD is not.")
        return cls(
            contact_points=points or ((("127.0.0.1", DEFAULT_PORT),)),
            keyspace=values.get("CASSANDRA_KEYSPACE") or DEFAULT_KEYSPACE,
            username=username,
            password=password,
            replication=parse_replication(
                values.get("CASSANDRA_REPLICATION") or DEFAULT_REPLICATION_TEXT
            ),
        )

    @classmethod
    def astra_from_env(
        cls, env: Mapping[str, str] | None = None, cred_file: Path | None = None
    ) -> CassandraSettings:
        """An AstraDB database: ASTRA_DB_SECURE_BUNDLE_PATH, ASTRA_DB_TOKEN, ASTRA_DB_KEYSPACE."""
        values = _environment(env, cred_file)
        bundle = values.get("ASTRA_DB_SECURE_BUNDLE_PATH")
        token = values.get("ASTRA_DB_TOKEN")
        missing = [
            name
            for name, value in (("ASTRA_DB_SECURE_BUNDLE_PATH", bundle), ("ASTRA_DB_TOKEN", token))
            if not value
        ]
        if missing:
            raise ConfigurationError(
                f"AstraDB needs {' and '.join(missing)} in the environment or in {CRED_FILE} "
                f"(see {CRED_FILE}.example)."
            )
        bundle_path = Path(str(bundle)).expanduser()
        if not bundle_path.is_file():
            raise ConfigurationError(
                f"The AstraDB secure connect bundle {bundle_path} does not exist; download it from "
                "the database's Connect page in the Astra UI."
            )
        return cls(
            contact_points=(),
            keyspace=values.get("ASTRA_DB_KEYSPACE") or DEFAULT_KEYSPACE,
            username="token",
            astra_secure_bundle_path=bundle_path,
            astra_token=token,
        )


def _environment(env: Mapping[str, str] | None, cred_file: Path | None) -> dict[str, str]:
    """cred.env (default ./cred.env, if present) overlaid by the process environment."""
    path = cred_file if cred_file is not None else Path(CRED_FILE)
    values: dict[str, str] = {}
    if path.is_file():
        values.update(read_env_file(path))
    elif cred_file is not None:
        raise ConfigurationError(f"The credentials file {cred_file} does not exist.")
    values.update(os.environ if env is None else env)
    return values
