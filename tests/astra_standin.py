"""A local stand-in for AstraDB, in front of a real Cassandra test node (test support code).

What an AstraDB database is to the Python driver, made on 127.0.0.1 at test time:

- a throwaway certificate authority, a server certificate and a client certificate
  (`make_certificates`, with the `cryptography` package);
- the metadata service: HTTPS on `GET /metadata`, mutual TLS (it refuses a client without a
  certificate signed by the CA), answering `contact_info` the way Astra does (`MetadataService`);
- the SNI proxy: mutual TLS on one port, routing each connection by its TLS server name (a
  node's host id) to that node's native port, and closing connections with any other name
  (`SniProxy`);
- the secure connect bundle: a zip with `config.json`, `ca.crt`, `cert`, `key` and `cqlshrc`
  laid out as Astra ships it (`write_bundle`).

The node itself runs PasswordAuthenticator; `AstraStandIn.open` creates the role `token` whose
password is a generated `AstraCS:...` application token, and the keyspace "from the Astra UI"
(as the superuser): the token may use the keyspace but, as on Astra, not create one.

This module is a helper, not a test file.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import http.server
import ipaddress
import json
import secrets
import ssl
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

LOCALHOST = "127.0.0.1"
METADATA_PATH = "/metadata"


@attrs.frozen
class KeyPair:
    """A PEM certificate and its PEM private key."""

    cert: bytes
    key: bytes = attrs.field(repr=False)


@attrs.frozen
class Certificates:
    ca: KeyPair
    server: KeyPair
    client: KeyPair


def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _certificate(
    subject: str, key: Any, issuer: tuple[Any, Any] | None, extensions: list[tuple[Any, bool]]
) -> Any:
    """A certificate for `key` named `subject`, signed by issuer (certificate, key) or by itself."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name if issuer is None else issuer[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key if issuer is None else issuer[1], hashes.SHA256())


def make_certificates(server_names: tuple[str, ...] = ()) -> Certificates:
    """A fresh CA and a server and a client certificate it signed (EC P-256, two days)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    def pem(certificate: Any) -> bytes:
        return bytes(certificate.public_bytes(serialization.Encoding.PEM))

    ca_key = _key()
    ca = _certificate(
        "finops test Astra CA",
        ca_key,
        None,
        [(x509.BasicConstraints(ca=True, path_length=0), True)],
    )
    server_key = _key()
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), *map(x509.DNSName, server_names)]
    names.append(x509.IPAddress(ipaddress.ip_address(LOCALHOST)))
    server = _certificate(
        "finops test Astra server",
        server_key,
        (ca, ca_key),
        [
            (x509.SubjectAlternativeName(names), False),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )
    client_key = _key()
    client = _certificate(
        "finops test Astra client",
        client_key,
        (ca, ca_key),
        [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)],
    )
    return Certificates(
        ca=KeyPair(pem(ca), _pem_key(ca_key)),
        server=KeyPair(pem(server), _pem_key(server_key)),
        client=KeyPair(pem(client), _pem_key(client_key)),
    )


def server_context(certificates: Certificates) -> ssl.SSLContext:
    """Mutual TLS, server side: the server certificate, and only clients the CA signed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=certificates.ca.cert.decode("ascii"))
    with tempfile.TemporaryDirectory() as folder:  # load_cert_chain reads files only
        cert, key = Path(folder) / "server.pem", Path(folder) / "server.key"
        cert.write_bytes(certificates.server.cert)
        key.write_bytes(certificates.server.key)
        context.load_cert_chain(cert, key)
    return context


# ---- the metadata service ------------------------------------------------------------------------


class MetadataService:
    """HTTPS `GET /metadata` with mutual TLS, answering Astra's `contact_info` document."""

    def __init__(self, certificates: Certificates, document: dict[str, object]) -> None:
        body = json.dumps(document).encode("utf-8")
        context = server_context(certificates)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server hook's name)
                if self.path != METADATA_PATH:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[Any, Any]:
                connection, address = self.socket.accept()
                return context.wrap_socket(connection, server_side=True), address

            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # a refused client certificate is the point of some tests

        self._server = Server((LOCALHOST, 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


# ---- the SNI proxy -------------------------------------------------------------------------------


class SniProxy:
    """Mutual TLS on one port; each connection is piped to `routes[its TLS server name]`.

    A name not in `routes` (or no name) closes the connection, as Astra's proxy does for a
    host id it does not know. Runs an asyncio loop in a thread of its own.
    """

    def __init__(self, certificates: Certificates, routes: dict[str, tuple[str, int]]) -> None:
        self.routes = dict(routes)
        self.server_names: list[str] = []
        self._context = server_context(certificates)
        self._context.sni_callback = self._remember_name
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, LOCALHOST, 0, ssl=self._context)
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _remember_name(self, connection: Any, name: str | None, _context: Any) -> None:
        connection.sni_name = name

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        name = getattr(writer.get_extra_info("ssl_object"), "sni_name", None)
        route = self.routes.get(name or "")
        if name is not None:
            self.server_names.append(name)
        if route is None:
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*route)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )
        self._writers.difference_update((writer, upstream_writer))

    async def _close(self) -> None:
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await self._server.wait_closed()

    def stop(self) -> None:
        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


# ---- the secure connect bundle -------------------------------------------------------------------


def write_bundle(
    path: Path,
    *,
    ca: bytes,
    client: KeyPair,
    metadata_port: int,
    keyspace: str,
    local_dc: str,
    host: str = LOCALHOST,
) -> Path:
    """A secure connect bundle as Astra ships one: config.json (host and port of the metadata
    service, keyspace, localDC and the file locations), ca.crt, cert, key and cqlshrc. (Astra
    adds Java keystores, cert.pfx, identity.jks and trustStore.jks, which the Python driver
    does not read.)"""
    config = {
        "host": host,
        "port": metadata_port,
        "cql_port": 29042,
        "keyspace": keyspace,
        "localDC": local_dc,
        "caCertLocation": "./ca.crt",
        "keyLocation": "./key",
        "certLocation": "./cert",
    }
    cqlshrc = (
        "[connection]\n"
        f"hostname = {host}\nport = 29042\nssl = true\n\n"
        "[ssl]\nvalidate = true\ncertfile = ./ca.crt\nuserkey = ./key\nusercert = ./cert\n"
    )
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("config.json", json.dumps(config, indent=2))
        bundle.writestr("ca.crt", ca)
        bundle.writestr("cert", client.cert)
        bundle.writestr("key", client.key)
        bundle.writestr("cqlshrc", cqlshrc)
    return path


def metadata_document(local_dc: str, host_ids: list[str], proxy_port: int) -> dict[str, object]:
    """What Astra's metadata service answers: the data centre, the nodes' host ids and where
    the SNI proxy listens."""
    return {
        "version": 1,
        "region": local_dc,
        "contact_info": {
            "type": "sni_proxy",
            "local_dc": local_dc,
            "contact_points": host_ids,
            "sni_proxy_address": f"{LOCALHOST}:{proxy_port}",
        },
    }


def application_token() -> str:
    """A token shaped like Astra's: AstraCS:<client id>:<64 hex digits>."""
    return f"AstraCS:{secrets.token_urlsafe(18)}:{secrets.token_hex(32)}"


# ---- the whole stand-in --------------------------------------------------------------------------


@attrs.define
class AstraStandIn:
    """A running stand-in: metadata service, SNI proxy, a bundle and the token's role."""

    folder: Path
    certificates: Certificates
    metadata: MetadataService
    proxy: SniProxy
    bundle: Path
    token: str = attrs.field(repr=False)
    keyspace: str
    local_dc: str
    host_id: str

    @classmethod
    def open(
        cls, folder: Path, node: tuple[str, int], superuser: tuple[str, str], keyspace: str
    ) -> AstraStandIn:
        """Read the node's host id and data centre, create the token's role and the keyspace
        (as the Astra UI would), then start the metadata service and the proxy."""
        host_id, local_dc = _provision(node, superuser, keyspace, token := application_token())
        certificates = make_certificates((host_id,))
        proxy = SniProxy(certificates, {host_id: node})
        metadata = MetadataService(certificates, metadata_document(local_dc, [host_id], proxy.port))
        folder.mkdir(parents=True, exist_ok=True)
        bundle = write_bundle(
            folder / f"secure-connect-{keyspace}.zip",
            ca=certificates.ca.cert,
            client=certificates.client,
            metadata_port=metadata.port,
            keyspace=keyspace,
            local_dc=local_dc,
        )
        return cls(
            folder, certificates, metadata, proxy, bundle, token, keyspace, local_dc, host_id
        )

    def bundle_variant(self, name: str, **changes: Any) -> Path:
        """Another bundle of this database with some of `write_bundle`'s arguments changed."""
        arguments: dict[str, Any] = {
            "ca": self.certificates.ca.cert,
            "client": self.certificates.client,
            "metadata_port": self.metadata.port,
            "keyspace": self.keyspace,
            "local_dc": self.local_dc,
        }
        arguments.update(changes)
        return write_bundle(self.folder / name, **arguments)

    def close(self) -> None:
        self.proxy.stop()
        self.metadata.stop()


def _provision(
    node: tuple[str, int], superuser: tuple[str, str], keyspace: str, token: str
) -> tuple[str, str]:
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster

    cluster = Cluster(
        contact_points=[node[0]], port=node[1], auth_provider=PlainTextAuthProvider(*superuser)
    )
    try:
        session = cluster.connect()
        local = session.execute("SELECT host_id, data_center FROM system.local").one()
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = "
            f"{{'class': 'NetworkTopologyStrategy', '{local.data_center}': 1}}"
        )
        # A new role each time (not ALTER ROLE: Cassandra 5 limits how often a password changes).
        session.execute("DROP ROLE IF EXISTS 'token'")
        session.execute("CREATE ROLE 'token' WITH LOGIN = true AND PASSWORD = %s", (token,))
        session.execute(f"GRANT ALL PERMISSIONS ON KEYSPACE {keyspace} TO 'token'")
        return str(local.host_id), str(local.data_center)
    finally:
        cluster.shutdown()


@contextlib.contextmanager
def running_standin(
    folder: Path, node: tuple[str, int], superuser: tuple[str, str], keyspace: str
) -> Iterator[AstraStandIn]:
    standin = AstraStandIn.open(folder, node, superuser, keyspace)
    try:
        yield standin
    finally:
        standin.close()
