"""Fixtures for the transport tests: TLS receivers with a trustme CA, moto's SQS server and
Google's Pub/Sub emulator (both started once per session on free loopback ports)."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from conftest import Receiver

from transports.servers import (
    LocalServer,
    ServerUnavailableError,
    start_moto,
    start_pubsub_emulator,
)

ReceiverFactory = Callable[..., Awaitable[Receiver]]


@dataclass
class ServerHandle:
    """A session server, or why it could not start; ``require()`` fails the calling test."""

    name: str
    server: LocalServer | None
    problem: str | None = None

    def require(self) -> LocalServer:
        if self.server is None:
            pytest.fail(f"{self.name} is not available: {self.problem}", pytrace=False)
        return self.server


@pytest.fixture(scope="session")
def moto() -> Iterator[ServerHandle]:
    """moto's standalone SQS server for the whole session."""
    try:
        server = start_moto()
    except ServerUnavailableError as exc:
        yield ServerHandle("moto_server", None, str(exc))
        return
    try:
        yield ServerHandle("moto_server", server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[ServerHandle]:
    """Google's Pub/Sub emulator for the whole session; a missing install FAILS the tests."""
    try:
        server = start_pubsub_emulator()
    except ServerUnavailableError as exc:
        yield ServerHandle("the Pub/Sub emulator", None, str(exc))
        return
    try:
        yield ServerHandle("the Pub/Sub emulator", server)
    finally:
        server.stop()


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def other_ca() -> trustme.CA:
    """A CA nobody's certificate is signed by: trusting it alone must not be enough."""
    return trustme.CA()


def _write(tmp_path_factory: pytest.TempPathFactory, name: str, data: bytes) -> Path:
    path = tmp_path_factory.mktemp("tls") / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory, "ca.pem", ca.cert_pem.bytes())


@pytest.fixture(scope="session")
def other_ca_file(other_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory, "other-ca.pem", other_ca.cert_pem.bytes())


@pytest.fixture(scope="session")
def client_cert_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A client certificate and its key in one PEM, issued by ``ca``."""
    leaf = ca.issue_cert("client.webhookkit.test")
    return _write(tmp_path_factory, "client.pem", leaf.private_key_and_cert_chain_pem.bytes())


@pytest.fixture(scope="session")
def server_ssl(ca: trustme.CA) -> ssl.SSLContext:
    """A server context for 127.0.0.1 and localhost, signed by ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def server_mtls(ca: trustme.CA) -> ssl.SSLContext:
    """Like ``server_ssl`` but it demands a client certificate signed by ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


@pytest.fixture
def server_factory(receiver_factory: ReceiverFactory) -> ReceiverFactory:
    """Recording receivers on 127.0.0.1, with TLS when given a server context."""
    return receiver_factory
