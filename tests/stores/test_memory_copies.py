"""The memory store's hand-written delivery copies equal dataclasses.replace (a field added to
Delivery and forgotten there fails here)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from webhookkit.delivery.records import Delivery, DeliveryStatus
from webhookkit.stores.memory import _finished_as, _with_lease

T = datetime(2026, 1, 1, tzinfo=UTC)


def full() -> Delivery:
    return Delivery(
        id="d1",
        payload_id="p1",
        webhook_id="w1",
        app_id="a1",
        event="order_created",
        created_at=T,
        status=DeliveryStatus.PENDING,
        next_try_at=T + timedelta(seconds=1),
        attempts=3,
        lease_until=T + timedelta(seconds=2),
        last_error="e",
        updated_at=T + timedelta(seconds=3),
        retry_base=1,
        requeued_at=T + timedelta(seconds=4),
        ordering_key="k",
    )


def test_copies_match_replace() -> None:
    d = full()
    until = T + timedelta(minutes=5)
    assert _with_lease(d, until) == dataclasses.replace(d, lease_until=until)
    done = _finished_as(d, DeliveryStatus.FAILED, None, "boom", T)
    assert done == dataclasses.replace(
        d,
        status=DeliveryStatus.FAILED,
        attempts=4,
        next_try_at=None,
        lease_until=None,
        last_error="boom",
        updated_at=T,
    )
    assert len(dataclasses.fields(Delivery)) == 15
