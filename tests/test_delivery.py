"""The delivery pipeline end to end: real loopback receivers, FakeClock for the schedule."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from aiohttp import web
from conftest import LOOPBACK, Received, Receiver

from webhookkit import (
    ANY_EVENTS,
    ConfigurationError,
    DeliveryStatus,
    HTTPTransport,
    PayloadError,
    RetryPolicy,
    Timeouts,
    WebhookKit,
    verify_jws,
)
from webhookkit.testing import FakeClock

ReceiverFactory = Callable[[], Awaitable[Receiver]]


async def app_with_webhook(
    kit: WebhookKit, url: str, *, events: list[str] | None = None, **kwargs: object
) -> tuple[str, str]:
    app = await kit.apps.create("shop", permissions=["MANAGE_ORDERS", "MANAGE_APPS"])
    webhook = await kit.webhooks.create(
        app,
        target_url=url,
        events=events or ["ORDER_CREATED"],
        **kwargs,  # type: ignore[arg-type]
    )
    return app.id, webhook.id


async def test_trigger_fans_out_one_delivery_per_webhook(
    kit: WebhookKit, receiver_factory: ReceiverFactory
) -> None:
    first, second = await receiver_factory(), await receiver_factory()
    await app_with_webhook(kit, first.url + "/a")
    await app_with_webhook(kit, second.url + "/b", secret_key="s3cret")
    ids = await kit.trigger("ORDER_CREATED", payload={"order": {"id": "T3JkZXI6MQ=="}})
    assert len(ids) == 2
    deliveries = await kit.wait_for(ids, timeout=10)
    assert [d.status for d in deliveries] == [DeliveryStatus.SUCCESS] * 2
    assert all(d.attempts == 1 for d in deliveries)
    for receiver in (first, second):
        [request] = receiver.received
        assert request.method == "POST"
        assert request.body == b'{"order":{"id":"T3JkZXI6MQ=="}}'
    assert {d.payload_id for d in deliveries} == {deliveries[0].payload_id}


async def test_headers_in_saleor_order_with_custom_headers_last(
    kit: WebhookKit, receiver: Receiver
) -> None:
    await app_with_webhook(
        kit,
        receiver.url,
        secret_key="k",
        custom_headers={"X-Tenant": "acme", "X-Saleor-Domain": "override.example"},
    )
    [delivery] = await kit.wait_for(await kit.trigger("ORDER_CREATED", payload={}), timeout=10)
    assert delivery.status is DeliveryStatus.SUCCESS
    [request] = receiver.received
    ours = [
        (k, v)
        for k, v in request.headers
        if k.lower().startswith(("content-type", "x-", "saleor-"))
    ]
    signature = hmac.new(b"k", b"{}", hashlib.sha256).hexdigest()
    assert ours == [
        ("Content-Type", "application/json"),
        ("X-Saleor-Event", "order_created"),
        ("x-saleor-domain", "override.example"),
        ("X-Saleor-Signature", signature),
        ("Saleor-Event", "order_created"),
        ("Saleor-Domain", "shop.example.com"),
        ("Saleor-Signature", signature),
        ("Saleor-Api-Url", "https://shop.example.com/graphql/"),
        ("x-tenant", "acme"),
    ]


async def test_jws_is_verifiable_and_computed_once_per_payload(
    kit: WebhookKit, receiver: Receiver
) -> None:
    for _ in range(3):
        await app_with_webhook(kit, receiver.url)
    ids = await kit.trigger("ORDER_CREATED", payload={"n": 1})
    await kit.wait_for(ids, timeout=10)
    signatures = {r.header("Saleor-Signature") for r in receiver.received}
    assert len(receiver.received) == 3
    assert len(signatures) == 1
    signature = signatures.pop()
    assert signature is not None
    verify_jws(receiver.received[0].body, signature, kit.jwks())
    assert kit.stats.jws_signatures == 1


async def test_permission_is_checked_at_the_moment_of_the_event(
    kit: WebhookKit, receiver: Receiver
) -> None:
    app = await kit.apps.create("no-perms")
    await kit.webhooks.create(app, target_url=receiver.url, events=["ORDER_CREATED"])
    assert await kit.trigger("ORDER_CREATED", payload={}) == []
    await kit.apps.update(app.id, permissions=["MANAGE_ORDERS"])
    assert len(await kit.trigger("ORDER_CREATED", payload={})) == 1
    await kit.apps.update(app.id, permissions=[])
    assert await kit.trigger("ORDER_CREATED", payload={}) == []


async def test_inactive_webhook_or_app_receives_nothing(
    kit: WebhookKit, receiver: Receiver
) -> None:
    app_id, webhook_id = await app_with_webhook(kit, receiver.url)
    await kit.webhooks.update(webhook_id, is_active=False)
    assert await kit.trigger("ORDER_CREATED", payload={}) == []
    await kit.webhooks.update(webhook_id, is_active=True)
    await kit.apps.update(app_id, is_active=False)
    assert await kit.trigger("ORDER_CREATED", payload={}) == []


async def test_events_without_a_permission_reach_apps_without_permissions(
    kit: WebhookKit, receiver: Receiver
) -> None:
    app = await kit.apps.create("attrs")
    event = next(e for e in kit.registry if e.permission is None and e.is_async)
    await kit.webhooks.create(app, target_url=receiver.url, events=[event.name])
    assert len(await kit.trigger(event, payload={})) == 1


async def test_any_events_receives_async_events_only(kit: WebhookKit, receiver: Receiver) -> None:
    await app_with_webhook(kit, receiver.url, events=[ANY_EVENTS])
    assert len(await kit.trigger("ORDER_UPDATED", payload={})) == 1
    assert await kit.trigger("PRODUCT_CREATED", payload={}) == []  # lacks MANAGE_PRODUCTS
    with pytest.raises(ConfigurationError, match="sync event"):
        await kit.trigger("ORDER_CALCULATE_TAXES", payload={})


async def test_app_lifecycle_events_go_only_to_the_affected_app_even_inactive(
    kit: WebhookKit, receiver: Receiver
) -> None:
    affected, _ = await app_with_webhook(kit, receiver.url + "/a", events=["APP_STATUS_CHANGED"])
    await app_with_webhook(kit, receiver.url + "/b", events=["APP_STATUS_CHANGED"])
    app = await kit.apps.update(affected, is_active=False)
    ids = await kit.trigger("APP_STATUS_CHANGED", subject=app, payload={"app": app.id})
    [delivery] = await kit.wait_for(ids, timeout=10)
    assert delivery.app_id == affected
    assert delivery.status is DeliveryStatus.SUCCESS
    assert [r.path for r in receiver.received] == ["/a"]
    with pytest.raises(ConfigurationError, match="affected app"):
        await kit.trigger("APP_STATUS_CHANGED", payload={})


async def test_503_is_retried_on_saleors_schedule(
    kit: WebhookKit, clock: FakeClock, receiver: Receiver
) -> None:
    receiver.statuses = [503]
    await app_with_webhook(kit, receiver.url)
    [delivery_id] = await kit.trigger("ORDER_CREATED", payload={})
    await kit.wait_idle()
    pending = await kit.get_delivery(delivery_id)
    assert pending is not None
    assert pending.status is DeliveryStatus.PENDING
    assert pending.next_try_at == pending.created_at + timedelta(seconds=10)
    await clock.advance(9)
    await kit.wait_idle()
    assert len(receiver.received) == 1
    await clock.advance(1)
    await kit.wait_idle()
    [done] = await kit.wait_for([delivery_id], timeout=5)
    assert done.status is DeliveryStatus.SUCCESS
    attempts = await kit.list_attempts(delivery_id)
    assert [a.response_status_code for a in attempts] == [503, 200]
    assert attempts[0].retryable


async def test_persistent_5xx_follows_the_whole_schedule_then_fails(
    kit: WebhookKit, clock: FakeClock, receiver: Receiver
) -> None:
    receiver.statuses = [500] * 10
    await app_with_webhook(kit, receiver.url)
    [delivery_id] = await kit.trigger("ORDER_CREATED", payload={})
    start = clock.now()
    for step in (10, 20, 40, 80, 160):
        await kit.wait_idle()
        await clock.advance(step)
    await kit.wait_idle()
    delivery = await kit.get_delivery(delivery_id)
    assert delivery is not None
    assert delivery.status is DeliveryStatus.FAILED
    attempts = await kit.list_attempts(delivery_id)
    offsets = [(a.created_at - start).total_seconds() for a in attempts]
    assert offsets == [0, 10, 30, 70, 150]  # five attempts: Saleor's documented maximum
    assert len(receiver.received) == 5


async def test_saleor_code_schedule_makes_six_attempts(
    clock: FakeClock, receiver: Receiver
) -> None:
    receiver.statuses = [500] * 10
    async with WebhookKit(
        clock=clock,
        retry=RetryPolicy.saleor(max_attempts=6),
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
    ) as kit:
        await app_with_webhook(kit, receiver.url)
        [delivery_id] = await kit.trigger("ORDER_CREATED", payload={})
        for step in (10, 20, 40, 80, 160, 320):
            await kit.wait_idle()
            await clock.advance(step)
        await kit.wait_idle()
        attempts = await kit.list_attempts(delivery_id)
    assert len(attempts) == 6
    assert attempts[-1].created_at - attempts[-2].created_at == timedelta(seconds=160)


@pytest.mark.parametrize("status", [301, 302, 307, 400, 401, 404, 410, 422])
async def test_3xx_and_4xx_fail_at_once(
    kit: WebhookKit, clock: FakeClock, receiver_factory: ReceiverFactory, status: int
) -> None:
    elsewhere = await receiver_factory()
    receiver = await receiver_factory()

    def answer(request: web.Request, record: Received) -> web.Response:
        return web.Response(status=status, headers={"Location": elsewhere.url + "/moved"})

    receiver.handler = answer
    await app_with_webhook(kit, receiver.url)
    [delivery_id] = await kit.trigger("ORDER_CREATED", payload={})
    [delivery] = await kit.wait_for([delivery_id], timeout=10)
    assert delivery.status is DeliveryStatus.FAILED
    await clock.advance(3600)
    await kit.wait_idle()
    assert len(receiver.received) == 1
    assert elsewhere.received == []  # redirects are never followed
    [attempt] = await kit.list_attempts(delivery_id)
    assert attempt.response_status_code == status
    assert not attempt.retryable


async def test_connection_refused_is_retried(
    kit: WebhookKit, clock: FakeClock, receiver: Receiver
) -> None:
    closed = await _closed_port()
    _, webhook_id = await app_with_webhook(kit, f"http://127.0.0.1:{closed}/")
    [delivery_id] = await kit.trigger("ORDER_CREATED", payload={})
    await kit.wait_idle()
    [attempt] = await kit.list_attempts(delivery_id)
    assert attempt.error_kind == "ConnectError"
    assert attempt.retryable
    await kit.webhooks.update(webhook_id, target_url=receiver.url)
    await clock.advance(10)
    [delivery] = await kit.wait_for([delivery_id], timeout=10)
    assert delivery.status is DeliveryStatus.SUCCESS
    assert delivery.attempts == 2


async def test_slow_receiver_times_out_and_is_retried(kit: WebhookKit, receiver: Receiver) -> None:
    receiver.delay = 2.0
    await app_with_webhook(kit, receiver.url, timeouts=Timeouts(connect=0.2, total=0.3))
    [delivery_id] = await kit.trigger("ORDER_CREATED", payload={})
    await kit.wait_idle()
    [attempt] = await kit.list_attempts(delivery_id)
    assert attempt.error_kind == "DeliveryTimeoutError"
    assert attempt.retryable
    delivery = await kit.get_delivery(delivery_id)
    assert delivery is not None and delivery.status is DeliveryStatus.PENDING


async def test_attempt_keeps_a_1024_character_excerpt_and_redacted_headers(
    kit: WebhookKit, receiver: Receiver
) -> None:
    receiver.body = "é" * 3000
    await app_with_webhook(kit, receiver.url, custom_headers={"Authorization": "Bearer tok"})
    [delivery_id] = await kit.trigger("ORDER_CREATED", payload={})
    await kit.wait_for([delivery_id], timeout=10)
    [attempt] = await kit.list_attempts(delivery_id)
    assert attempt.response_excerpt == "é" * 1024 + "..."
    assert attempt.duration > 0
    request_headers = dict(attempt.request_headers)
    assert request_headers["authorization"] == "[secret]"
    assert request_headers["Saleor-Signature"] == "[secret]"
    assert request_headers["Saleor-Event"] == "order_created"
    assert dict(attempt.response_headers)["Content-Type"].startswith("text/plain")
    assert receiver.received[0].header("Authorization") == "Bearer tok"


async def test_delivery_of_a_webhook_deactivated_after_the_trigger_fails_unsent(
    clock: FakeClock, receiver: Receiver
) -> None:
    kit = WebhookKit(clock=clock, transports=[HTTPTransport(allow_addresses=LOOPBACK)])
    _, webhook_id = await app_with_webhook(kit, receiver.url)
    [delivery_id] = await kit.trigger("ORDER_CREATED", payload={})
    await kit.webhooks.update(webhook_id, is_active=False)
    async with kit:
        [delivery] = await kit.wait_for([delivery_id], timeout=10)
        [attempt] = await kit.list_attempts(delivery_id)
    assert delivery.status is DeliveryStatus.FAILED
    assert attempt.error == "webhook is inactive"
    assert receiver.received == []


async def test_deliveries_queued_before_start_are_sent_after_start(
    clock: FakeClock, receiver: Receiver
) -> None:
    kit = WebhookKit(clock=clock, transports=[HTTPTransport(allow_addresses=LOOPBACK)])
    await app_with_webhook(kit, receiver.url)
    ids = [await kit.trigger("ORDER_CREATED", payload={"n": n}) for n in range(3)]
    assert receiver.received == []
    async with kit:
        await kit.wait_for([i for batch in ids for i in batch], timeout=10)
    assert sorted(r.body for r in receiver.received) == [b'{"n":0}', b'{"n":1}', b'{"n":2}']


async def test_leaving_the_context_waits_for_sends_in_flight(
    clock: FakeClock, receiver: Receiver
) -> None:
    receiver.delay = 0.3
    async with WebhookKit(clock=clock, transports=[HTTPTransport(allow_addresses=LOOPBACK)]) as kit:
        await app_with_webhook(kit, receiver.url)
        [delivery_id] = await kit.trigger("ORDER_CREATED", payload={})
        await receiver.arrived.wait()
    delivery = await kit.get_delivery(delivery_id)
    assert delivery is not None and delivery.status is DeliveryStatus.SUCCESS


async def test_serializer_builds_the_body_from_the_subject(
    kit: WebhookKit, receiver: Receiver
) -> None:
    async def order_body(order: dict[str, object], event: object) -> dict[str, object]:
        await asyncio.sleep(0)
        return {"order": order, "event": str(event)}

    kit.register_serializer("ORDER_CREATED", order_body)
    await app_with_webhook(kit, receiver.url)
    ids = await kit.trigger("ORDER_CREATED", subject={"id": 7})
    await kit.wait_for(ids, timeout=10)
    assert receiver.received[0].body == b'{"order":{"id":7},"event":"ORDER_CREATED"}'


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (None, "no serializer registered"),
        (b"{not json", "not valid JSON"),
        ({"when": object()}, "cannot encode as JSON"),
        ({"x": float("nan")}, "cannot encode as JSON"),
    ],
)
async def test_bad_payloads_are_typed_errors_and_store_nothing(
    kit: WebhookKit, receiver: Receiver, payload: object, message: str
) -> None:
    await app_with_webhook(kit, receiver.url)
    with pytest.raises(PayloadError, match=message):
        await kit.trigger("ORDER_CREATED", payload=payload)
    assert await kit.list_deliveries() == []


async def test_unknown_event_trigger_is_a_typed_error(kit: WebhookKit) -> None:
    with pytest.raises(ConfigurationError, match="ORDER_CREATED"):
        await kit.trigger("ORDER_CRATED", payload={})


async def _closed_port() -> int:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return port
