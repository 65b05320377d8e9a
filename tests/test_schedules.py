"""Retry schedules as receivers see them, on the FakeClock: the endpoint breaker never moves a
lone failing delivery off Saleor's schedule, and a manual retry starts a fresh one."""

from __future__ import annotations

from datetime import datetime

from webhookkit import DeliveryStatus, RetryPolicy, WebhookKit
from webhookkit.testing import FakeClock, MemoryTransport


async def attempt_times(kit: WebhookKit, delivery_id: str, since: datetime) -> list[float]:
    return [(a.created_at - since).total_seconds() for a in await kit.list_attempts(delivery_id)]


async def run_schedule(kit: WebhookKit, clock: FakeClock, seconds: int) -> None:
    """Advance the clock second by second, letting every due attempt run."""
    for _ in range(seconds):
        await kit.wait_idle()
        await clock.advance(1)
    await kit.wait_idle()


async def test_a_lone_failing_delivery_keeps_saleors_schedule_and_a_manual_retry_restarts_it() -> (
    None
):
    clock = FakeClock()
    transport = MemoryTransport(statuses=[503] * 10)
    async with WebhookKit(
        clock=clock, transports=[transport], retry=RetryPolicy.saleor(), retention=None
    ) as kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        await kit.webhooks.create(
            app, target_url="memory://erp", events=["ORDER_CREATED"], secret_key="k"
        )
        start = clock.now()
        [delivery_id] = await kit.trigger("ORDER_CREATED", payload={"n": 1})
        await run_schedule(kit, clock, 200)
        delivery = await kit.get_delivery(delivery_id)
        assert delivery is not None and delivery.status is DeliveryStatus.FAILED
        # Five failures in a row opened the endpoint's breaker, yet no retry waited for it.
        assert await attempt_times(kit, delivery_id, start) == [0, 10, 30, 70, 150]
        assert kit.scheduler.gate.breaker_opened >= 1

        await clock.advance(1000)
        retried_at = clock.now()
        await kit.retry_delivery(delivery_id)
        await run_schedule(kit, clock, 200)
        times = await attempt_times(kit, delivery_id, retried_at)
        assert times[-5:] == [0, 10, 30, 70, 150]
        assert len(transport.sent) == 10
