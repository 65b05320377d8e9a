"""``trigger``, ``deliveries list|show|resend``, ``apps`` and ``webhooks`` on a SQLite store
set up by a kit in the test, against a real receiver."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Receiver

from webhookkit import DeliveryConfig, DeliveryStatus, HTTPTransport, RetryPolicy, WebhookKit

from ._cli import arun, one_line_error

LOOPBACK = ["127.0.0.1/32"]


def make_kit(store: str) -> WebhookKit:
    """The one kit construction of these tests (one try each, so a 500 fails at once)."""
    return WebhookKit(
        domain="shop.example.com",
        store=store,
        retry=RetryPolicy.saleor(max_attempts=1),
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
        delivery=DeliveryConfig(poll_interval=0.05),
    )


@dataclass
class Shop:
    store: str
    app_id: str
    other_app_id: str
    webhook_id: str
    other_webhook_id: str
    failed: list[str]


@pytest.fixture
async def shop(tmp_path: Path, receiver: Receiver) -> Shop:
    """Two apps with a webhook each and three deliveries that failed (the receiver said 500)."""
    store = f"sqlite:///{tmp_path / 'hooks.db'}"
    receiver.statuses = [500, 500, 500]
    async with make_kit(store) as kit:
        erp = await kit.apps.create("ERP", permissions=["MANAGE_ORDERS"])
        crm = await kit.apps.create("CRM", permissions=["MANAGE_ORDERS", "MANAGE_USERS"])
        hook = await kit.webhooks.create(
            erp,
            target_url=receiver.url + "/erp",
            events=["ORDER_CREATED", "ORDER_PAID"],
            secret_key="erp-secret-value",
            custom_headers={"Authorization": "Bearer very-secret-token"},
        )
        other = await kit.webhooks.create(
            crm, target_url=receiver.url + "/crm", events=["ORDER_CREATED"]
        )
        first = await kit.trigger("ORDER_CREATED", payload={"order": {"id": "1"}})
        done = await kit.wait_for(first, timeout=30)
        paid = await kit.trigger("ORDER_PAID", payload={"order": {"id": "2"}})
        done += await kit.wait_for(paid, timeout=30)
    failed = [d.id for d in done if d.status is DeliveryStatus.FAILED]
    assert len(failed) == 3
    return Shop(store, erp.id, crm.id, hook.id, other.id, failed)


async def test_resend_failed_since_requeues_and_a_worker_delivers(
    shop: Shop, receiver: Receiver
) -> None:
    dry = await arun(
        "deliveries", "resend", "--failed-since", "1h", "--dry-run", "--store", shop.store
    )
    assert dry.returncode == 0, dry.stderr
    assert sorted(dry.stdout.split()) == sorted(shop.failed)
    assert "3 delivery(ies) would be resent" in dry.stderr
    future = await arun(
        "deliveries",
        "resend",
        "--failed-since",
        "2999-01-01T00:00:00Z",
        "--dry-run",
        "--store",
        shop.store,
    )
    assert future.stdout == "" and "0 delivery(ies)" in future.stderr
    only_crm = await arun(
        "deliveries",
        "resend",
        "--failed-since",
        "1d",
        "--app",
        shop.other_app_id,
        "--dry-run",
        "--store",
        shop.store,
    )
    assert len(only_crm.stdout.split()) == 1

    done = await arun("deliveries", "resend", "--failed-since", "1h", "--store", shop.store)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == sorted(shop.failed)
    assert "resend: 3/3" in done.stderr  # not a terminal: the final count
    pending = await arun(
        "deliveries", "list", "--status", "pending", "--json", "--store", shop.store
    )
    assert sorted(json.loads(line)["id"] for line in pending.stdout.splitlines()) == sorted(
        shop.failed
    )
    # A worker (here a kit on the same store) sends them; the receiver now answers 200.
    async with make_kit(shop.store) as kit:
        final = await kit.wait_for(shop.failed, timeout=30)
    assert all(d.status is DeliveryStatus.SUCCESS for d in final)
    assert len(receiver.received) == 6
    # Resending a pending or unknown id is refused per id, with exit 1.
    again = await arun("deliveries", "resend", "nope", "--store", shop.store)
    assert again.returncode == 1 and "does not exist" in again.stderr


async def test_list_and_show_deliveries_with_filters(shop: Shop) -> None:
    every = await arun("deliveries", "list", "--json", "--store", shop.store)
    rows = [json.loads(line) for line in every.stdout.splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(shop.failed)
    by_event = await arun("deliveries", "list", "--event", "ORDER_PAID", "--store", shop.store)
    lines = by_event.stdout.splitlines()
    assert lines[0].split()[:4] == ["ID", "CREATED", "EVENT", "STATUS"]
    assert len(lines) == 2 and "order_paid" in lines[1] and "failed" in lines[1]
    by_webhook = await arun(
        "deliveries", "list", "--webhook", shop.other_webhook_id, "--json", "--store", shop.store
    )
    assert [json.loads(x)["webhook_id"] for x in by_webhook.stdout.splitlines()] == [
        shop.other_webhook_id
    ]
    by_app = await arun("deliveries", "list", "--app", shop.app_id, "--json", "--store", shop.store)
    assert len(by_app.stdout.splitlines()) == 2
    old = await arun("deliveries", "list", "--until", "1h", "--store", shop.store)
    assert len(old.stdout.splitlines()) <= 1  # header only (or nothing)
    show = await arun("deliveries", "show", shop.failed[0], "--store", shop.store)
    assert show.returncode == 0, show.stderr
    assert "attempt 1:" in show.stdout and " 500 " in show.stdout
    assert '"order"' in show.stdout
    missing = await arun("deliveries", "show", "nope", "--store", shop.store)
    assert missing.returncode == 2 and "nope" in one_line_error(missing)
    bad_time = await arun("deliveries", "list", "--since", "yesterday", "--store", shop.store)
    assert bad_time.returncode == 2 and "since" in one_line_error(bad_time)


async def test_apps_and_webhooks_are_shown_without_secrets(shop: Shop) -> None:
    apps = await arun("apps", "list", "--store", shop.store)
    assert "ERP" in apps.stdout and "CRM" in apps.stdout
    app = await arun("apps", "show", shop.app_id, "--store", shop.store)
    assert "MANAGE_ORDERS" in app.stdout and shop.webhook_id in app.stdout
    hooks = await arun("webhooks", "list", "--app", shop.other_app_id, "--store", shop.store)
    assert shop.other_webhook_id in hooks.stdout and shop.webhook_id not in hooks.stdout
    hook = await arun("webhooks", "show", shop.webhook_id, "--store", shop.store)
    assert hook.returncode == 0, hook.stderr
    assert "order_created" in hook.stdout and "secret:    [secret]" in hook.stdout
    assert "erp-secret-value" not in hook.stdout and "very-secret-token" not in hook.stdout
    assert "authorization: [secret]" in hook.stdout
    unknown = await arun("webhooks", "show", "nope", "--store", shop.store)
    assert unknown.returncode == 2 and "nope" in one_line_error(unknown)


async def test_trigger_queues_for_the_stored_webhooks(shop: Shop, tmp_path: Path) -> None:
    payload = tmp_path / "p.json"
    payload.write_text('{"order": {"id": "7"}}')
    queued = await arun(
        "trigger", "ORDER_CREATED", "--payload", str(payload), "--store", shop.store
    )
    assert queued.returncode == 0, queued.stderr
    ids = queued.stdout.split()
    assert len(ids) == 2 and "queued 2" in queued.stderr
    async with make_kit(shop.store) as kit:
        rows = [await kit.get_delivery(i) for i in ids]
        bodies = {
            (await kit.store.get_payload(d.payload_id)).body  # type: ignore[union-attr]
            for d in rows
            if d is not None
        }
    assert bodies == {b'{"order":{"id":"7"}}'}
    nobody = await arun(
        "trigger", "PRODUCT_CREATED", "--payload", str(payload), "--store", shop.store
    )
    assert nobody.returncode == 0 and nobody.stdout == "" and "nothing queued" in nobody.stderr


async def test_store_errors_are_one_line(tmp_path: Path) -> None:
    absent = await arun("deliveries", "list", "--store", f"sqlite:///{tmp_path / 'no.db'}")
    assert absent.returncode == 2 and "no SQLite database" in one_line_error(absent)
    assert not (tmp_path / "no.db").exists()
    no_store = await arun("apps", "list")
    assert no_store.returncode == 2 and "--store" in one_line_error(no_store)
    neither = await arun("deliveries", "resend", "--store", "memory://")
    assert neither.returncode == 2 and "resend" in one_line_error(neither)
