"""No code path leaves a delivery pending forever after the scheduler stops and restarts.

A kit on a SQLite file is closed while its deliveries are in every unfinished state: sent
but unanswered (the send is cancelled by the short drain), held locally because the endpoint
is at its concurrency limit, waiting for a retry, and postponed by an open breaker. A new kit
on the same file, driven by a FakeClock through the whole retry schedule, finishes every one
of them: success, or failed after the last attempt, and no lease left anywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from aiohttp import web
from conftest import LOOPBACK, Received, Receiver

from webhookkit import (
    Delivery,
    DeliveryConfig,
    DeliveryQuery,
    DeliveryStatus,
    HTTPTransport,
    Timeouts,
    WebhookKit,
)
from webhookkit.delivery.isolation import IsolationConfig
from webhookkit.stores import SQLiteStore
from webhookkit.testing import FakeClock

ReceiverFactory = Callable[[], Awaitable[Receiver]]

ISOLATION = IsolationConfig(per_endpoint=1)  # breaker: 5 failures in a row, 30 s cooldown
STEP = 5.0  # fake seconds per step
#: Fake time allowed for the restarted kit: well past the 150 s retry schedule and the
#: breaker's cooldowns, and short of the kit's hourly retention purge.
HORIZON = 2000.0


async def read_all(path: Path) -> list[Delivery]:
    """Every delivery in the file, read with a store of its own (no kit running)."""
    store = SQLiteStore(path)
    try:
        return await store.list_deliveries(DeliveryQuery(limit=1000))
    finally:
        await store.aclose()


async def test_deliveries_in_every_state_finish_after_a_restart(
    tmp_path: Path, receiver_factory: ReceiverFactory
) -> None:
    slow, flaky, dead = [await receiver_factory() for _ in range(3)]
    answer = asyncio.Event()

    async def hold(request: web.Request, record: Received) -> web.Response:
        await answer.wait()  # the first kit's sends to it never get an answer
        return web.Response(text="ok")

    async def unavailable(request: web.Request, record: Received) -> web.Response:
        return web.Response(status=503)

    slow.handler = hold
    flaky.statuses = [503] * 5  # then 200
    dead.handler = unavailable

    path = tmp_path / "wk.db"
    url = f"sqlite:///{path}"
    clock = FakeClock()
    first = WebhookKit(
        store=url,
        clock=clock,
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
        delivery=DeliveryConfig(isolation=ISOLATION, drain_timeout=0.3),
    )
    try:
        app = await first.apps.create("shop", permissions=["MANAGE_ORDERS", "MANAGE_PRODUCTS"])
        hooks = {
            name: (
                await first.webhooks.create(
                    app, target_url=r.url, events=[event], timeouts=Timeouts(connect=5, total=60)
                )
            ).id
            for name, r, event in (
                ("slow", slow, "PRODUCT_CREATED"),
                ("flaky", flaky, "ORDER_CREATED"),
                ("dead", dead, "ORDER_UPDATED"),
            )
        }
        for event, times in (("PRODUCT_CREATED", 4), ("ORDER_CREATED", 6), ("ORDER_UPDATED", 3)):
            for n in range(times):
                await first.trigger(event, payload={"n": n})
        # Queued before the scheduler starts, so its first claim takes all 13: one send per
        # endpoint, the rest held locally; the flaky endpoint's fifth 503 opens its breaker
        # and its last held delivery goes back to the store until the breaker reopens.
        await first.start()

        async def settled() -> bool:
            made = await first.list_deliveries(DeliveryQuery(limit=1000))
            attempts = {name: 0 for name in hooks}
            for d in made:
                attempts[next(k for k, v in hooks.items() if v == d.webhook_id)] += d.attempts
            return (
                len(slow.received) == 1
                and attempts == {"slow": 0, "flaky": 5, "dead": 3}
                and first.stats.postponed == 1
            )

        for _ in range(600):  # up to 30 s of real time; the clock stands still
            if await settled():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the first kit never reached the mixed state")
    finally:
        now = clock.now()
        await first.aclose()  # cancels the unanswered send after 0.3 s

    # Before the restart: every kind of unfinished delivery is there, and the closed kit
    # handed back the leases of what it had claimed but not finished.
    before = await read_all(path)
    by_hook = {name: [d for d in before if d.webhook_id == hook] for name, hook in hooks.items()}
    assert all(d.status is DeliveryStatus.PENDING for d in before) and len(before) == 13
    assert [(d.attempts, d.lease_until) for d in by_hook["slow"]] == [(0, None)] * 4
    retrying = [d for d in before if d.next_try_at is not None and d.next_try_at > now]
    assert len(retrying) == 8 and all(d.attempts == 1 for d in retrying)
    (postponed,) = [d for d in by_hook["flaky"] if d.attempts == 0]
    # Back when the breaker reopens: after its cooldown, or sooner when the delivery that
    # opened it is due again (that retry is then the probe).
    retry_of_flaky = min(
        d.next_try_at for d in by_hook["flaky"] if d.attempts == 1 and d.next_try_at is not None
    )
    assert postponed.lease_until == min(now + ISOLATION.cooldown, retry_of_flaky)

    answer.set()
    second = WebhookKit(
        store=url,
        clock=clock,
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
        delivery=DeliveryConfig(isolation=ISOLATION),
    )
    async with second:
        for _ in range(int(HORIZON / STEP)):
            async with asyncio.timeout(30):
                await second.wait_idle()
            if not await second.list_deliveries(
                DeliveryQuery(status=DeliveryStatus.PENDING, limit=1)
            ):
                break
            await clock.advance(STEP)
        after = await second.list_deliveries(DeliveryQuery(limit=1000))

    assert len(after) == 13
    assert [d for d in after if d.status is DeliveryStatus.PENDING] == []
    assert [d for d in after if d.lease_until is not None] == []
    final = {name: [d for d in after if d.webhook_id == hook] for name, hook in hooks.items()}
    assert {d.status for d in final["slow"] + final["flaky"]} == {DeliveryStatus.SUCCESS}
    assert {d.status for d in final["dead"]} == {DeliveryStatus.FAILED}
    # The cancelled send recorded no attempt; it went out once more after the restart.
    assert [d.attempts for d in final["slow"]] == [1] * 4 and len(slow.received) == 5
    assert sorted(d.attempts for d in final["flaky"]) == [1] + [2] * 5
    assert len(flaky.received) == 11
    assert [d.attempts for d in final["dead"]] == [5] * 3 and len(dead.received) == 15
    assert clock.now() - now < timedelta(seconds=HORIZON)
