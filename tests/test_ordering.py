"""Opt-in ordering: per webhook and ordering key, one delivery at a time in trigger order."""

from __future__ import annotations

import json

from aiohttp import web
from conftest import LOOPBACK, Received, Receiver

from webhookkit import DeliveryStatus, HTTPTransport, WebhookKit
from webhookkit.testing import FakeClock


async def test_an_ordered_key_waits_for_its_predecessor_while_other_keys_flow(
    clock: FakeClock, receiver: Receiver
) -> None:
    failed_once: set[str] = set()

    def answer(request: web.Request, record: Received) -> web.Response:
        body = json.loads(record.body)
        if body["step"] == "a1" and "a1" not in failed_once:
            failed_once.add("a1")
            return web.Response(status=503)
        return web.Response(status=200)

    receiver.handler = answer
    async with WebhookKit(clock=clock, transports=[HTTPTransport(allow_addresses=LOOPBACK)]) as kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        await kit.webhooks.create(
            app, target_url=receiver.url, events=["ORDER_UPDATED"], ordered=True
        )
        ids = []
        for order, step in (("A", "a1"), ("A", "a2"), ("B", "b1"), ("A", "a3")):
            ids += await kit.trigger("ORDER_UPDATED", subject={"id": order}, payload={"step": step})
        await kit.wait_idle()
        steps = [json.loads(r.body)["step"] for r in receiver.received]
        assert sorted(steps) == ["a1", "b1"]  # a2 and a3 wait while a1 awaits its retry
        await clock.advance(10)
        deliveries = await kit.wait_for(ids, timeout=10)
    assert all(d.status is DeliveryStatus.SUCCESS for d in deliveries)
    a_steps = [json.loads(r.body)["step"] for r in receiver.received if b'"a' in r.body]
    assert a_steps == ["a1", "a1", "a2", "a3"]
    assert {d.ordering_key for d in deliveries} == {"A", "B"}


async def test_unordered_webhooks_send_without_waiting(kit: WebhookKit, receiver: Receiver) -> None:
    receiver.statuses = [503]
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    await kit.webhooks.create(app, target_url=receiver.url, events=["ORDER_UPDATED"])
    ids = []
    for step in ("x1", "x2"):
        ids += await kit.trigger("ORDER_UPDATED", subject={"id": "A"}, payload={"step": step})
    await kit.wait_idle()
    assert len(receiver.received) == 2
    assert all(d.ordering_key is None for d in [await kit.get_delivery(i) for i in ids] if d)
