"""Open a driver session on a self-managed Cassandra cluster or on AstraDB.

Errors name the host(s) and never carry the password or token: the driver's own messages are not
passed through unredacted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.cassandra.settings import CassandraSettings
from finops_core.errors import ServingUnavailable

if TYPE_CHECKING:
    from cassandra.cluster import Session

LOG = logging.getLogger(__name__)
# The driver's module that reads the secure connect bundle and calls the metadata service.
CLOUD_LOGGER = "cassandra.datastax.cloud"


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
    from cassandra.protocol import OverloadedErrorMessage

    if isinstance(error, AuthenticationFailed):
        return "the credentials were refused"
    if isinstance(error, OverloadedErrorMessage):
        # AstraDB answers a request over its rate limit this way ("Rate limit reached").
        detail = redact(str(getattr(error, "message", "") or error), secrets)
        return f"the database rejected requests as overloaded or rate-limited ({detail})"
    if isinstance(error, NoHostAvailable):
        errors = list(getattr(error, "errors", {}).values())
        if any(isinstance(inner, AuthenticationFailed) for inner in errors):
            return "the credentials were refused"
        if errors:
            return f"no host answered ({type(errors[0]).__name__})"
        return "no host answered"
    return redact(f"{type(error).__name__}: {error}", secrets)


def _causes(error: BaseException) -> Iterator[BaseException]:
    """`error`, what it was raised from or during, and a URLError's reason, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            current = reason
        else:
            current = current.__cause__ or current.__context__


def describe_bundle_failure(error: BaseException, bundle: Path) -> str:
    """What is wrong with an Astra secure connect bundle, or with the metadata service it
    names, and what to do: the driver reads the zip and calls the metadata service while the
    Cluster is built, and its own messages say neither which nor why."""
    import ssl
    import zipfile

    causes = list(_causes(error))
    url = next(
        (m.group(0) for c in causes if (m := re.search(r"https://\S+/metadata", str(c)))),
        "the metadata service",
    )
    download = "download the bundle again from the database's Connect page in the Astra UI"
    for cause in causes:
        if isinstance(cause, zipfile.BadZipFile) or "Unable to open the zip file" in str(cause):
            return f"the secure connect bundle {bundle} is not a readable zip file; {download}"
        if isinstance(cause, FileNotFoundError):
            missing = Path(str(cause.filename or "")).name or "a file"
            return f"the secure connect bundle {bundle} has no {missing}; {download}"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (
                f"the certificate of {url} is not signed by the bundle's ca.crt (the bundle is "
                f"of another database, or outdated); {download}"
            )
        if isinstance(cause, ssl.SSLError):
            if "KEY_VALUES_MISMATCH" in str(cause) or "PEM" in str(cause):
                return f"the bundle's client certificate or key is unreadable; {download}"
            return (
                f"{url} refused the bundle's client certificate ({cause.reason or cause}); "
                f"{download}"
            )
        if isinstance(cause, (ConnectionError, TimeoutError)) or type(cause) is OSError:
            return (
                f"{url} did not answer ({type(cause).__name__}); check in the Astra UI that the "
                "database is active (resume it if it is hibernated) and that this machine "
                "reaches it"
            )
        if isinstance(cause, (json.JSONDecodeError, KeyError)):
            return f"the bundle's config.json or {url} gave an unexpected document; {download}"
    return f"the secure connect bundle is not usable ({describe_failure(error)}); {download}"


def _astra_connect_failure(error: BaseException) -> str | None:
    """The reason an Astra session did not open, when the SNI proxy is the cause."""
    from cassandra.cluster import NoHostAvailable

    if not isinstance(error, NoHostAvailable):
        return None
    for endpoint, inner in getattr(error, "errors", {}).items():
        proxy = ":".join(str(endpoint).split(":")[:2])
        if isinstance(inner, ConnectionRefusedError):
            return (
                f"the database's SNI proxy at {proxy} refused the connection; check in the "
                "Astra UI that the database is active"
            )
        if isinstance(inner, OSError) and "SSL" in type(inner).__name__:
            return f"the TLS handshake with the SNI proxy at {proxy} failed ({inner})"
    return None


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
        bundle = Path(str(settings.astra_secure_bundle_path))
        try:
            with _quiet(CLOUD_LOGGER):  # it logs a traceback of its own before raising
                cluster = Cluster(
                    cloud={
                        "secure_connect_bundle": str(bundle),
                        "connect_timeout": settings.connect_timeout_s,
                    },
                    auth_provider=PlainTextAuthProvider("token", settings.astra_token),
                    **common,
                )
        except Exception as error:
            raise ServingUnavailable(
                redact(
                    f"Cannot connect to {settings.hosts}: "
                    f"{describe_bundle_failure(error, bundle)}.",
                    secrets,
                )
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
        reason = describe_failure(error, secrets)
        if settings.is_astra:
            if reason == "the credentials were refused":
                raise ServingUnavailable(
                    f"Cannot connect to {settings.hosts}: the credentials were refused (user "
                    "token with ASTRA_DB_TOKEN); generate an application token in the Astra UI "
                    "and set ASTRA_DB_TOKEN in cred.env."
                ) from None
            reason = _astra_connect_failure(error) or reason
            raise ServingUnavailable(
                redact(f"Cannot connect to {settings.hosts}: {reason}.", secrets)
            ) from None
        raise ServingUnavailable(
            f"Cannot connect to Cassandra at {settings.hosts}: {reason}; "
            "check that the node is running and the settings in cred.env."
        ) from None


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Silence one driver logger for the duration of the block."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def close_session(session: Session) -> None:
    """Shut down the session and the Cluster that owns it."""
    session.cluster.shutdown()
