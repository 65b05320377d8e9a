"""webhookkit.otel with the OpenTelemetry SDK's in-memory exporters: spans, the traceparent a
real loopback receiver got, and the metrics."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from conftest import LOOPBACK, Receiver
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from webhookkit import (
    DeliveryConfig,
    DeliveryStatus,
    Hooks,
    HTTPTransport,
    IsolationConfig,
    RetryPolicy,
    WebhookKit,
)
from webhookkit.observability import Instrumentation
from webhookkit.otel import OpenTelemetry
from webhookkit.testing import FakeClock

SECRET = "s3cret-signing-key"
TOKEN = "query-token-0123"


@dataclass
class Telemetry:
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    otel: OpenTelemetry

    def finished(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.name == name]

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for m in scope.metrics
            if m.name == metric
            for point in m.data.data_points
        ]

    def value(self, metric: str, **attributes: str) -> float:
        """The sum of the points of ``metric`` whose attributes include ``attributes``."""
        return float(
            sum(
                p.value
                for p in self.points(metric)
                if all(p.attributes.get(k) == v for k, v in attributes.items())
            )
        )


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    otel = OpenTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    yield Telemetry(spans, reader, tracer_provider, otel)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def make_kit(clock: FakeClock, hooks: Hooks | None = None, **options: Any) -> WebhookKit:
    """The one place these tests build a kit: HTTP to loopback receivers, on a fake clock."""
    return WebhookKit(
        domain="shop.example.com",
        clock=clock,
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
        hooks=hooks,
        **options,
    )


def traceparent_of(span: ReadableSpan) -> str:
    context = span.get_span_context()
    assert context is not None
    assert context.trace_flags.sampled
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def all_attribute_text(spans: Sequence[ReadableSpan]) -> str:
    return " ".join(f"{k}={v!s}" for s in spans for k, v in (s.attributes or {}).items())


async def test_a_retried_delivery_gives_spans_traceparents_and_metrics(
    receiver: Receiver, telemetry: Telemetry
) -> None:
    clock = FakeClock()
    receiver.statuses = [503]
    kit = make_kit(clock, Hooks(instrumentation=telemetry.otel))
    async with kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        webhook = await kit.webhooks.create(
            app,
            target_url=f"{receiver.url}/hook?token={TOKEN}",
            events=["ORDER_CREATED"],
            secret_key=SECRET,
        )
        [delivery_id] = await kit.trigger("ORDER_CREATED", payload={"order": {"id": "1"}})
        await kit.wait_idle()
        assert len(receiver.received) == 1
        # The retry is pending: this kit counts it, nothing is in flight.
        assert telemetry.value("webhookkit.pending_local") == 1
        assert telemetry.value("webhookkit.in_flight") == 0
        await clock.advance(10)  # Saleor's first retry delay
        [done] = await kit.wait_for([delivery_id], timeout=10)
        await kit.wait_idle()
        assert done.status is DeliveryStatus.SUCCESS

        [trigger] = telemetry.finished("webhookkit.trigger")
        [build] = telemetry.finished("webhookkit.build")
        assert trigger.attributes == {"webhookkit.event": "order_created"}
        assert build.attributes == {"webhookkit.event": "order_created", "webhookkit.webhooks": 1}
        assert build.parent is not None
        assert build.parent.span_id == trigger.context.span_id

        first, second = telemetry.finished("webhookkit.attempt")
        for span, number in ((first, 1), (second, 2)):
            assert span.kind is SpanKind.CLIENT
            assert span.attributes is not None
            assert span.attributes["webhookkit.delivery.id"] == delivery_id
            assert span.attributes["webhookkit.webhook.id"] == webhook.id
            assert span.attributes["webhookkit.app.id"] == app.id
            assert span.attributes["webhookkit.event"] == "order_created"
            assert span.attributes["webhookkit.attempt"] == number
            assert span.attributes["server.address"] == "127.0.0.1"
        # Each request carried the trace context of its own attempt span.
        assert [r.header("traceparent") for r in receiver.received] == [
            traceparent_of(first),
            traceparent_of(second),
        ]
        assert first.attributes is not None and second.attributes is not None
        assert first.status.status_code is StatusCode.ERROR
        assert first.attributes["http.response.status_code"] == 503
        assert first.attributes["error.type"] == "rejected"
        assert first.attributes["webhookkit.outcome"] == "retry"
        assert second.status.status_code is StatusCode.OK
        assert second.attributes["http.response.status_code"] == 200
        assert second.attributes["webhookkit.outcome"] == "success"
        assert "error.type" not in second.attributes
        text = all_attribute_text(telemetry.spans.get_finished_spans())
        assert TOKEN not in text
        assert SECRET not in text

        assert telemetry.value("webhookkit.deliveries", **{"webhookkit.outcome": "retry"}) == 1
        assert telemetry.value("webhookkit.deliveries", **{"webhookkit.outcome": "success"}) == 1
        assert telemetry.value("webhookkit.deliveries", **{"webhookkit.outcome": "failed"}) == 0
        assert telemetry.value("webhookkit.queued", **{"webhookkit.event": "order_created"}) == 1
        durations = telemetry.points("webhookkit.attempt.duration")
        assert {p.attributes["webhookkit.outcome"]: p.count for p in durations} == {
            "retry": 1,
            "success": 1,
        }
        assert {p.attributes["webhookkit.event"] for p in durations} == {"order_created"}
        for gauge in ("pending_local", "in_flight", "held", "breakers_open"):
            assert telemetry.value(f"webhookkit.{gauge}") == 0, gauge


async def test_duration_histogram_by_outcome_and_failed_for_good(
    receiver: Receiver, telemetry: Telemetry
) -> None:
    receiver.statuses = [503, 404]
    kit = make_kit(
        FakeClock(),
        Hooks(instrumentation=telemetry.otel),
        retry=RetryPolicy.saleor(max_attempts=1),
    )
    async with kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        await kit.webhooks.create(app, target_url=f"{receiver.url}/h", events=["ORDER_CREATED"])
        for _ in range(3):  # 503, 404 (both final with one attempt), then 200
            ids = await kit.trigger("ORDER_CREATED", payload={})
            await kit.wait_for(ids, timeout=10)
            await kit.wait_idle()
    assert telemetry.value("webhookkit.deliveries", **{"webhookkit.outcome": "failed"}) == 2
    assert telemetry.value("webhookkit.deliveries", **{"webhookkit.outcome": "success"}) == 1
    counts = {
        p.attributes["webhookkit.outcome"]: p.count
        for p in telemetry.points("webhookkit.attempt.duration")
    }
    assert counts == {"failed": 2, "success": 1}
    assert all(p.sum > 0 for p in telemetry.points("webhookkit.attempt.duration"))
    attempts = telemetry.finished("webhookkit.attempt")
    assert [s.status.status_code for s in attempts] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.OK,
    ]
    assert [(s.attributes or {}).get("http.response.status_code") for s in attempts] == [
        503,
        404,
        200,
    ]


async def test_breaker_changes_and_open_breakers_gauge(
    receiver: Receiver, telemetry: Telemetry
) -> None:
    clock = FakeClock()
    receiver.statuses = [503, 503]
    isolation = IsolationConfig(failure_threshold=2, cooldown=timedelta(seconds=30))
    kit = make_kit(
        clock,
        Hooks(instrumentation=telemetry.otel),
        retry=RetryPolicy.saleor(max_attempts=1),
        delivery=DeliveryConfig(isolation=isolation),
    )
    async with kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        hook = await kit.webhooks.create(
            app, target_url=f"{receiver.url}/h", events=["ORDER_CREATED"]
        )
        for _ in range(2):
            ids = await kit.trigger("ORDER_CREATED", payload={})
            await kit.wait_for(ids, timeout=10)
        await kit.wait_idle()
        assert telemetry.value("webhookkit.breakers_open") == 1
        state = "webhookkit.breaker.state"
        assert telemetry.value("webhookkit.breaker.changes", **{state: "open"}) == 1
        [point] = telemetry.points("webhookkit.breaker.changes")
        assert point.attributes["webhookkit.webhook.id"] == hook.id
        await clock.advance(30)
        ids = await kit.trigger("ORDER_CREATED", payload={})  # 200: the probe closes it
        await kit.wait_for(ids, timeout=10)
        await kit.wait_idle()
        assert telemetry.value("webhookkit.breaker.changes", **{state: "closed"}) == 1
        assert telemetry.value("webhookkit.breakers_open") == 0


async def test_a_trigger_inside_a_host_span_is_its_child(
    receiver: Receiver, telemetry: Telemetry
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("host")
    kit = make_kit(FakeClock(), Hooks(instrumentation=telemetry.otel))
    async with kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        await kit.webhooks.create(app, target_url=f"{receiver.url}/h", events=["ORDER_CREATED"])
        with tracer.start_as_current_span("POST /checkout") as host:
            ids = await kit.trigger("ORDER_CREATED", payload={})
        await kit.wait_for(ids, timeout=10)
        await kit.wait_idle()
    [trigger] = telemetry.finished("webhookkit.trigger")
    assert trigger.parent is not None
    assert trigger.parent.span_id == host.get_span_context().span_id
    assert trigger.context.trace_id == host.get_span_context().trace_id
    [attempt] = telemetry.finished("webhookkit.attempt")
    assert receiver.received[0].header("traceparent") == traceparent_of(attempt)


async def test_no_instrumentation_sends_no_trace_headers(receiver: Receiver) -> None:
    async with make_kit(FakeClock()) as kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        await kit.webhooks.create(app, target_url=f"{receiver.url}/h", events=["ORDER_CREATED"])
        ids = await kit.trigger("ORDER_CREATED", payload={})
        await kit.wait_for(ids, timeout=10)
    [received] = receiver.received
    assert received.header("traceparent") is None
    assert received.header("tracestate") is None


class _Kitlike:
    def __init__(self, in_flight: float) -> None:
        self.in_flight = in_flight

    def gauges(self) -> dict[str, float]:
        return {"in_flight": self.in_flight, "held": 1.0}


def test_gauges_add_up_kits_and_forget_kits_that_are_gone(telemetry: Telemetry) -> None:
    instrumentation: Instrumentation = telemetry.otel  # the protocol, checked by mypy
    first, second = _Kitlike(2), _Kitlike(3)
    instrumentation.observe_gauges(first.gauges)
    instrumentation.observe_gauges(second.gauges)
    instrumentation.observe_gauges(lambda: {"pending_local": 5.0})  # kept: not a method
    assert telemetry.value("webhookkit.in_flight") == 5
    assert telemetry.value("webhookkit.held") == 2
    assert telemetry.value("webhookkit.pending_local") == 5
    del second
    gc.collect()
    assert telemetry.value("webhookkit.in_flight") == 2
    assert telemetry.value("webhookkit.held") == 1
    assert telemetry.value("webhookkit.pending_local") == 5
    assert repr(telemetry.otel) == "OpenTelemetry(kits=2)"


def test_a_raising_gauge_callback_is_skipped(telemetry: Telemetry) -> None:
    def broken() -> dict[str, float]:
        raise RuntimeError("counts changed while read")

    telemetry.otel.observe_gauges(broken)
    telemetry.otel.observe_gauges(lambda: {"in_flight": 4.0})
    assert telemetry.value("webhookkit.in_flight") == 4


def test_webhookkit_imports_and_runs_without_opentelemetry() -> None:
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"  # any import of it now fails
        "import webhookkit\n"
        "from webhookkit import Hooks, WebhookKit\n"
        "WebhookKit(hooks=Hooks())\n"
        "try:\n"
        "    import webhookkit.otel\n"
        "except ImportError:\n"
        "    print('otel needs opentelemetry')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "otel needs opentelemetry"
