"""Receivers that answer garbage, and endpoints that never answer, on every store.

A raw asyncio server writes the answers byte for byte (aiohttp's server would refuse to send
a NUL or a 0xFF in a header), so what the transport meets is exactly what a broken or hostile
receiver sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from stores.conftest import make_store
from stores.pgcluster import PostgresCluster

from webhookkit import (
    DeliveryConfig,
    DeliveryStatus,
    HTTPTransport,
    RetryPolicy,
    Timeouts,
    WebhookKit,
)
from webhookkit.stores.base import Store
from webhookkit.testing import FakeClock

LOOPBACK = ("127.0.0.1/32",)

RETRY_AFTER = [
    "\u00b2",  # superscript two: str.isdigit() says yes, float() says no
    "\u0663",  # Arabic-Indic three
    "-5",
    "1e400",
    "99999999999999999999999999",
    "3.5",
    "Wed, 21 Oct 2015 07:28:00 GMT",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "soon",
    "",
]

ANSWERS: dict[str, bytes] = {
    **{
        f"/retry-after-{i}": b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: "
        + value.encode()
        + b"\r\nContent-Length: 4\r\n\r\nbusy"
        for i, value in enumerate(RETRY_AFTER)
    },
    "/nul-body": b"HTTP/1.1 500 Oops\r\nContent-Length: 9\r\n\r\nbad\x00body\x00",
    "/bad-utf8": b"HTTP/1.1 500 Oops\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 6\r\n\r\n\xff\xfe\xc3(ok",
    "/ff-header": b"HTTP/1.1 503 Oops\r\nX-Broken: caf\xff\xfe\r\nRetry-After: 7\r\n"
    b"Content-Length: 2\r\n\r\nno",
    "/ok-but-odd": b"HTTP/1.1 200 OK\r\nX-Weird: \xc0\xaf\r\nContent-Length: 3\r\n\r\n\x00\x01k",
}


@dataclass
class RawServer:
    """Answers each request with the raw bytes scripted for its path; ``hang`` paths get none."""

    answers: dict[str, bytes]
    hang: frozenset[str] = frozenset()
    url: str = ""
    requests: list[str] = field(default_factory=list)
    arrivals: dict[str, list[float]] = field(default_factory=dict)
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                self.requests.append(path)
                self.arrivals.setdefault(path, []).append(time.monotonic())
                if path in self.hang:
                    await asyncio.Event().wait()  # accept, read, never answer
                writer.write(
                    self.answers.get(path, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with contextlib.AsyncExitStack() as stack:
        dsn = None
        if request.param == "postgres":
            cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
            dsn = await stack.enter_async_context(cluster.database())
        store = make_store(request.param, tmp_path, dsn)
        stack.push_async_callback(store.aclose)
        yield store


def storable(text: str) -> bool:
    """What every store keeps: valid UTF-8 without NUL."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


async def test_poison_answers_are_recorded_and_the_policy_decides(any_store: Store) -> None:
    server = RawServer(ANSWERS)
    await server.start()
    clock = FakeClock()
    kit = WebhookKit(
        store=any_store,
        clock=clock,
        retry=RetryPolicy.status_aware(max_attempts=2),
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
        retention=None,  # the clock jumps an hour: keep the records to look at
    )
    try:
        async with kit:
            app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
            for path in ANSWERS:
                await kit.webhooks.create(
                    app, target_url=server.url + path, events=["ORDER_CREATED"], secret_key="k"
                )
            ids = await kit.trigger("ORDER_CREATED", payload={"n": 1})
            await kit.wait_idle()
            for delivery_id in ids:
                delivery = await kit.get_delivery(delivery_id)
                assert delivery is not None
                [attempt] = await kit.list_attempts(delivery_id)
                texts = [attempt.response_excerpt, attempt.error or ""]
                texts += [v for pair in attempt.response_headers for v in pair]
                assert all(storable(t) for t in texts), attempt
                if attempt.response_status_code == 200:
                    assert delivery.status is DeliveryStatus.SUCCESS
                else:
                    # 503/500 are retried: the next try is finite and at most the policy's cap.
                    assert delivery.status is DeliveryStatus.PENDING, delivery
                    assert delivery.next_try_at is not None
                    wait = (delivery.next_try_at - clock.now()).total_seconds()
                    assert 1 <= wait <= 3600
            await clock.advance(3601)
            await kit.wait_idle()
            finals = await kit.wait_for(ids, timeout=30)
    finally:
        await server.aclose()
    assert {d.status for d in finals} <= {DeliveryStatus.SUCCESS, DeliveryStatus.FAILED}
    attempts = [a for d in ids for a in await kit.list_attempts(d)]
    # Never sent without an attempt row: one row per request the receiver saw.
    assert len(attempts) == len(server.requests)
    assert len(attempts) == 2 * (len(ANSWERS) - 1) + 1


async def test_a_hanging_endpoint_does_not_hold_up_the_others(any_store: Store) -> None:
    server = RawServer({}, hang=frozenset({"/hang"}))
    await server.start()
    kit = WebhookKit(
        store=any_store,
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
        delivery=DeliveryConfig(
            concurrency=20, drain_timeout=0.2, timeouts=Timeouts(connect=2, total=20)
        ),
    )
    try:
        async with kit:
            app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS", "MANAGE_PRODUCTS"])
            await kit.webhooks.create(
                app, target_url=server.url + "/hang", events=["PRODUCT_UPDATED"], secret_key="k"
            )
            await kit.webhooks.create(
                app, target_url=server.url + "/fast", events=["ORDER_CREATED"], secret_key="k"
            )
            for n in range(1000):
                await kit.trigger("PRODUCT_UPDATED", payload={"n": n})
            due: list[float] = []
            ids: list[str] = []
            for n in range(500):
                ids += await kit.trigger("ORDER_CREATED", payload={"n": n})
                due.append(time.monotonic())
            done = await kit.wait_for(ids, timeout=60)
            assert all(d.status is DeliveryStatus.SUCCESS for d in done)
    finally:
        await server.aclose()
    arrived = server.arrivals["/fast"]
    assert len(arrived) == 500
    # Each fast delivery reached its receiver within 2 s of being queued (the bound;
    # before the fix the first one waited for the hanging sends' 20 s timeout).
    lags = [a - d for a, d in zip(sorted(arrived), due, strict=True)]
    assert max(lags) < 2.0, f"slowest fast delivery took {max(lags):.2f}s"
    hung = server.arrivals.get("/hang", [])
    assert 0 < len(hung) <= 2 * 10, "the hanging endpoint gets only its share of sends"
