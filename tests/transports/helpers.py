"""Small helpers shared by the transport tests."""

from __future__ import annotations

from webhookkit import WebhookKit
from webhookkit.transports.base import OutboundMessage, Timeouts


def outbound(url: str, body: bytes = b'{"id":1}', **changes: object) -> OutboundMessage:
    """An OutboundMessage as the scheduler builds it, for tests of one transport."""
    fields: dict[str, object] = {
        "url": url,
        "body": body,
        "event": "order_created",
        "domain": "shop.example.com",
        "api_url": "https://shop.example.com/graphql/",
        "signature": "sig-value",
        "timeouts": Timeouts(),
    }
    fields.update(changes)
    return OutboundMessage(**fields)  # type: ignore[arg-type]


async def subscribe(kit: WebhookKit, url: str, **kwargs: object) -> str:
    """An app holding MANAGE_ORDERS with one ORDER_CREATED webhook to ``url``; its id."""
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    webhook = await kit.webhooks.create(
        app,
        target_url=url,
        events=["ORDER_CREATED"],
        **kwargs,  # type: ignore[arg-type]
    )
    return webhook.id
