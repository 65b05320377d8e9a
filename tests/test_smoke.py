from __future__ import annotations

from conftest import Receiver

from webhookkit import DeliveryStatus, WebhookKit


async def test_signed_delivery_reaches_a_loopback_receiver(
    kit: WebhookKit, receiver: Receiver
) -> None:
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    await kit.webhooks.create(
        app, target_url=receiver.url + "/hook", events=["ORDER_CREATED"], secret_key="k"
    )
    ids = await kit.trigger("ORDER_CREATED", payload={"id": 1})
    [delivery] = await kit.wait_for(ids, timeout=10)
    assert delivery.status is DeliveryStatus.SUCCESS
    assert receiver.received[0].body == b'{"id":1}'
