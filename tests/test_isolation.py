"""Isolation and back-pressure: slow or dead endpoints never hold up the others."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiohttp import web
from conftest import LOOPBACK, Received, Receiver

from webhookkit import DeliveryConfig, DeliveryStatus, HTTPTransport, Timeouts, WebhookKit
from webhookkit.delivery.isolation import IsolationConfig
from webhookkit.testing import FakeClock

ReceiverFactory = Callable[[], Awaitable[Receiver]]


async def webhook(kit: WebhookKit, url: str, event: str, **kwargs: object) -> str:
    app = await kit.apps.create("shop", permissions=["MANAGE_ORDERS", "MANAGE_PRODUCTS"])
    hook = await kit.webhooks.create(
        app,
        target_url=url,
        events=[event],
        **kwargs,  # type: ignore[arg-type]
    )
    return hook.id


async def test_fast_endpoint_finishes_while_the_slow_one_hangs(
    receiver_factory: ReceiverFactory,
) -> None:
    slow, fast = await receiver_factory(), await receiver_factory()
    release = asyncio.Event()

    async def hang(request: web.Request, record: Received) -> web.Response:
        await release.wait()  # the slow endpoint answers only when the test is over
        return web.Response(text="late")

    slow.handler = hang
    # Leaving the block cancels the slow sends after 1 s and hands their leases back.
    async with WebhookKit(
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
        delivery=DeliveryConfig(drain_timeout=1),
    ) as kit:
        # A budget no test run reaches: what follows holds however slow the machine is.
        await webhook(kit, slow.url, "PRODUCT_CREATED", timeouts=Timeouts(connect=2, total=3600))
        await webhook(kit, fast.url, "ORDER_CREATED")
        slow_ids: list[str] = []
        fast_ids: list[str] = []
        for n in range(500):
            if n < 50:
                slow_ids += await kit.trigger("PRODUCT_CREATED", payload={"n": n})
            fast_ids += await kit.trigger("ORDER_CREATED", payload={"n": n})
        done = await kit.wait_for(fast_ids, timeout=60)
        slow_attempts = [a for i in slow_ids for a in await kit.list_attempts(i)]
        assert all(d.status is DeliveryStatus.SUCCESS for d in done)
        assert len(fast.received) == 500
        # The slow endpoint's requests are all still unanswered, and it never had more than
        # its share of send slots.
        assert slow_attempts == []
        assert 1 <= len(slow.received) <= kit.scheduler.gate.config.per_endpoint
    release.set()
    pending = [await kit.get_delivery(i) for i in slow_ids]
    assert all(d is not None and d.status is DeliveryStatus.PENDING for d in pending)
    assert all(d is not None and d.lease_until is None for d in pending)


async def test_breaker_holds_deliveries_without_spending_their_retries(
    clock: FakeClock, receiver: Receiver
) -> None:
    receiver.statuses = [503, 503, 503]
    config = IsolationConfig(per_endpoint=1, failure_threshold=3, cooldown=timedelta(seconds=30))
    async with WebhookKit(
        clock=clock,
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
        delivery=DeliveryConfig(isolation=config),
    ) as kit:
        hook_id = await webhook(kit, receiver.url, "ORDER_CREATED")
        ids = [i for n in range(10) for i in await kit.trigger("ORDER_CREATED", payload={"n": n})]
        await kit.wait_idle()
        assert len(receiver.received) == 3  # then the breaker opened
        attempts = [len(await kit.list_attempts(i)) for i in ids]
        assert sorted(attempts) == [0] * 7 + [1] * 3
        assert kit.scheduler.gate.state(hook_id, clock.now()) == "open"
        await clock.advance(9)  # nothing is due and the breaker holds the other seven
        await kit.wait_idle()
        assert len(receiver.received) == 3
        # The failing delivery's own retry falls due before the 30 s cooldown ends: it goes as
        # the probe (so the breaker never moves a retry off its schedule); it succeeds and
        # the rest follow.
        await clock.advance(1)
        await kit.wait_idle()
        deliveries = await kit.wait_for(ids, timeout=10)
    assert all(d.status is DeliveryStatus.SUCCESS for d in deliveries)
    assert sorted(d.attempts for d in deliveries) == [1] * 7 + [2] * 3
    assert len(receiver.received) == 13


async def test_trigger_waits_when_too_many_deliveries_are_unfinished(receiver: Receiver) -> None:
    receiver.delay = 0.02
    seen: list[int] = []
    async with WebhookKit(
        transports=[HTTPTransport(allow_addresses=LOOPBACK)], delivery=DeliveryConfig(max_queued=5)
    ) as kit:
        await webhook(kit, receiver.url, "ORDER_CREATED")
        ids: list[str] = []
        for n in range(30):
            ids += await kit.trigger("ORDER_CREATED", payload={"n": n})
            seen.append(kit.scheduler.queued)
        await kit.wait_for(ids, timeout=30)
    assert max(seen) <= 5
    assert len(receiver.received) == 30
