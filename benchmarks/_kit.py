"""The one place the benchmarks build a :class:`WebhookKit`, and the no-op transport.

Every scenario constructs its kits through :func:`make_kit`, so a change of the kit's
constructor is a change here only. It takes the settings the benchmarks vary and passes
everything else at its default.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import ClassVar

from webhookkit import (
    DeliveryConfig,
    DeliveryQuery,
    DeliveryStatus,
    HTTPTransport,
    OutboundMessage,
    Store,
    Transport,
    TransportResult,
    WebhookKit,
)

__all__ = [
    "LOOPBACK",
    "NOOP_SCHEME",
    "NoopTransport",
    "count_deliveries",
    "make_kit",
    "wait_counted",
]

#: The SSRF guard lets the benchmark's receiver on 127.0.0.1 through, nothing else.
LOOPBACK = ("127.0.0.1/32",)
NOOP_SCHEME = "noop"


class NoopTransport(Transport):
    """Accepts every message at once: what is left is the kit's and the store's own work."""

    schemes: ClassVar[frozenset[str]] = frozenset({NOOP_SCHEME})

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, message: OutboundMessage) -> TransportResult:
        self.sent += 1
        return TransportResult(ok=True, status_code=200, response_excerpt="ok")


def make_kit(
    *,
    store: Store | str | None = None,
    concurrency: int = 100,
    extra_transports: Sequence[Transport] = (),
    max_queued: int | None = 100_000,
    poll_interval: float | None = None,
    lease: timedelta = timedelta(minutes=5),
) -> WebhookKit:
    """A kit on ``store`` sending through HTTP (loopback allowed) plus ``extra_transports``.

    The HTTP transport keeps up to ``concurrency`` connections to one host, so the kit and the
    raw aiohttp baseline (a connector limited to ``concurrency``) have the same connections.
    Everything not named here is the kit's default (batch size, flush interval, isolation...).
    """
    http = HTTPTransport(allow_addresses=LOOPBACK, limit=concurrency, limit_per_host=concurrency)
    delivery = DeliveryConfig(
        concurrency=concurrency, max_queued=max_queued, poll_interval=poll_interval, lease=lease
    )
    return WebhookKit(
        domain="shop.example.com",
        store=store,
        transports=[http, *extra_transports],
        delivery=delivery,
    )


async def wait_counted(kit: WebhookKit, expected: int, timeout: float = 600.0) -> None:
    """Wait until the kit's own counters show ``expected`` finished deliveries.

    Read in process every 2 ms: cheaper than ``wait_for`` (which reads the store for every
    pending id) and it puts no load on the store being measured.
    """
    deadline = time.perf_counter() + timeout
    while kit.stats.successes + kit.stats.failures < expected:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{kit.stats.successes} of {expected} done after {timeout:.0f} s")
        await asyncio.sleep(0.002)


async def count_deliveries(kit: WebhookKit, status: DeliveryStatus) -> int:
    """How many deliveries the kit's store holds in ``status`` (paged: a query lists at most
    10,000)."""
    total = 0
    while True:
        page = await kit.list_deliveries(DeliveryQuery(status=status, limit=10_000, offset=total))
        total += len(page)
        if len(page) < 10_000:
            return total
