"""Unit-test your webhook code without a network or sleeping: FakeClock + MemoryTransport.

The receiver "fails" with 503 twice; the clock is moved through Saleor's schedule by hand and
the third attempt succeeds. Runs in well under a second.
"""

from __future__ import annotations

import asyncio

from webhookkit import DeliveryStatus, WebhookKit
from webhookkit.testing import FakeClock, MemoryTransport


async def main() -> None:
    clock, transport = FakeClock(), MemoryTransport(statuses=[503, 503, 200])
    async with WebhookKit(clock=clock, transports=[transport]) as kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        await kit.webhooks.create(app, target_url="memory://erp", events=["ORDER_CREATED"])
        [delivery_id] = await kit.trigger("ORDER_CREATED", payload={"order": {"id": "1"}})
        for wait in (10, 20):  # Saleor's schedule: 10 s, then 20 s
            await kit.wait_idle()
            await clock.advance(wait)
        [delivery] = await kit.wait_for([delivery_id], timeout=5)
    assert delivery.status is DeliveryStatus.SUCCESS, delivery
    assert len(transport.sent) == 3
    print(f"{delivery.event}: {delivery.status.value} after {delivery.attempts} attempts")
    for message in transport.sent:
        print(f"  sent {message.body.decode()} signed {message.signature is not None}")


if __name__ == "__main__":
    asyncio.run(main())
