"""Kit options: every bad value is refused up front with a typed error naming the field, so no
option can freeze the event loop (a zero poll interval, a zero lease) or kill the scheduler
later (an int where a timedelta belongs)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhookkit import (
    DeliveryConfig,
    HTTPTransport,
    InvalidFieldError,
    IsolationConfig,
    RateLimit,
    SyncConfig,
    Timeouts,
    WebhookKit,
    WebhookKitError,
)
from webhookkit.stores.base import Retention

BAD_DELIVERY: list[tuple[dict[str, Any], str]] = [
    ({"poll_interval": 0}, "poll_interval"),
    ({"poll_interval": -1}, "poll_interval"),
    ({"poll_interval": math.nan}, "poll_interval"),
    ({"poll_interval": math.inf}, "poll_interval"),
    ({"poll_interval": "1"}, "poll_interval"),
    ({"lease": timedelta(0)}, "lease"),
    ({"lease": timedelta(seconds=-5)}, "lease"),
    ({"lease": 5}, "lease"),
    ({"lease": timedelta(milliseconds=10)}, "lease"),
    ({"concurrency": 0}, "concurrency"),
    ({"concurrency": True}, "concurrency"),
    ({"concurrency": 2.5}, "concurrency"),
    ({"batch_size": 0}, "batch_size"),
    ({"max_queued": 0}, "max_queued"),
    ({"flush_interval": -0.1}, "flush_interval"),
    ({"flush_interval": 60}, "flush_interval"),
    ({"drain_timeout": -1}, "drain_timeout"),
    ({"timeouts": 20}, "timeouts"),
    ({"isolation": {"per_endpoint": 1}}, "isolation"),
]


@pytest.mark.parametrize(("options", "name"), BAD_DELIVERY)
def test_bad_delivery_options_are_refused(options: dict[str, Any], name: str) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        DeliveryConfig(**options)
    assert name in str(caught.value)
    assert caught.value.field == "delivery"


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: Timeouts(connect=0), "timeouts.connect"),
        (lambda: Timeouts(total=math.nan), "timeouts.total"),
        (lambda: Timeouts(connect=5, total=1), "connect"),
        (lambda: IsolationConfig(per_endpoint=0), "per_endpoint"),
        (lambda: IsolationConfig(cooldown=30), "cooldown"),  # type: ignore[arg-type]
        (lambda: IsolationConfig(cooldown=timedelta(0)), "cooldown"),
        (lambda: SyncConfig(cache_ttl=-1), "cache_ttl"),
        (lambda: SyncConfig(cache_size=0), "cache_size"),
        (lambda: SyncConfig(breaker=True), "breaker"),  # type: ignore[arg-type]
    ],
)
def test_bad_grouped_options_are_refused(build: Any, name: str) -> None:
    with pytest.raises(InvalidFieldError, match=name):
        build()


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"domain": "shop\x00.example.com"}, "domain"),
        ({"domain": ""}, "domain"),
        ({"domain": "shop example.com"}, "domain"),
        ({"domain": "shop.example.com/graphql"}, "domain"),
        ({"domain": 42}, "domain"),
        ({"domain": "sh\ud800op"}, "domain"),
        ({"api_url": "https://shop.example.com/graphql/\r\nX-Evil: 1"}, "api_url"),
        ({"api_url": "ftp://shop.example.com/"}, "api_url"),
        ({"api_url": "/graphql/"}, "api_url"),
        ({"delivery": {"concurrency": 5}}, "delivery"),
        ({"sync": 300}, "sync"),
        ({"retention": timedelta(days=1)}, "retention"),
        ({"retry": "never"}, "retry"),
        ({"registry": ["ORDER_CREATED"]}, "registry"),
        ({"transports": [object()]}, "transports"),
        ({"store": "redis://localhost"}, "store"),
    ],
)
def test_bad_kit_options_are_refused_naming_the_field(options: dict[str, Any], name: str) -> None:
    with pytest.raises(WebhookKitError) as caught:
        WebhookKit(**options)
    assert getattr(caught.value, "field", None) == name, caught.value
    assert name in str(caught.value)


def test_retention_interval_must_be_positive() -> None:
    with pytest.raises(WebhookKitError, match="interval"):
        Retention(interval=timedelta(0))


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**6), 0))
def test_poll_interval_is_positive_and_finite(value: float) -> None:
    if isinstance(value, float) and math.isfinite(value) and value >= 0.001:
        assert DeliveryConfig(poll_interval=value).poll_interval == value
        return
    with pytest.raises(InvalidFieldError):
        DeliveryConfig(poll_interval=value)


def test_good_options_build_a_kit() -> None:
    kit = WebhookKit(
        domain="shop.example.com:8000",
        api_url="https://shop.example.com/graphql/",
        transports=[HTTPTransport(allow_addresses=["127.0.0.1/32"])],
        delivery=DeliveryConfig(concurrency=4, lease=timedelta(seconds=30), poll_interval=0.5),
        sync=SyncConfig(cache_ttl=60),
        retention=None,
    )
    assert kit.delivery.claim_size == 16
    assert "http" in kit.router.mounted


def test_durations_and_rates_that_would_overflow_a_clock_are_refused() -> None:
    with pytest.raises(InvalidFieldError, match="cooldown"):
        IsolationConfig(cooldown=timedelta(days=10**6))
    with pytest.raises(InvalidFieldError, match="disable_after"):
        DeliveryConfig(disable_after=timedelta.max)
    with pytest.raises(InvalidFieldError, match="per_second"):
        RateLimit(per_second=1e-300)
