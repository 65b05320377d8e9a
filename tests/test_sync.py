"""Synchronous webhooks: called now, JSON answers returned, cache and breaker per Saleor."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from conftest import LOOPBACK, Received, Receiver

from webhookkit import ConfigurationError, HTTPTransport, SyncConfig, WebhookKit, verify_hmac
from webhookkit.delivery.sync import BreakerConfig, CircuitBreaker, SyncCaller
from webhookkit.testing import FakeClock
from webhookkit.transports import TransportRouter

ReceiverFactory = Callable[[], Awaitable[Receiver]]


async def sync_webhook(kit: WebhookKit, url: str, **kwargs: object) -> str:
    app = await kit.apps.create("taxes", permissions=["HANDLE_TAXES", "MANAGE_CHECKOUTS"])
    webhook = await kit.webhooks.create(
        app,
        target_url=url,
        events=["CHECKOUT_CALCULATE_TAXES"],
        **kwargs,  # type: ignore[arg-type]
    )
    return webhook.id


def sync_kit(clock: FakeClock) -> WebhookKit:
    """A kit with the sync response cache on (300 s), delivering to loopback."""
    return WebhookKit(
        clock=clock,
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
        sync=SyncConfig(cache_ttl=300),
    )


def json_answer(data: object, status: int = 200) -> Callable[[web.Request, Received], web.Response]:
    def answer(request: web.Request, record: Received) -> web.Response:
        return web.json_response(data, status=status)

    return answer


async def test_request_returns_parsed_json_of_each_webhook(
    kit: WebhookKit, receiver_factory: ReceiverFactory
) -> None:
    good, bad = await receiver_factory(), await receiver_factory()
    big = {"lines": [{"amount": "1.00", "note": "x" * 100} for _ in range(200)]}  # > 1024 chars
    good.handler = json_answer(big)
    bad.statuses = [500]
    good_id = await sync_webhook(kit, good.url, secret_key="k")
    bad_id = await sync_webhook(kit, bad.url)
    answers = {
        r.webhook_id: r for r in await kit.request("CHECKOUT_CALCULATE_TAXES", payload={"c": 1})
    }
    assert answers[good_id].data == big
    assert answers[good_id].ok
    assert answers[bad_id].data is None
    assert answers[bad_id].error == "HTTP 500"
    [request] = good.received
    assert request.header("Saleor-Event") == "checkout_calculate_taxes"
    verify_hmac(request.body, request.header("Saleor-Signature") or "", "k")
    assert await kit.list_deliveries() == []  # nothing queued


async def test_non_json_answer_and_connection_error_are_none(
    kit: WebhookKit, receiver: Receiver
) -> None:
    receiver.body = "not json"
    await sync_webhook(kit, receiver.url)
    await sync_webhook(kit, "http://127.0.0.1:9/")  # discard port: nothing listens
    results = await kit.request("CHECKOUT_CALCULATE_TAXES", payload={})
    errors = [r.error or "" for r in results]
    assert "not JSON" in errors
    assert all(r.data is None for r in results)
    assert any(r.error and r.error.startswith("ConnectError") for r in results)


async def test_request_rejects_async_events_and_trigger_rejects_sync(kit: WebhookKit) -> None:
    with pytest.raises(ConfigurationError, match="async event"):
        await kit.request("ORDER_CREATED", payload={})
    with pytest.raises(ConfigurationError, match="sync event"):
        await kit.trigger("CHECKOUT_CALCULATE_TAXES", payload={})


async def test_response_cache_reuses_answers(clock: FakeClock, receiver: Receiver) -> None:
    receiver.handler = json_answer({"n": 1})
    async with sync_kit(clock) as kit:
        await sync_webhook(kit, receiver.url)
        first = await kit.request("CHECKOUT_CALCULATE_TAXES", payload={"c": 1})
        second = await kit.request("CHECKOUT_CALCULATE_TAXES", payload={"c": 1})
        other = await kit.request("CHECKOUT_CALCULATE_TAXES", payload={"c": 2})
        await clock.advance(301)  # the kit's clock, not the wall clock, expires answers
        third = await kit.request("CHECKOUT_CALCULATE_TAXES", payload={"c": 1})
    assert [r.cached for r in first + second + other + third] == [False, True, False, False]
    assert second[0].data == {"n": 1}
    assert len(receiver.received) == 3


async def test_response_cache_remembers_failures_for_one_second(
    clock: FakeClock, receiver: Receiver
) -> None:
    receiver.statuses = [500]  # the first call fails, later ones succeed
    receiver.handler = None
    async with sync_kit(clock) as kit:
        await sync_webhook(kit, receiver.url)
        failed = await kit.request("CHECKOUT_CALCULATE_TAXES", payload={"c": 1})
        await clock.advance(0.5)
        remembered = await kit.request("CHECKOUT_CALCULATE_TAXES", payload={"c": 1})
        await clock.advance(0.6)
        fresh = await kit.request("CHECKOUT_CALCULATE_TAXES", payload={"c": 1})
    assert failed[0].error == "HTTP 500" and not failed[0].cached
    assert remembered[0].error == "HTTP 500" and remembered[0].cached
    assert fresh[0].error == "not JSON" and not fresh[0].cached  # the receiver answers "ok"
    assert len(receiver.received) == 2


async def test_response_cache_is_bounded_least_recently_used_first(
    clock: FakeClock, receiver: Receiver
) -> None:
    receiver.handler = json_answer({"n": 1})
    async with sync_kit(clock) as kit:
        webhook_id = await sync_webhook(kit, receiver.url)
        webhook = await kit.webhooks.get(webhook_id)
        app = await kit.apps.get(webhook.app_id)
        caller = SyncCaller(
            router=kit.router,
            clock=clock,
            message=kit.scheduler.message,
            cache_ttl=300,
            cache_size=2,
        )
        for body in (b"1", b"2", b"1", b"3"):  # "2" is the least recently used when "3" comes
            await caller.call("checkout_calculate_taxes", body, webhook, app)
        assert caller.cache_len == 2
        hits = [
            (await caller.call("checkout_calculate_taxes", body, webhook, app)).cached
            for body in (b"1", b"3", b"2")
        ]
    assert hits == [True, True, False]
    assert caller.calls == 4


def test_cache_size_must_be_a_positive_integer(clock: FakeClock) -> None:
    for bad in (0, -1, 1.5, "10", True):
        with pytest.raises(ConfigurationError, match="cache_size"):
            SyncCaller(
                router=TransportRouter(),
                clock=clock,
                message=None,  # type: ignore[arg-type]
                cache_size=bad,  # type: ignore[arg-type]
            )


def test_breaker_opens_at_saleors_thresholds_and_recovers(clock: FakeClock) -> None:
    breaker = CircuitBreaker(clock)
    for _ in range(99):
        breaker.record("app", ok=False)
    assert breaker.allow("app")  # 99 errors: below 100
    breaker.record("app", ok=False)
    assert breaker.state("app") == "open"
    assert not breaker.allow("app")


async def test_breaker_rate_threshold_and_half_open_cycle(clock: FakeClock) -> None:
    breaker = CircuitBreaker(clock)
    for _ in range(200):
        breaker.record("app", ok=True)
    for _ in range(100):
        breaker.record("app", ok=False)
    assert breaker.allow("app")  # 100 errors but 33 % < 35 %
    for _ in range(10):
        breaker.record("app", ok=False)
    assert breaker.state("app") == "open"
    await clock.advance(119)
    assert breaker.state("app") == "open"
    await clock.advance(1)
    assert breaker.state("app") == "half-open"
    for _ in range(50):
        breaker.record("app", ok=True)
    assert breaker.state("app") == "closed"


async def test_breaker_reopens_from_half_open(clock: FakeClock) -> None:
    breaker = CircuitBreaker(clock, BreakerConfig(open_errors=2, open_rate=0.5))
    breaker.record("app", ok=False)
    breaker.record("app", ok=False)
    assert breaker.state("app") == "open"
    await clock.advance(120)
    assert breaker.state("app") == "half-open"
    for _ in range(20):
        breaker.record("app", ok=False)
    assert breaker.state("app") == "open"


async def test_open_breaker_skips_the_call(clock: FakeClock, receiver: Receiver) -> None:
    receiver.statuses = [500, 500]
    config = BreakerConfig(open_errors=2, open_rate=0.5)
    async with WebhookKit(
        clock=clock,
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
        sync=SyncConfig(breaker=config),
    ) as kit:
        await sync_webhook(kit, receiver.url)
        for _ in range(2):
            await kit.request("CHECKOUT_CALCULATE_TAXES", payload={})
        [skipped] = await kit.request("CHECKOUT_CALCULATE_TAXES", payload={})
    assert skipped.skipped == "circuit open for this app"
    assert len(receiver.received) == 2
    assert json.loads(receiver.received[0].body) == {}
