"""Per-endpoint rate limits on the FakeClock: a throttled webhook gets at most its limit plus
its burst, its deliveries stay pending (never failed, never retried early), and a second
webhook is not slowed at all."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from webhookkit import (
    DeliveryStatus,
    InvalidFieldError,
    OutboundMessage,
    RateLimit,
    SQLiteStore,
    WebhookKit,
)
from webhookkit.testing import FakeClock, MemoryTransport


@pytest.mark.parametrize("where", ["webhook", "app"])
async def test_a_throttled_endpoint_gets_its_rate_and_the_other_is_unaffected(
    where: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    start = clock.now()
    sent: list[tuple[str, datetime]] = []

    def answer(message: OutboundMessage) -> int:
        sent.append((message.url, clock.now()))
        return 200

    limit = RateLimit(per_second=5, burst=5)
    kit = WebhookKit(
        store=SQLiteStore(tmp_path / "limits.db"),
        clock=clock,
        transports=[MemoryTransport(responder=answer)],
        retention=None,
    )
    async with kit:
        slow_app = await kit.apps.create(
            "slow", permissions=["MANAGE_ORDERS"], rate_limit=limit if where == "app" else None
        )
        fast_app = await kit.apps.create("fast", permissions=["MANAGE_ORDERS"])
        await kit.webhooks.create(
            slow_app,
            target_url="memory://slow",
            events=["ORDER_CREATED"],
            secret_key="k",
            rate_limit=limit if where == "webhook" else None,
        )
        await kit.webhooks.create(
            fast_app, target_url="memory://fast", events=["ORDER_CREATED"], secret_key="k"
        )
        ids = [i for n in range(40) for i in await kit.trigger("ORDER_CREATED", payload={"n": n})]
        await kit.wait_idle()
        fast_times = [t for url, t in sent if url == "memory://fast"]
        assert len(fast_times) == 40 and set(fast_times) == {start}
        for _ in range(100):  # ten seconds in steps of 0.1 s
            await clock.advance(0.1)
            await kit.wait_idle()
        done = await kit.wait_for(ids, timeout=30)
        attempts = [len(await kit.list_attempts(i)) for i in ids]
    slow = [(t - start).total_seconds() for url, t in sent if url == "memory://slow"]
    assert len(slow) == 40
    for second in range(9):
        window = [s for s in slow if s < second + 1]
        assert len(window) <= 5 + 5 * (second + 1), (second, len(window))
    assert max(slow) >= 6.5  # 40 at 5/s after a burst of 5 cannot finish sooner
    assert all(d.status is DeliveryStatus.SUCCESS for d in done)
    assert attempts == [1] * 80  # throttling spent no attempt
    assert kit.stats.throttled > 0


def test_a_bad_rate_limit_is_refused() -> None:
    with pytest.raises(InvalidFieldError, match="per_second"):
        RateLimit(per_second=0)
    with pytest.raises(InvalidFieldError, match="burst"):
        RateLimit(per_second=5, burst=0)
