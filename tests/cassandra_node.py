"""Helpers to run a real Cassandra 5.0 node, or a loopback ring of them, from tests.

They drive ``scripts/cassandra-node`` (jars from Maven Central, a plain JVM on
127.0.0.1) through subprocesses. A conftest can wrap them in a session-scoped
fixture, for example::

    if not java_and_maven_available():
        pytest.skip("Cassandra test node needs Java 17 and Maven")
    host, port = start_node(tmp_path_factory.mktemp("cassandra"))
    yield host, port
    stop_node(directory)

This module is a helper, not a test file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "scripts" / "cassandra-node"

# A cold start downloads about 70 MB of jars through Maven before the node's own
# 180 s readiness timeout; leave room for both.
START_TIMEOUT_S = 900.0
STOP_TIMEOUT_S = 120.0


class CassandraNodeError(RuntimeError):
    """The cassandra-node script failed; the message carries its stderr."""


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run the script with this interpreter (it needs only the standard library)."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _parse_contact_point(stdout: str) -> tuple[str, int]:
    """Split the last non-empty stdout line, ``HOST:PORT``, into host and port."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise CassandraNodeError("cassandra-node start printed no contact point")
    host, _, port = lines[-1].rpartition(":")
    if not host or not port.isdigit():
        raise CassandraNodeError(f"unexpected contact point line: {lines[-1]!r}")
    return host, int(port)


@dataclass(frozen=True)
class RingMember:
    """Where one node of a loopback test ring listens and which ring it joins."""

    address: str
    seeds: str
    port: int
    storage_port: int
    token: int
    cluster_name: str = "test-ring"

    def args(self) -> list[str]:
        return [
            "--address",
            self.address,
            "--seeds",
            self.seeds,
            "--port",
            str(self.port),
            "--storage-port",
            str(self.storage_port),
            f"--token={self.token}",
            "--cluster-name",
            self.cluster_name,
        ]


def ring_members(nodes: int, port: int, storage_port: int) -> list[RingMember]:
    """`nodes` members on 127.0.0.1, 127.0.0.2, ..., seeded by the first, with evenly spaced
    Murmur3 tokens, all on the same native and storage ports (each on its own address)."""
    step = 2**64 // nodes
    return [
        RingMember(f"127.0.0.{i + 1}", "127.0.0.1", port, storage_port, -(2**63) + i * step)
        for i in range(nodes)
    ]


def start_node(
    directory: Path, auth: bool = False, *, fresh: bool = False, ring: RingMember | None = None
) -> tuple[str, int]:
    """Start (or reuse) the node kept in ``directory`` and return its (host, port).

    Blocks until the node answers CQL. With ``auth`` the node requires the
    superuser ``cassandra``/``cassandra`` (PasswordAuthenticator). With ``fresh``
    any running node there is stopped and its data deleted first. With ``ring``
    the node listens on the member's address and joins its ring.
    """
    args = ["start", "--dir", str(directory)]
    if auth:
        args.append("--auth")
    if fresh:
        args.append("--fresh")
    if ring is not None:
        args += ring.args()
    result = _run(args, START_TIMEOUT_S)
    if result.returncode != 0:
        raise CassandraNodeError(
            f"cassandra-node start failed (exit {result.returncode}):\n{result.stderr.strip()}"
        )
    return _parse_contact_point(result.stdout)


def stop_node(directory: Path) -> None:
    """Stop the node kept in ``directory``; does nothing if it is not running."""
    result = _run(["stop", "--dir", str(directory)], STOP_TIMEOUT_S)
    if result.returncode != 0:
        raise CassandraNodeError(
            f"cassandra-node stop failed (exit {result.returncode}):\n{result.stderr.strip()}"
        )


def java_and_maven_available() -> bool:
    """True when a Java runtime and Maven are installed, so a node can be started."""
    java_home = os.environ.get("JAVA_HOME", "")
    has_java = shutil.which("java") is not None or (
        java_home != "" and (Path(java_home) / "bin" / "java").is_file()
    )
    return has_java and shutil.which("mvn") is not None
