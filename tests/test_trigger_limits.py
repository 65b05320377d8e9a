"""Decided at trigger time: payload filters skip webhooks (counted), and a body over its
transport's size limit is a recorded final failure, never sent and never retried."""

from __future__ import annotations

from conftest import LOOPBACK, Receiver

from webhookkit import DeliveryStatus, HTTPTransport, WebhookKit
from webhookkit.dispatcher import FILTERED


async def test_filters_skip_and_count(receiver: Receiver) -> None:
    async with WebhookKit(transports=[HTTPTransport(allow_addresses=LOOPBACK)]) as kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        await kit.webhooks.create(
            app,
            target_url=receiver.url + "/big",
            events=["ORDER_CREATED"],
            secret_key="k",
            filter={"order.total": {"$gte": 100}},
        )
        await kit.webhooks.create(
            app, target_url=receiver.url + "/all", events=["ORDER_CREATED"], secret_key="k"
        )
        small = await kit.trigger("ORDER_CREATED", payload={"order": {"total": 50}})
        big = await kit.trigger("ORDER_CREATED", payload={"order": {"total": 150}})
        await kit.wait_for(small + big, timeout=30)
    assert len(small) == 1 and len(big) == 2
    assert kit.stats.skipped == {FILTERED: 1}
    assert sorted(r.path for r in receiver.received) == ["/all", "/all", "/big"]


async def test_an_over_limit_body_fails_at_trigger_time(receiver: Receiver) -> None:
    transport = HTTPTransport(allow_addresses=LOOPBACK, max_body_bytes=64)
    async with WebhookKit(transports=[transport]) as kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        await kit.webhooks.create(
            app, target_url=receiver.url, events=["ORDER_CREATED"], secret_key="k"
        )
        [too_big] = await kit.trigger("ORDER_CREATED", payload={"note": "x" * 100})
        [fits] = await kit.trigger("ORDER_CREATED", payload={"note": "x"})
        done = {d.id: d for d in await kit.wait_for([too_big, fits], timeout=30)}
        [attempt] = await kit.list_attempts(too_big)
    assert done[too_big].status is DeliveryStatus.FAILED
    assert attempt.error_kind == "PayloadTooLargeError"
    assert "64-byte limit" in (attempt.error or "")
    assert done[fits].status is DeliveryStatus.SUCCESS
    assert [r.body for r in receiver.received] == [b'{"note":"x"}']
