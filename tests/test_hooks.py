"""Host callbacks: a delivery that failed for good, and breakers that open and close."""

from __future__ import annotations

from datetime import timedelta

from webhookkit import (
    Attempt,
    Delivery,
    DeliveryConfig,
    DeliveryStatus,
    Hooks,
    IsolationConfig,
    RetryPolicy,
    WebhookKit,
)
from webhookkit.testing import FakeClock, MemoryTransport


async def test_failed_for_good_and_breaker_changes_reach_the_host() -> None:
    failed: list[tuple[Delivery, Attempt]] = []
    breaker: list[tuple[str, str]] = []

    async def on_failed(delivery: Delivery, attempt: Attempt) -> None:  # a coroutine works
        failed.append((delivery, attempt))

    clock = FakeClock()
    transport = MemoryTransport(statuses=[503, 503, 503])
    isolation = IsolationConfig(failure_threshold=2, cooldown=timedelta(seconds=30))
    async with WebhookKit(
        clock=clock,
        transports=[transport],
        retry=RetryPolicy.saleor(max_attempts=1),
        delivery=DeliveryConfig(isolation=isolation),
        hooks=Hooks(on_failed=on_failed, on_breaker=lambda w, s: breaker.append((w, s))),
    ) as kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        hook = await kit.webhooks.create(
            app, target_url="memory://erp", events=["ORDER_CREATED"], secret_key="k"
        )
        first = await kit.trigger("ORDER_CREATED", payload={"n": 1})
        await kit.wait_for(first, timeout=10)
        second = await kit.trigger("ORDER_CREATED", payload={"n": 2})
        await kit.wait_for(second, timeout=10)
        assert breaker == [(hook.id, "open")]
        await clock.advance(30)
        third = await kit.trigger("ORDER_CREATED", payload={"n": 3})
        await kit.wait_for(third, timeout=10)  # 503 again: the probe fails
        await clock.advance(30)
        fourth = await kit.trigger("ORDER_CREATED", payload={"n": 4})
        await kit.wait_for(fourth, timeout=10)  # 200: the probe succeeds
    assert breaker == [(hook.id, "open"), (hook.id, "closed")]
    assert [d.id for d, _ in failed] == first + second + third
    assert all(d.status is DeliveryStatus.FAILED for d, _ in failed)
    assert all(a.response_status_code == 503 for _, a in failed)


async def test_a_raising_callback_never_reaches_the_delivery() -> None:
    def boom(delivery: Delivery, attempt: Attempt) -> None:
        raise RuntimeError("host bug")

    transport = MemoryTransport(statuses=[404])
    async with WebhookKit(transports=[transport], hooks=Hooks(on_failed=boom)) as kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        await kit.webhooks.create(
            app, target_url="memory://erp", events=["ORDER_CREATED"], secret_key="k"
        )
        ids = await kit.trigger("ORDER_CREATED", payload={})
        [done] = await kit.wait_for(ids, timeout=10)
        assert done.status is DeliveryStatus.FAILED
        later = await kit.trigger("ORDER_CREATED", payload={})
        [ok] = await kit.wait_for(later, timeout=10)
    assert ok.status is DeliveryStatus.SUCCESS
