"""Records for store tests, at fixed times: ``at(10)`` is ten seconds after T0."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from webhookkit import Attempt, AttemptStatus, Delivery, DeliveryStatus, Payload, WebhookKit
from webhookkit.stores import Store

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
LEASE = timedelta(seconds=30)
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def payload(pid: str = "p1", body: bytes = b'{"id": 1}', created: float = 0) -> Payload:
    return Payload(id=pid, event="order_created", body=body, created_at=at(created))


def delivery(
    did: str,
    pid: str = "p1",
    *,
    webhook: str = "w1",
    event: str = "order_created",
    created: float = 0,
    next_try: float | None = 0,
    status: DeliveryStatus = DeliveryStatus.PENDING,
) -> Delivery:
    return Delivery(
        id=did,
        payload_id=pid,
        webhook_id=webhook,
        app_id="a1",
        event=event,
        created_at=at(created),
        status=status,
        next_try_at=None if next_try is None else at(next_try),
    )


def attempt(did: str, number: int = 1, *, ok: bool = False, when: float = 1) -> Attempt:
    return Attempt(
        id=f"{did}-{number}",
        delivery_id=did,
        number=number,
        created_at=at(when),
        status=AttemptStatus.SUCCESS if ok else AttemptStatus.FAILED,
        duration=0.25,
        response_status_code=200 if ok else 503,
        response_excerpt="ok" if ok else "unavailable",
        request_headers=(("Saleor-Event", "order_created"), ("Saleor-Signature", "[secret]")),
        response_headers=(("Content-Type", "text/plain"), ("X-Dup", "1"), ("X-Dup", "2")),
        error_kind=None if ok else "rejected",
        error=None if ok else "receiver answered HTTP 503",
        retryable=not ok,
    )


async def queue(store: Store, *ids: str, pid: str = "p1", **kw: object) -> list[Delivery]:
    made = [delivery(i, pid, **kw) for i in ids]  # type: ignore[arg-type]
    await store.add_deliveries([payload(pid)], made)
    return made


async def finish(
    store: Store,
    did: str,
    status: DeliveryStatus,
    *,
    when: float,
    next_try: float | None = None,
    number: int = 1,
) -> Delivery:
    return await store.finish_attempt(
        did,
        attempt(did, number, ok=status is DeliveryStatus.SUCCESS, when=when),
        status=status,
        next_try_at=None if next_try is None else at(next_try),
        now=at(when),
    )


async def order_backlog(kit: WebhookKit, webhooks: int, triggers: int) -> list[str]:
    """Open ``kit``, give it an app with ``webhooks`` webhooks (``memory://shop/<n>``, HMAC)
    and trigger ORDER_CREATED ``triggers`` times: the deliveries' ids."""
    await kit.open()
    app = await kit.apps.create("shop", permissions=["MANAGE_ORDERS"])
    for n in range(webhooks):
        await kit.webhooks.create(
            app, target_url=f"memory://shop/{n}", events=["ORDER_CREATED"], secret_key="k"
        )
    return [
        i for n in range(triggers) for i in await kit.trigger("ORDER_CREATED", payload={"n": n})
    ]
