"""Delivery records: manual retry with a fresh budget, retention, queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiohttp import web
from conftest import LOOPBACK, Received, Receiver

from webhookkit import DeliveryQuery, DeliveryStatus, HTTPTransport, InvalidFieldError, WebhookKit
from webhookkit.stores.base import Retention
from webhookkit.testing import FakeClock


async def setup(kit: WebhookKit, url: str) -> None:
    app = await kit.apps.create("shop", permissions=["MANAGE_ORDERS"])
    await kit.webhooks.create(app, target_url=url, events=["ORDER_CREATED"])


async def test_manual_retry_of_a_failed_delivery_starts_a_fresh_budget(
    kit: WebhookKit, clock: FakeClock, receiver: Receiver
) -> None:
    receiver.statuses = [500] * 5 + [503]
    await setup(kit, receiver.url)
    [delivery_id] = await kit.trigger("ORDER_CREATED", payload={})
    for step in (10, 20, 40, 80):
        await kit.wait_idle()
        await clock.advance(step)
    [failed] = await kit.wait_for([delivery_id], timeout=10)
    assert failed.status is DeliveryStatus.FAILED and failed.attempts == 5
    await clock.advance(3600)
    requeued = await kit.retry_delivery(delivery_id)
    assert requeued.status is DeliveryStatus.PENDING
    await kit.wait_idle()
    after_first = await kit.get_delivery(delivery_id)
    assert after_first is not None and after_first.status is DeliveryStatus.PENDING
    # The sixth attempt (503) is the first of a new budget: retried 10 s later, not failed.
    assert after_first.next_try_at == clock.now() + timedelta(seconds=10)
    # That failed probe re-opened the endpoint's breaker, but only until this delivery's own
    # retry, which is then the probe: the fresh budget keeps Saleor's schedule.
    await clock.advance(9)
    await kit.wait_idle()
    assert len(receiver.received) == 6
    await clock.advance(1)
    [done] = await kit.wait_for([delivery_id], timeout=10)
    assert done.status is DeliveryStatus.SUCCESS
    assert done.attempts == 7
    assert [a.number for a in await kit.list_attempts(delivery_id)] == list(range(1, 8))


async def test_retrying_a_pending_or_unknown_delivery_is_an_error(
    clock: FakeClock, receiver: Receiver
) -> None:
    kit = WebhookKit(clock=clock, transports=[HTTPTransport(allow_addresses=LOOPBACK)])
    await setup(kit, receiver.url)
    [delivery_id] = await kit.trigger("ORDER_CREATED", payload={})
    with pytest.raises(InvalidFieldError, match="still pending"):
        await kit.retry_delivery(delivery_id)
    with pytest.raises(InvalidFieldError, match="does not exist"):
        await kit.retry_delivery("nope")


def test_default_retention_keeps_successes_a_day_and_failures_14_days() -> None:
    default = WebhookKit().retention
    assert default is not None
    assert default.keep_success == timedelta(hours=24)
    assert default.keep_failed == timedelta(days=14)


async def test_retention_purges_successes_and_keeps_failures_14_days(
    clock: FakeClock, receiver: Receiver
) -> None:
    def answer(request: web.Request, record: Received) -> web.Response:
        return web.Response(status=404 if record.body == b'{"n":1}' else 200)

    receiver.handler = answer
    saleor_rule = Retention(keep_success=None)  # successes purged at once, as Saleor does
    async with WebhookKit(
        clock=clock, retention=saleor_rule, transports=[HTTPTransport(allow_addresses=LOOPBACK)]
    ) as kit:
        await setup(kit, receiver.url)
        failed = await kit.trigger("ORDER_CREATED", payload={"n": 1})
        ok = await kit.trigger("ORDER_CREATED", payload={"n": 2})
        await kit.wait_for(failed + ok, timeout=10)
        await clock.advance(3600)  # the hourly purge runs
        await kit.wait_idle()
        for _ in range(50):
            if await kit.get_delivery(ok[0]) is None:
                break
            await clock.advance(0)
        assert await kit.get_delivery(ok[0]) is None
        assert await kit.get_delivery(failed[0]) is not None
        assert await kit.purge(keep_failed=timedelta(days=14)) == 0
        await clock.advance(14 * 86400)
        assert await kit.purge() == 1
        assert await kit.list_deliveries(DeliveryQuery()) == []
