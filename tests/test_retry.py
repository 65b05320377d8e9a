"""Retry policies on FakeClock against real loopback receivers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import tenacity
from aiohttp import web
from conftest import LOOPBACK, Received, Receiver

from webhookkit import ConfigurationError, DeliveryStatus, RetryPolicy, WebhookKit
from webhookkit.delivery.retry import Outcome, parse_retry_after
from webhookkit.testing import FakeClock


async def setup(kit: WebhookKit, url: str) -> str:
    app = await kit.apps.create("shop", permissions=["MANAGE_ORDERS"])
    webhook = await kit.webhooks.create(app, target_url=url, events=["ORDER_CREATED"])
    return webhook.id


def kit_with(clock: FakeClock, retry: RetryPolicy) -> WebhookKit:
    return WebhookKit(clock=clock, retry=retry, allow_addresses=LOOPBACK)


def test_saleor_policy_delays_are_10_times_powers_of_two() -> None:
    policy = RetryPolicy.saleor(max_attempts=6)
    delays = [policy.next_delay(n, 0) for n in range(1, 7)]
    assert delays == [10, 20, 40, 80, 160, None]
    assert RetryPolicy().next_delay(5, 0) is None  # default: five attempts in all
    assert RetryPolicy.never().next_delay(1, 0) is None


def test_only_transport_retryable_outcomes_retry_under_saleors_rules() -> None:
    policy = RetryPolicy()
    assert policy.decide(Outcome(503, retryable=True), 1, 0) == 10
    assert policy.decide(Outcome(429, retryable=False, retry_after=5), 1, 0) is None
    assert policy.decide(Outcome(None, retryable=True), 1, 0) == 10


def test_status_aware_retries_429_and_honours_retry_after_clamped() -> None:
    policy = RetryPolicy.status_aware()
    assert policy.decide(Outcome(429, retryable=False, retry_after=3), 1, 0) == 3
    assert policy.decide(Outcome(503, retryable=True, retry_after=0), 1, 0) == 1
    assert policy.decide(Outcome(429, retryable=False, retry_after=10**6), 1, 0) == 3600
    assert policy.decide(Outcome(429, retryable=False), 1, 0) == 10
    assert policy.decide(Outcome(404, retryable=False, retry_after=3), 1, 0) is None


def test_max_age_gives_up_when_the_next_try_would_be_too_late() -> None:
    policy = RetryPolicy(max_age=timedelta(seconds=60))
    assert policy.decide(Outcome(500, retryable=True), 2, 40) == 20
    assert policy.decide(Outcome(500, retryable=True), 3, 50) is None


def test_jitter_stays_within_its_bound() -> None:
    policy = RetryPolicy.status_aware(jitter=5)
    delays = {policy.decide(Outcome(500, retryable=True), 1, 0) for _ in range(200)}
    assert all(d is not None and 10 <= d <= 15 for d in delays)
    assert len(delays) > 1


def test_parse_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now) == 30
    assert parse_retry_after("Wed, 31 Dec 2025 00:00:00 GMT", now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_bad_policies_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="4xx"):
        RetryPolicy(retry_statuses=frozenset({500}))
    with pytest.raises(ConfigurationError, match="max_attempts"):
        RetryPolicy.saleor(max_attempts=0)


async def test_429_with_retry_after_is_retried_when_the_receiver_asks(
    clock: FakeClock, receiver: Receiver
) -> None:
    def answer(request: web.Request, record: Received) -> web.Response:
        status = 429 if len(receiver.received) == 1 else 200
        return web.Response(status=status, headers={"Retry-After": "3"})

    receiver.handler = answer
    async with kit_with(clock, RetryPolicy.status_aware()) as kit:
        await setup(kit, receiver.url)
        [delivery_id] = await kit.trigger("ORDER_CREATED", payload={})
        await kit.wait_idle()
        pending = await kit.get_delivery(delivery_id)
        assert pending is not None and pending.status is DeliveryStatus.PENDING
        assert pending.next_try_at == clock.now() + timedelta(seconds=3)
        await clock.advance(3)
        [done] = await kit.wait_for([delivery_id], timeout=10)
    assert done.status is DeliveryStatus.SUCCESS
    assert done.attempts == 2


async def test_410_gone_deactivates_the_webhook(clock: FakeClock, receiver: Receiver) -> None:
    receiver.statuses = [410]
    async with kit_with(clock, RetryPolicy.status_aware()) as kit:
        webhook_id = await setup(kit, receiver.url)
        [delivery_id] = await kit.trigger("ORDER_CREATED", payload={})
        [delivery] = await kit.wait_for([delivery_id], timeout=10)
        assert delivery.status is DeliveryStatus.FAILED
        assert not (await kit.webhooks.get(webhook_id)).is_active
        assert await kit.trigger("ORDER_CREATED", payload={}) == []


async def test_410_under_saleors_rules_just_fails(kit: WebhookKit, receiver: Receiver) -> None:
    receiver.statuses = [410]
    webhook_id = await setup(kit, receiver.url)
    await kit.wait_for(await kit.trigger("ORDER_CREATED", payload={}), timeout=10)
    assert (await kit.webhooks.get(webhook_id)).is_active


async def test_max_age_fails_a_delivery_that_would_retry_too_late(
    clock: FakeClock, receiver: Receiver
) -> None:
    receiver.statuses = [500] * 5
    policy = RetryPolicy(stop=tenacity.stop_after_attempt(100), max_age=timedelta(seconds=45))
    async with kit_with(clock, policy) as kit:
        await setup(kit, receiver.url)
        [delivery_id] = await kit.trigger("ORDER_CREATED", payload={})
        for step in (10, 20):
            await kit.wait_idle()
            await clock.advance(step)
        [delivery] = await kit.wait_for([delivery_id], timeout=10)
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.attempts == 3  # at 0, 10 and 30 s; the next (at 70 s) would pass 45 s
