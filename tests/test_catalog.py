"""The configuration cache behind ``trigger``: an event index instead of a scan, no
configuration reads on the hot path, changes by other processes seen in bounded time, and
skipped webhooks made visible."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from webhookkit import ANY_EVENTS, SQLiteStore, WebhookKit
from webhookkit.dispatcher import CONFIG_REFRESH
from webhookkit.testing import MemoryTransport

ROOT = Path(__file__).resolve().parents[1]


async def test_trigger_reads_no_configuration_rows(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hot.db")
    kit = WebhookKit(store=store, transports=[MemoryTransport()], retention=None)
    await kit.start()
    try:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS", "MANAGE_PRODUCTS"])
        for n in range(300):
            await kit.webhooks.create(
                app, target_url=f"memory://other/{n}", events=["PRODUCT_UPDATED"], secret_key="k"
            )
        await kit.webhooks.create(
            app, target_url="memory://erp", events=["ORDER_CREATED"], secret_key="k"
        )
        await kit.webhooks.create(app, target_url="memory://all", events=[ANY_EVENTS])
        # The first trigger after a change reloads the cache once; so does the first after
        # the version poll noticed the change. From then on nothing is read.
        await kit.trigger("ORDER_CREATED", payload={"n": -1})
        await asyncio.sleep(CONFIG_REFRESH * 1.5)
        await kit.trigger("ORDER_CREATED", payload={"n": -2})
        statements: list[str] = []

        def trace(conn: sqlite3.Connection) -> None:
            conn.set_trace_callback(statements.append)

        await store._run(trace)  # the store's own connection, in its own thread
        ids: list[str] = []
        for n in range(50):
            ids += await kit.trigger("ORDER_CREATED", payload={"n": n})
        await store._run(lambda conn: conn.set_trace_callback(None))
    finally:
        await kit.aclose()
    assert len(ids) == 100  # the ORDER_CREATED webhook and the ANY_EVENTS one, 50 times
    config_reads = [s for s in statements if "webhookkit_webhooks" in s or "webhookkit_apps" in s]
    assert config_reads == []
    # The trace was on while the triggers wrote (each one statement: stores/_sqlite_batch.py).
    assert any("INSERT INTO webhookkit_add" in s for s in statements)


async def test_a_webhook_created_by_another_process_is_seen_within_the_refresh(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.db"
    kit = WebhookKit(store=SQLiteStore(path), transports=[MemoryTransport()], retention=None)
    async with kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        assert await kit.trigger("ORDER_CREATED", payload={}) == []
        script = textwrap.dedent(
            f"""
            import asyncio
            from webhookkit import SQLiteStore, WebhookKit
            from webhookkit.testing import MemoryTransport

            async def main():
                kit = WebhookKit(store=SQLiteStore({str(path)!r}),
                                 transports=[MemoryTransport()], retention=None)
                await kit.store.open()
                await kit.webhooks.create({app.id!r}, target_url="memory://erp",
                                          events=["ORDER_CREATED"], secret_key="k")
                await kit.aclose()

            asyncio.run(main())
            """
        )
        done = subprocess.run(  # noqa: ASYNC221 - a short child process, on purpose
            [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        found: list[str] = []
        for _ in range(int(CONFIG_REFRESH * 40)):
            found = await kit.trigger("ORDER_CREATED", payload={})
            if found:
                break
            await asyncio.sleep(0.05)
        assert len(found) == 1


async def test_skipped_webhooks_are_logged_once_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="webhookkit")
    async with WebhookKit(transports=[MemoryTransport()]) as kit:
        app = await kit.apps.create("no perms")
        hook = await kit.webhooks.create(
            app, target_url="memory://x", events=["ORDER_CREATED"], secret_key="k"
        )
        other = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        off = await kit.webhooks.create(
            other,
            target_url="memory://y",
            events=["ORDER_CREATED"],
            secret_key="k",
            is_active=False,
        )
        for _ in range(3):
            assert await kit.trigger("ORDER_CREATED", payload={}) == []
    reason = "app lacks permission MANAGE_ORDERS"
    assert kit.stats.skipped == {reason: 3, "webhook is inactive": 3}
    lines = [r.getMessage() for r in caplog.records if "gets no ORDER_CREATED" in r.getMessage()]
    assert lines == [
        f"webhook {hook.id} gets no ORDER_CREATED: {reason} (logged once)",
        f"webhook {off.id} gets no ORDER_CREATED: webhook is inactive (logged once)",
    ]
