"""Opt-in ordering: per webhook and ordering key, one delivery at a time in trigger order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web
from conftest import LOOPBACK, Received, Receiver

from webhookkit import DeliveryStatus, HTTPTransport, InvalidFieldError, WebhookKit
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


async def test_an_ordering_key_no_store_can_keep_is_refused_and_nothing_is_queued(
    tmp_path: Path,
) -> None:
    # SQLite would cut a key at its NUL (so "a\0b" and "a\0c" would share one order) and
    # keep a lone surrogate as undecodable bytes; PostgreSQL refuses both.
    for store in ("memory://", f"sqlite:///{tmp_path / 'keys.db'}"):
        async with WebhookKit(domain="shop.example.com", store=store) as kit:
            app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
            await kit.webhooks.create(
                app, target_url="https://erp.example.com/h", events=["ORDER_UPDATED"], ordered=True
            )
            for bad in ("a\x00b", "key-\ud800"):
                with pytest.raises(InvalidFieldError, match="ordering_key") as caught:
                    await kit.trigger("ORDER_UPDATED", payload={"n": 1}, ordering_key=bad)
                assert caught.value.field == "ordering_key"
            assert await kit.list_deliveries() == []
            # A subject id with the same characters is made storable instead of refused.
            [made] = await kit.trigger("ORDER_UPDATED", subject={"id": "a\x00b"}, payload={})
            delivery = await kit.get_delivery(made)
            assert delivery is not None and delivery.ordering_key == "a\ufffdb"
