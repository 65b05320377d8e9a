"""Declarative setup: ``kit.apps.ensure`` and ``kit.webhooks.ensure`` on every start leave one
app and one webhook, updated in place when the program's wish changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from stores.pgcluster import PostgresCluster

from webhookkit import DuplicateError, InvalidFieldError, WebhookKit
from webhookkit.stores import open_store

ROOT = Path(__file__).resolve().parents[1]
ORDERS = "https://erp.example.com/webhooks/orders"


def make_kit(store: str) -> WebhookKit:
    """Every kit of this module (one place to change when the constructor changes)."""
    return WebhookKit(domain="shop.example.com", store=store)


async def setup(kit: WebhookKit, *, url: str = ORDERS, permissions: tuple[str, ...] = ()) -> None:
    """What a host's start-up code does, every time it starts."""
    app = await kit.apps.ensure(
        identifier="erp.sync", name="ERP sync", permissions=permissions or ("MANAGE_ORDERS",)
    )
    await kit.webhooks.ensure(
        app, identifier="orders", target_url=url, events=["ORDER_CREATED", "ORDER_UPDATED"]
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'setup.db'}"
        return
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    async with cluster.database() as dsn:
        yield dsn


async def raw_counts(url: str) -> tuple[int, int]:
    """How many app and webhook rows the database holds, counted without webhookkit."""
    queries = ("SELECT COUNT(*) FROM webhookkit_apps", "SELECT COUNT(*) FROM webhookkit_webhooks")
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
            apps, webhooks = (db.execute(q).fetchone()[0] for q in queries)
            return int(apps), int(webhooks)
    conn = await asyncpg.connect(url)
    try:
        apps, webhooks = [await conn.fetchval(q) for q in queries]
        return int(apps), int(webhooks)
    finally:
        await conn.close()


async def test_ensure_twice_leaves_one_app_and_one_webhook(store_url: str) -> None:
    for _ in range(2):  # two starts of the same program
        async with make_kit(store_url) as kit:
            await setup(kit)
    async with make_kit(store_url) as kit:
        [app] = await kit.apps.list()
        [webhook] = await kit.webhooks.list()
    assert (app.identifier, app.name, app.permissions) == (
        "erp.sync",
        "ERP sync",
        frozenset({"MANAGE_ORDERS"}),
    )
    assert (webhook.identifier, webhook.app_id, webhook.target_url) == ("orders", app.id, ORDERS)
    assert webhook.events == frozenset({"order_created", "order_updated"})
    assert await raw_counts(store_url) == (1, 1)


async def test_a_changed_field_is_updated_in_place(store_url: str) -> None:
    async with make_kit(store_url) as kit:
        await setup(kit)
        [before_app] = await kit.apps.list()
        [before] = await kit.webhooks.list()
        token = await kit.apps.create_token(before_app.id, name="erp")
        await setup(
            kit,
            url="https://erp.example.com/v2/orders",
            permissions=("MANAGE_ORDERS", "MANAGE_PRODUCTS"),
        )
        [app] = await kit.apps.list()
        [webhook] = await kit.webhooks.list()
        # Same rows, new values; the token made once is still there and was not shown again.
        assert app.id == before_app.id and webhook.id == before.id
        assert app.permissions == frozenset({"MANAGE_ORDERS", "MANAGE_PRODUCTS"})
        assert webhook.target_url == "https://erp.example.com/v2/orders"
        assert webhook.created_at == before.created_at
        assert [t.id for t in await kit.apps.list_tokens(app.id)] == [token.token.id]
    assert await raw_counts(store_url) == (1, 1)


async def test_an_unchanged_wish_writes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'same.db'}"
    async with make_kit(url) as kit:
        with caplog.at_level(logging.INFO, logger="webhookkit.setup"):
            await setup(kit)
            first = [r.getMessage() for r in caplog.records]
            caplog.clear()
            # Same wish, events in another order and lower case: nothing differs.
            app = await kit.apps.ensure(
                identifier="erp.sync", name="ERP sync", permissions=["manage_orders"]
            )
            webhook = await kit.webhooks.ensure(
                app,
                identifier="orders",
                target_url=ORDERS,
                events=["order_updated", "ORDER_CREATED"],
            )
        assert len(first) == 2 and all("created" in m for m in first)
        assert caplog.records == []
        assert await kit.webhooks.get(webhook.id) == webhook


async def test_ensure_puts_back_what_the_call_leaves_out(tmp_path: Path) -> None:
    """What the call says is what the webhook is: a field set by hand is reset."""
    async with make_kit(f"sqlite:///{tmp_path / 'reset.db'}") as kit:
        await setup(kit)
        [webhook] = await kit.webhooks.list()
        await kit.webhooks.update(webhook.id, is_active=False, secret_key="s3cret-by-hand")
        await setup(kit)
        again = await kit.webhooks.get(webhook.id)
        assert again.is_active and again.secret_key is None


async def test_identifiers_are_unique_per_app(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'unique.db'}"
    async with make_kit(url) as kit:
        app = await kit.apps.create("erp")
        other = await kit.apps.create("crm")
        await kit.webhooks.create(
            app, identifier="orders", target_url=ORDERS, events=["ORDER_CREATED"]
        )
        with pytest.raises(DuplicateError) as caught:
            await kit.webhooks.create(
                app, identifier="orders", target_url=ORDERS, events=["ORDER_UPDATED"]
            )
        assert caught.value.field == "identifier"
        # Another app may use the same identifier.
        await kit.webhooks.create(
            other, identifier="orders", target_url=ORDERS, events=["ORDER_CREATED"]
        )
        with pytest.raises(InvalidFieldError, match="identifier"):
            await kit.webhooks.ensure(app, identifier=" ", target_url=ORDERS)
        with pytest.raises(InvalidFieldError, match="identifier"):
            await kit.apps.ensure(identifier="", name="x")
    # The database itself refuses a second (app, identifier) pair.
    with contextlib.closing(sqlite3.connect(tmp_path / "unique.db")) as db:
        row = db.execute("SELECT * FROM webhookkit_webhooks WHERE app_id = ?", (app.id,)).fetchone()
        columns = [c[0] for c in db.execute("SELECT * FROM webhookkit_webhooks").description]
        values = dict(zip(columns, row, strict=True))
        values["id"] = "copy"
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            db.execute(
                f"INSERT INTO webhookkit_webhooks ({', '.join(values)}) "
                f"VALUES ({', '.join('?' for _ in values)})",
                list(values.values()),
            )


async def test_apps_duplicated_by_earlier_create_calls_resolve_to_the_oldest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'dupes.db'}")
    async with WebhookKit(domain="shop.example.com", store=store) as kit:
        first = await kit.apps.create("ERP", identifier="erp.sync")
        await asyncio.sleep(0.001)  # created_at orders them
        await kit.apps.create("ERP", identifier="erp.sync")
        with caplog.at_level(logging.WARNING, logger="webhookkit.setup"):
            kept = await kit.apps.ensure(identifier="erp.sync", name="ERP")
        assert kept.id == first.id
        assert "share the identifier" in caplog.records[0].getMessage()
    await store.aclose()


PROGRAM = """
import asyncio, sys
from webhookkit import WebhookKit

async def main(store: str, url: str) -> None:
    async with WebhookKit(domain="shop.example.com", store=store) as kit:
        app = await kit.apps.ensure(identifier="erp.sync", name="ERP sync",
                                    permissions=["MANAGE_ORDERS"])
        webhook = await kit.webhooks.ensure(app, identifier="orders", target_url=url,
                                            events=["ORDER_CREATED"])
        print("ready", app.id, webhook.id)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def run_program(script: Path, store: str, url: str) -> list[str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        store,
        url,
        cwd=ROOT,
        # The webhookkit under test, whichever checkout this is.
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    text = out.decode(errors="replace")
    assert process.returncode == 0, text
    return text.split("ready", 1)[1].split()


async def test_a_program_started_twice_on_sqlite_keeps_one_app_and_one_webhook(
    tmp_path: Path,
) -> None:
    script = tmp_path / "shop_setup.py"
    script.write_text(PROGRAM)
    store = f"sqlite:///{tmp_path / 'shop.db'}"
    first = await run_program(script, store, ORDERS)
    second = await run_program(script, store, ORDERS)
    assert second == first  # the same app id and webhook id
    assert await raw_counts(store) == (1, 1)
    # A new version of the program points the webhook elsewhere: updated, not duplicated.
    third = await run_program(script, store, "https://erp.example.com/v2/orders")
    assert third == first
    async with make_kit(store) as kit:
        [webhook] = await kit.webhooks.list()
        assert webhook.target_url == "https://erp.example.com/v2/orders"
        assert len(await kit.apps.list()) == 1
    assert await raw_counts(store) == (1, 1)


async def test_a_content_filter_is_compared_like_any_other_field(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    big = {"order.total": {"$gte": 100}}
    async with make_kit(f"sqlite:///{tmp_path / 'filter.db'}") as kit:
        app = await kit.apps.ensure(identifier="erp.sync", name="ERP sync")
        webhook = await kit.webhooks.ensure(
            app, identifier="big-orders", target_url=ORDERS, events=["ORDER_CREATED"], filter=big
        )
        assert webhook.filter is not None and webhook.filter.matches({"order": {"total": 150}})
        with caplog.at_level(logging.INFO, logger="webhookkit.setup"):
            same = await kit.webhooks.ensure(
                app,
                identifier="big-orders",
                target_url=ORDERS,
                events=["ORDER_CREATED"],
                filter=big,
            )
            assert caplog.records == [] and same == webhook
            cleared = await kit.webhooks.ensure(
                app, identifier="big-orders", target_url=ORDERS, events=["ORDER_CREATED"]
            )
        assert cleared.id == webhook.id and cleared.filter is None
        assert "filter" in caplog.records[0].getMessage()
