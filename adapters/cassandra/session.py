"""Open a driver session on a self-managed Cassandra cluster or on AstraDB.

Errors name the host(s) and never carry the password or token: the driver's own messages are not
passed through unredacted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from adapters.cassandra.settings import CassandraSettings
from finops_core.errors import ServingUnavailable

if TYPE_CHECKING:
    from cassandra.cluster import Session

LOG = logging.getLogger(__name__)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every secret replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def describe_failure(error: BaseException, secrets: Iterable[str | None] = ()) -> str:
    """A short, secret-free reason for a failed request or connection."""
    from cassandra import AuthenticationFailed
    from cassandra.cluster import NoHostAvailable

    if isinstance(error, AuthenticationFailed):
        return "the credentials were refused"
    if isinstance(error, NoHostAvailable):
        errors = list(getattr(error, "errors", {}).values())
        if any(isinstance(inner, AuthenticationFailed) for inner in errors):
            return "the credentials were refused"
        if errors:
            return f"no host answered ({type(errors[0]).__name__})"
        return "no host answered"
    return redact(f"{type(error).__name__}: {error}", secrets)


def connect(settings: CassandraSettings) -> Session:
    """A session at consistency LOCAL_QUORUM; ServingUnavailable naming the host(s) on failure.

    Shut it down with `close_session(session)` (it owns its Cluster).
    """
    from cassandra import ConsistencyLevel
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

    profile = ExecutionProfile(
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        request_timeout=settings.request_timeout_s,
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
    )
    common = {
        "execution_profiles": {EXEC_PROFILE_DEFAULT: profile},
        "connect_timeout": settings.connect_timeout_s,
        "control_connection_timeout": settings.connect_timeout_s,
    }
    LOG.info(
        "connecting to Cassandra at %s as %s", settings.hosts, settings.username or "anonymous"
    )
    secrets = (settings.password, settings.astra_token)
    if settings.is_astra:
        try:
            cluster = Cluster(
                cloud={"secure_connect_bundle": str(settings.astra_secure_bundle_path)},
                auth_provider=PlainTextAuthProvider("token", settings.astra_token),
                **common,
            )
        except Exception as error:
            raise ServingUnavailable(
                f"Cannot connect to Cassandra at {settings.hosts}: the secure connect bundle is "
                f"not usable ({describe_failure(error, secrets)}); download it again from the "
                "Astra UI."
            ) from None
    else:
        auth = (
            PlainTextAuthProvider(settings.username, settings.password)
            if settings.username
            else None
        )
        cluster = Cluster(
            contact_points=list(settings.contact_points), auth_provider=auth, **common
        )
    try:
        return cluster.connect()
    except Exception as error:
        cluster.shutdown()
        raise ServingUnavailable(
            f"Cannot connect to Cassandra at {settings.hosts}: {describe_failure(error, secrets)}; "
            "check that the node is running and the settings in cred.env."
        ) from None


def close_session(session: Session) -> None:
    """Shut down the session and the Cluster that owns it."""
    session.cluster.shutdown()
