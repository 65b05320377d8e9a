"""Endpoints that disable themselves, with notice (Svix's 5-day rule), on the FakeClock:
warnings first, then the webhook is disabled, the host's callback and the WEBHOOK_DISABLED
event fire, its pending deliveries are held, and activating it again resumes them."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from webhookkit import (
    DeliveryConfig,
    DeliveryStatus,
    Hooks,
    OutboundMessage,
    SQLiteStore,
    Webhook,
    WebhookKit,
)
from webhookkit.stores.base import Store
from webhookkit.testing import FakeClock, MemoryTransport


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_webhook_failing_too_long_is_disabled_with_notice_and_resumes(
    kind: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    start = clock.now()
    answers = {"memory://shop-erp": 503}
    seen: list[tuple[str, datetime]] = []

    def answer(message: OutboundMessage) -> int:
        seen.append((message.url, clock.now()))
        return answers.get(message.url, 200)

    warnings: list[float] = []
    disabled: list[tuple[Webhook, datetime]] = []
    store: Store | None = SQLiteStore(tmp_path / "disable.db") if kind == "sqlite" else None
    kit = WebhookKit(
        store=store,
        clock=clock,
        transports=[MemoryTransport(responder=answer)],
        delivery=DeliveryConfig(disable_after=timedelta(hours=1), disable_warnings=(0.5, 0.9)),
        hooks=Hooks(
            on_failing=lambda w, fraction, since: warnings.append(fraction),
            on_disabled=lambda w, since: disabled.append((w, since)),
        ),
        retention=None,
    )
    async with kit:
        erp_app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        erp = await kit.webhooks.create(
            erp_app, target_url="memory://shop-erp", events=["ORDER_CREATED"], secret_key="k"
        )
        ops_app = await kit.apps.create("ops", permissions=["MANAGE_APPS"])
        await kit.webhooks.create(
            ops_app, target_url="memory://ops", events=["WEBHOOK_DISABLED"], secret_key="k"
        )
        ids: list[str] = []
        for minute in range(0, 75):
            if minute % 10 == 0:
                ids += await kit.trigger("ORDER_CREATED", payload={"minute": minute})
            await kit.wait_idle()
            await clock.advance(60)
        await kit.wait_idle()
        assert warnings == [0.5, 0.9]
        [(hook, since)] = disabled
        assert hook.id == erp.id and since == start
        stored = await kit.webhooks.get(erp.id)
        assert not stored.is_active and stored.disabled_at is not None
        assert stored.disabled_at - start >= timedelta(hours=1)
        # The ops app heard of it through the WEBHOOK_DISABLED event.
        assert [url for url, _ in seen].count("memory://ops") == 1
        # Nothing more went to the disabled endpoint, and what was pending is held.
        last_erp = max(t for url, t in seen if url == "memory://shop-erp")
        assert last_erp <= stored.disabled_at
        held = [d for i in ids if (d := await kit.get_delivery(i)) is not None and not d.is_final]
        assert held, "the delivery that was still retrying when the webhook was disabled"
        await clock.advance(3600)
        await kit.wait_idle()
        assert max(t for url, t in seen if url == "memory://shop-erp") == last_erp

        answers["memory://shop-erp"] = 200
        resumed = await kit.webhooks.update(erp.id, is_active=True)
        assert resumed.disabled_at is None
        for _ in range(10):
            await kit.wait_idle()
            await clock.advance(60)
        done = await kit.wait_for([d.id for d in held], timeout=30)
    assert all(d.status is DeliveryStatus.SUCCESS for d in done)
