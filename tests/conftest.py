"""Shared fixtures: real aiohttp receivers on 127.0.0.1, a FakeClock, a kit wired to both."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from stores.pgcluster import PostgresCluster, PostgresUnavailableError

from webhookkit import HTTPTransport, WebhookKit
from webhookkit.testing import FakeClock


@dataclass
class Received:
    """One request as the receiver saw it; ``headers`` keeps the raw order and casing."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


Handler = Callable[[web.Request, Received], Awaitable[web.StreamResponse] | web.StreamResponse]


@dataclass
class Receiver:
    """A real aiohttp server on a free loopback port that records every request.

    ``statuses`` scripts the answers in order (then 200); ``handler`` overrides all of it.
    """

    url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    body: str = "ok"
    delay: float = 0.0
    handler: Handler | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        record = Received(
            method=request.method,
            path=request.path_qs,
            headers=[(k.decode(), v.decode()) for k, v in request.raw_headers],
            body=await request.read(),
        )
        self.received.append(record)
        self.arrived.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.handler is not None:
            result = self.handler(request, record)
            return await result if isinstance(result, Awaitable) else result
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text=self.body)

    def for_path(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


@pytest.fixture
async def receiver_factory() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    runners: list[web.AppRunner] = []

    async def make(ssl_context: ssl.SSLContext | None = None) -> Receiver:
        """A receiver on a free loopback port; HTTPS when given a server TLS context."""
        receiver = Receiver()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", receiver._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        receiver.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
        return receiver

    yield make
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def receiver(receiver_factory: Callable[..., Awaitable[Receiver]]) -> Receiver:
    return await receiver_factory()


#: Tests deliver to loopback receivers, which the SSRF guard refuses unless allowed.
LOOPBACK = ("127.0.0.1/32",)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def kit(clock: FakeClock) -> AsyncIterator[WebhookKit]:
    """A started kit on a FakeClock with Saleor's defaults otherwise."""
    async with WebhookKit(
        domain="shop.example.com", clock=clock, transports=[HTTPTransport(allow_addresses=LOOPBACK)]
    ) as kit:
        yield kit


# One PostgreSQL server per test session, shared by the store and engine tests.
@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL server started with initdb/pg_ctl; missing binaries FAIL the tests."""
    problem = ""
    try:
        cluster = PostgresCluster.start()
    except PostgresUnavailableError as exc:
        problem = str(exc)
    if problem:  # outside the except block: the message alone, no chained traceback
        pytest.fail(f"cannot start PostgreSQL for the store tests: {problem}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def pg_dsn(pg_cluster: PostgresCluster) -> AsyncIterator[str]:
    """The DSN of an empty database that is dropped after the test."""
    async with pg_cluster.database() as dsn:
        yield dsn
