"""Retry policies on FakeClock against real loopback receivers."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import tenacity
from aiohttp import web
from conftest import LOOPBACK, Received, Receiver
from hypothesis import given
from hypothesis import strategies as st

from webhookkit import ConfigurationError, DeliveryStatus, HTTPTransport, RetryPolicy, WebhookKit
from webhookkit.delivery.retry import RETRY_AFTER_CEILING, Outcome, parse_retry_after
from webhookkit.testing import FakeClock


async def setup(kit: WebhookKit, url: str) -> str:
    app = await kit.apps.create("shop", permissions=["MANAGE_ORDERS"])
    webhook = await kit.webhooks.create(app, target_url=url, events=["ORDER_CREATED"])
    return webhook.id


def kit_with(clock: FakeClock, retry: RetryPolicy) -> WebhookKit:
    return WebhookKit(
        clock=clock, retry=retry, transports=[HTTPTransport(allow_addresses=LOOPBACK)]
    )


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


# -- Retry-After values a receiver may send: never an exception, always finite ---------------

RETRY_NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("²", None),  # str.isdigit() is True, float() refuses it
        ("٣", None),  # Arabic-Indic three
        ("\uff11\uff10", None),  # fullwidth "10"
        ("-5", None),
        ("+5", None),
        ("1e400", None),
        ("inf", None),
        ("nan", None),
        ("", None),
        ("   ", None),
        ("12\x00", None),
        ("\udcff", None),
        ("Thu, 99 Jan 2026 00:00:30 GMT", None),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        (str(10**30), RETRY_AFTER_CEILING),
        ("9" * 60, RETRY_AFTER_CEILING),
        ("9" * 65, None),  # longer than any sane header
        ("Mon, 01 Jan 0001 00:00:00 GMT", 0.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", RETRY_AFTER_CEILING),
        ("Thu, 01 Jan 2026 00:01:00 GMT", 60.0),
        ("Thu, 01 Jan 2026 00:01:00", 60.0),  # no zone: taken as UTC
    ],
)
def test_parse_retry_after_odd_values(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, RETRY_NOW) == expected


def test_parse_retry_after_tolerates_a_naive_now_and_non_strings() -> None:
    naive = datetime(2026, 1, 1)
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:10 GMT", naive) == 10
    assert parse_retry_after(b"10", RETRY_NOW) is None  # type: ignore[arg-type]
    assert parse_retry_after(10, RETRY_NOW) is None  # type: ignore[arg-type]


@given(st.text(max_size=80))
def test_parse_retry_after_never_raises(value: str) -> None:
    seconds = parse_retry_after(value, RETRY_NOW)
    assert seconds is None or (math.isfinite(seconds) and 0 <= seconds <= RETRY_AFTER_CEILING)


# From 1900: RFC 2822 reads two-digit years (< 100) as 19xx/20xx.
@given(st.datetimes(min_value=datetime(1900, 1, 1), timezones=st.just(UTC)))
def test_parse_retry_after_any_http_date(when: datetime) -> None:
    seconds = parse_retry_after(format_datetime(when, usegmt=True), RETRY_NOW)
    assert seconds is not None
    expected = min(
        max((when.replace(microsecond=0) - RETRY_NOW).total_seconds(), 0), RETRY_AFTER_CEILING
    )
    assert seconds == expected


def test_policy_turns_odd_retry_after_values_into_bounded_delays() -> None:
    policy = RetryPolicy.status_aware()
    for value in ("²", "-1", "1e400", str(10**30), "Mon, 01 Jan 0001 00:00:00 GMT"):
        delay = policy.decide(Outcome(503, True, parse_retry_after(value, RETRY_NOW)), 1, 0)
        assert delay is not None and 1 <= delay <= policy.max_retry_after


@pytest.mark.parametrize(
    "options",
    [
        {"max_retry_after": "10"},
        {"max_retry_after": float("nan")},
        {"max_retry_after": float("inf")},
        {"max_retry_after": True},
        {"retry_statuses": "429"},
        {"retry_statuses": frozenset({"429"})},
        {"retry_statuses": 429},
        {"max_age": 60},
        {"max_age": timedelta(0)},
        {"honor_retry_after": "yes"},
        {"wait": 10},
        {"stop": None},
    ],
)
def test_bad_policy_options_are_configuration_errors(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="retry:"):
        RetryPolicy(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize("attempts", [0, -1, 1001, 2.5, "5", True, None])
def test_bad_max_attempts_are_configuration_errors(attempts: object) -> None:
    with pytest.raises(ConfigurationError, match="max_attempts"):
        RetryPolicy.saleor(attempts)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_attempts"):
        RetryPolicy.status_aware(attempts)  # type: ignore[arg-type]


def test_retry_statuses_as_a_list_become_a_frozenset() -> None:
    policy = RetryPolicy(retry_statuses=[429, 408])  # type: ignore[arg-type]
    assert policy.retry_statuses == frozenset({408, 429})
    assert policy.is_retryable(Outcome(429, retryable=False))
