"""OpenTelemetry spans and metrics for a kit (``pip install webhookkit[otel]``).

::

    from webhookkit import Hooks, WebhookKit
    from webhookkit.otel import OpenTelemetry

    kit = WebhookKit(hooks=Hooks(instrumentation=OpenTelemetry()))

Spans: ``webhookkit.trigger`` and ``webhookkit.build`` around a trigger and its payload
build, and one CLIENT span ``webhookkit.attempt`` per attempt, whose W3C ``traceparent`` (and
``tracestate``) go to the receiver. Metrics (meter ``webhookkit``): ``webhookkit.deliveries``
(attempts finished, by outcome ``success``, ``retry`` or ``failed``),
``webhookkit.attempt.duration`` (seconds), ``webhookkit.queued``,
``webhookkit.breaker.changes`` and the gauges ``webhookkit.pending_local``,
``webhookkit.in_flight``, ``webhookkit.held`` and ``webhookkit.breakers_open``.

Attributes carry ids, event names, status codes and error kinds: never secrets, headers,
bodies or URLs (only the target's scheme and host).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MethodType
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from . import __version__
from .apps import Webhook
from .delivery.records import Attempt, AttemptStatus, Delivery
from .observability import AttemptObservation

__all__ = ["GAUGES", "OpenTelemetry"]

log = logging.getLogger("webhookkit.otel")

#: The gauges read from the callbacks given to :meth:`OpenTelemetry.observe_gauges`.
GAUGES: Mapping[str, str] = {
    "pending_local": "Deliveries this process knows are pending in the store",
    "in_flight": "Attempts being sent now or waiting to be recorded",
    "held": "Deliveries claimed and waiting for their endpoint's turn",
    "breakers_open": "Endpoints whose breaker is open",
}

# Attempts take milliseconds to the 20 s async timeout: the SDK's default buckets are for
# milliseconds and would put every attempt in the first one.
_DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 30.0
)  # fmt: skip

GaugeSource = Callable[[], Mapping[str, float]]


def outcome_of(attempt: Attempt) -> str:
    """``success``, ``retry`` (another attempt is scheduled) or ``failed`` (for good)."""
    if attempt.status is AttemptStatus.SUCCESS:
        return "success"
    return "retry" if attempt.retryable else "failed"


class _AttemptSpan:
    """The span of one attempt, from :meth:`OpenTelemetry.attempt` to :meth:`finish`."""

    __slots__ = ("_delivery", "_ended", "_owner", "_span", "headers")

    def __init__(
        self,
        owner: OpenTelemetry,
        span: Span,
        delivery: Delivery,
        headers: tuple[tuple[str, str], ...],
    ) -> None:
        self._owner = owner
        self._span = span
        self._delivery = delivery
        self._ended = False
        self.headers = headers

    def finish(self, attempt: Attempt, webhook: Webhook | None) -> None:
        if self._ended:
            return
        self._ended = True
        outcome = outcome_of(attempt)
        span = self._span
        span.set_attribute("webhookkit.outcome", outcome)
        if attempt.response_status_code is not None:
            span.set_attribute("http.response.status_code", attempt.response_status_code)
        if attempt.status is AttemptStatus.SUCCESS:
            span.set_status(Status(StatusCode.OK))
        else:
            # The kind, not the error text: an exception's message may quote a target URL.
            kind = attempt.error_kind or "failed"
            span.set_attribute("error.type", kind)
            code = attempt.response_status_code
            span.set_status(Status(StatusCode.ERROR, f"{kind} (HTTP {code})" if code else kind))
        span.end()
        self._owner._finished(self._delivery.event, outcome, attempt.duration)


class OpenTelemetry:
    """The :class:`~webhookkit.observability.Instrumentation` of OpenTelemetry.

    ``tracer_provider`` and ``meter_provider`` default to the global ones (set by the host's
    SDK set-up, even after this object is made). ``propagator`` writes the trace context
    into each attempt's headers; the default sends W3C ``traceparent`` and ``tracestate``
    only, because receivers are third parties and baggage is meant for one's own services
    (pass ``opentelemetry.propagate.get_global_textmap()`` to send whatever the host's
    propagators send).

    Several kits may share one instance: the gauges add up the values of every kit still
    alive.
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        propagator: TextMapPropagator | None = None,
    ) -> None:
        self._tracer = trace.get_tracer("webhookkit", __version__, tracer_provider)
        self._propagator = propagator if propagator is not None else TraceContextTextMapPropagator()
        meter = metrics.get_meter("webhookkit", __version__, meter_provider)
        self._deliveries = meter.create_counter(
            "webhookkit.deliveries",
            unit="{attempt}",
            description="Attempts finished, by outcome: success, retry (another attempt is "
            "scheduled) or failed (for good)",
        )
        self._duration = meter.create_histogram(
            "webhookkit.attempt.duration",
            unit="s",
            description="How long attempts took, by event and outcome",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._queued = meter.create_counter(
            "webhookkit.queued", unit="{delivery}", description="Deliveries written by triggers"
        )
        self._breaker_changes = meter.create_counter(
            "webhookkit.breaker.changes",
            unit="{change}",
            description="Endpoint breakers that opened or closed, by state",
        )
        # Sources are read from the SDK's export thread: the list is guarded by a lock.
        self._lock = threading.Lock()
        self._sources: list[Callable[[], GaugeSource | None]] = []
        for name, description in GAUGES.items():
            meter.create_observable_gauge(
                f"webhookkit.{name}",
                callbacks=[self._gauge_callback(name)],
                unit="{breaker}" if name == "breakers_open" else "{delivery}",
                description=description,
            )

    def __repr__(self) -> str:
        return f"OpenTelemetry(kits={len(self._live_sources())})"

    # -- spans -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def trigger(self, event: str) -> Iterator[None]:
        with self._tracer.start_as_current_span(
            "webhookkit.trigger", attributes={"webhookkit.event": event}
        ):
            yield

    @contextlib.contextmanager
    def build(self, event: str, webhooks: int) -> Iterator[None]:
        with self._tracer.start_as_current_span(
            "webhookkit.build",
            attributes={"webhookkit.event": event, "webhookkit.webhooks": webhooks},
        ):
            yield

    def attempt(self, delivery: Delivery, webhook: Webhook) -> AttemptObservation:
        attributes: dict[str, AttributeValue] = {
            "webhookkit.delivery.id": delivery.id,
            "webhookkit.webhook.id": webhook.id,
            "webhookkit.app.id": delivery.app_id,
            "webhookkit.event": delivery.event,
            "webhookkit.attempt": delivery.attempts + 1,
        }
        attributes.update(_target(webhook.target_url))
        span = self._tracer.start_span(
            "webhookkit.attempt", kind=SpanKind.CLIENT, attributes=attributes
        )
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=trace.set_span_in_context(span))
        return _AttemptSpan(self, span, delivery, tuple(carrier.items()))

    # -- metrics ---------------------------------------------------------------------------
    def _finished(self, event: str, outcome: str, duration: float) -> None:
        attributes = {"webhookkit.event": event, "webhookkit.outcome": outcome}
        self._deliveries.add(1, attributes)
        self._duration.record(duration, attributes)

    def queued(self, event: str, count: int) -> None:
        self._queued.add(count, {"webhookkit.event": event})

    def breaker(self, webhook_id: str, state: str) -> None:
        self._breaker_changes.add(
            1, {"webhookkit.breaker.state": state, "webhookkit.webhook.id": webhook_id}
        )

    def observe_gauges(self, gauges: GaugeSource) -> None:
        """Add a kit's gauge callback. A bound method is held weakly (a kit that is gone
        stops counting); any other callable is kept."""
        ref: Callable[[], GaugeSource | None] = (
            weakref.WeakMethod(gauges) if isinstance(gauges, MethodType) else _strong(gauges)
        )
        with self._lock:
            self._sources.append(ref)

    def _live_sources(self) -> list[GaugeSource]:
        with self._lock:
            pairs = [(ref, ref()) for ref in self._sources]
            self._sources = [ref for ref, source in pairs if source is not None]
        return [source for _, source in pairs if source is not None]

    def _gauge_callback(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            total = 0.0
            for source in self._live_sources():
                try:
                    total += float(source().get(name, 0.0))
                except Exception:
                    # Read from another thread while the loop changes the counts: skip once.
                    log.debug("webhookkit: a gauge callback raised", exc_info=True)
            return [Observation(total)]

        return observe


def _strong(source: GaugeSource) -> Callable[[], GaugeSource | None]:
    return lambda: source


def _target(url: str) -> dict[str, AttributeValue]:
    """The target's scheme and host: paths and queries may hold tokens, userinfo passwords."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return {}
    found: dict[str, AttributeValue] = {"url.scheme": parts.scheme}
    if host:
        found["server.address"] = host
    return found
