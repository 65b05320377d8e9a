"""What the engine tells the host: callbacks for events that need a person, and an
instrumentation seam (spans, metrics) that :mod:`webhookkit.otel` fills with OpenTelemetry.

Callbacks may be plain functions or coroutines; an exception in one is logged and never
reaches a delivery. Instrumentation calls are synchronous and cheap: the default
:class:`NoInstrumentation` does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from .apps import Webhook
from .delivery.records import Attempt, Delivery

__all__ = [
    "AttemptObservation",
    "Hooks",
    "Instrumentation",
    "NoInstrumentation",
]

log = logging.getLogger("webhookkit")

FailedCallback = Callable[[Delivery, Attempt], Any]
BreakerCallback = Callable[[str, str], Any]
DisabledCallback = Callable[[Webhook, datetime], Any]
FailingCallback = Callable[[Webhook, float, datetime], Any]


class AttemptObservation(Protocol):
    """One attempt being watched: headers to send with it, then its outcome."""

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """Headers to add to the request (W3C ``traceparent``, ``tracestate``)."""
        ...

    def finish(self, attempt: Attempt, webhook: Webhook | None) -> None:
        """The attempt's outcome, once recorded."""
        ...


class Instrumentation(Protocol):
    """Spans and metrics around the engine's work (see :mod:`webhookkit.otel`)."""

    def trigger(self, event: str) -> contextlib.AbstractContextManager[None]:
        """Around ``kit.trigger``: targets, payload build and the store write."""
        ...

    def build(self, event: str, webhooks: int) -> contextlib.AbstractContextManager[None]:
        """Around building the payloads of one trigger."""
        ...

    def attempt(self, delivery: Delivery, webhook: Webhook) -> AttemptObservation:
        """An attempt is about to be sent."""
        ...

    def queued(self, event: str, count: int) -> None:
        """``count`` deliveries of ``event`` were written by a trigger."""
        ...

    def breaker(self, webhook_id: str, state: str) -> None:
        """An endpoint's breaker opened (``"open"``) or closed (``"closed"``)."""
        ...

    def observe_gauges(self, gauges: Callable[[], Mapping[str, float]]) -> None:
        """Register a callback giving the current ``pending_local``, ``in_flight`` and
        ``held`` counts (and ``breakers_open``), read when metrics are collected."""
        ...


class _NoAttempt:
    headers: tuple[tuple[str, str], ...] = ()

    def finish(self, attempt: Attempt, webhook: Webhook | None) -> None:
        return None


_NO_ATTEMPT = _NoAttempt()


class NoInstrumentation:
    """The default: nothing is measured."""

    @contextlib.contextmanager
    def trigger(self, event: str) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def build(self, event: str, webhooks: int) -> Iterator[None]:
        yield

    def attempt(self, delivery: Delivery, webhook: Webhook) -> AttemptObservation:
        return _NO_ATTEMPT

    def queued(self, event: str, count: int) -> None:
        return None

    def breaker(self, webhook_id: str, state: str) -> None:
        return None

    def observe_gauges(self, gauges: Callable[[], Mapping[str, float]]) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Hooks:
    """What the host wants to hear about.

    - ``on_failed(delivery, attempt)``: a delivery failed for good (no retry left);
    - ``on_breaker(webhook_id, state)``: an endpoint's breaker opened (``"open"``) or closed
      (``"closed"``);
    - ``on_failing(webhook, fraction, failing_since)``: a webhook has been failing without a
      break for this fraction of ``DeliveryConfig.disable_after`` (once per fraction);
    - ``on_disabled(webhook, failing_since)``: webhookkit disabled the webhook (its pending
      deliveries are held until it is activated again);
    - ``instrumentation``: spans and metrics, e.g. ``webhookkit.otel.OpenTelemetry()``.
    """

    on_failed: FailedCallback | None = None
    on_breaker: BreakerCallback | None = None
    on_failing: FailingCallback | None = None
    on_disabled: DisabledCallback | None = None
    instrumentation: Instrumentation = field(default_factory=NoInstrumentation)

    def __post_init__(self) -> None:
        from .exceptions import InvalidFieldError

        for name in ("on_failed", "on_breaker", "on_failing", "on_disabled"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise InvalidFieldError(f"hooks.{name}: must be callable", field="hooks")


def call_hook(callback: Callable[..., Any] | None, *args: Any) -> None:
    """Run a host callback without letting it fail or block a delivery: a coroutine
    function is scheduled as a task, an exception is logged."""
    if callback is None:
        return
    try:
        result = callback(*args)
    except Exception:
        log.exception("webhookkit: a host callback raised")
        return
    if inspect.isawaitable(result):
        task = asyncio.ensure_future(result)
        _pending.add(task)
        task.add_done_callback(_settled)


_pending: set[asyncio.Future[Any]] = set()


def _settled(task: asyncio.Future[Any]) -> None:
    _pending.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("webhookkit: a host callback raised", exc_info=task.exception())
