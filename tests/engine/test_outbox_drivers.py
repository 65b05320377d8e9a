"""The outbox through every driver hosts use, with real processes.

For each driver a host process (this module run as ``python -m engine.test_outbox_drivers``)
inserts an order and triggers ``ORDER_CREATED`` through its own connection twice: once in a
transaction it rolls back, once in one it commits. It prints the delivery ids right after the
commit and is killed with SIGKILL; then a real ``python -m webhookkit worker`` starts on the
same store. Every webhook must get the committed event exactly once, and the rolled-back one
must have left no row at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.procs import ROOT, CountingReceiver, Workers, wait_until
from webhookkit import Delivery, DeliveryQuery, DeliveryStatus, Payload, WebhookKit
from webhookkit.exceptions import ConfigurationError, StoreError
from webhookkit.stores import PostgresStore, SQLiteStore
from webhookkit.stores._outbox import placeholders, write_outbox
from webhookkit.stores._sql import POSTGRES, SQLITE

EVENT = "ORDER_CREATED"
ROLLED_BACK = {"n": 0}
COMMITTED = {"n": 1}
WEBHOOKS = 2


def make_kit(store: str) -> WebhookKit:
    """The one place this module builds a kit (the constructor is being regrouped)."""
    return WebhookKit(store=store, domain="shop.example.com", retention=None)


class Rollback(Exception):
    """The host's business logic failing after it queued the webhook."""


# -- the host process: one function per driver ---------------------------------------------
# Each returns (rolled-back ids, committed ids); ``target`` is a libpq DSN or an SQLite path.

Host = Callable[[WebhookKit, str], Awaitable[tuple[list[str], list[str]]]]
ORDER = "INSERT INTO orders (id) VALUES ('{}')"


async def host_asyncpg(kit: WebhookKit, dsn: str) -> tuple[list[str], list[str]]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    lost: list[str] = []
    with contextlib.suppress(Rollback):
        async with conn.transaction():
            await conn.execute(ORDER.format("rb"))
            lost = await kit.trigger(EVENT, payload=ROLLED_BACK, connection=conn)
            raise Rollback
    async with conn.transaction():
        await conn.execute(ORDER.format("ok"))
        sent = await kit.trigger(EVENT, payload=COMMITTED, connection=conn)
    return lost, sent


async def host_psycopg(kit: WebhookKit, dsn: str) -> tuple[list[str], list[str]]:
    import psycopg

    # psycopg's default: not autocommit, the host commits or rolls back itself.
    conn = psycopg.connect(dsn)
    conn.execute(ORDER.format("rb"))
    lost = await kit.trigger(EVENT, payload=ROLLED_BACK, connection=conn)
    conn.rollback()
    conn.execute(ORDER.format("ok"))
    sent = await kit.trigger(EVENT, payload=COMMITTED, connection=conn)
    conn.commit()
    return lost, sent


async def host_psycopg_async(kit: WebhookKit, dsn: str) -> tuple[list[str], list[str]]:
    import psycopg

    # Autocommit with transaction blocks, the other way psycopg hosts work.
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    lost: list[str] = []
    with contextlib.suppress(Rollback):
        async with conn.transaction():
            await conn.execute(ORDER.format("rb"))
            lost = await kit.trigger(EVENT, payload=ROLLED_BACK, connection=conn)
            raise Rollback
    async with conn.transaction():
        await conn.execute(ORDER.format("ok"))
        sent = await kit.trigger(EVENT, payload=COMMITTED, connection=conn)
    return lost, sent


def _pg_engine(dsn: str) -> Any:
    import psycopg
    from sqlalchemy import create_engine

    return create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))


def _engine(target: str) -> Any:
    from sqlalchemy import create_engine

    return _pg_engine(target) if "://" in target else create_engine(f"sqlite:///{target}")


async def host_sqlalchemy(kit: WebhookKit, target: str) -> tuple[list[str], list[str]]:
    from sqlalchemy import text

    with _engine(target).connect() as conn:
        conn.execute(text(ORDER.format("rb")))
        lost = await kit.trigger(EVENT, payload=ROLLED_BACK, connection=conn)
        conn.rollback()
        conn.execute(text(ORDER.format("ok")))
        sent = await kit.trigger(EVENT, payload=COMMITTED, connection=conn)
        conn.commit()
    return lost, sent


async def host_sqlalchemy_session(kit: WebhookKit, dsn: str) -> tuple[list[str], list[str]]:
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    engine = _pg_engine(dsn)
    with Session(engine) as session:
        session.execute(text(ORDER.format("rb")))
        lost = await kit.trigger(EVENT, payload=ROLLED_BACK, connection=session)
        session.rollback()
    with Session(engine) as session, session.begin():
        session.execute(text(ORDER.format("ok")))
        sent = await kit.trigger(EVENT, payload=COMMITTED, connection=session)
    return lost, sent


def _async_engine(dsn: str) -> Any:
    import asyncpg
    from sqlalchemy.ext.asyncio import create_async_engine

    return create_async_engine("postgresql+asyncpg://", async_creator=lambda: asyncpg.connect(dsn))


async def host_sqlalchemy_async(kit: WebhookKit, dsn: str) -> tuple[list[str], list[str]]:
    from sqlalchemy import text

    engine = _async_engine(dsn)
    async with engine.connect() as conn:
        await conn.execute(text(ORDER.format("rb")))
        lost = await kit.trigger(EVENT, payload=ROLLED_BACK, connection=conn)
        await conn.rollback()
    async with engine.begin() as conn:
        await conn.execute(text(ORDER.format("ok")))
        sent = await kit.trigger(EVENT, payload=COMMITTED, connection=conn)
    return lost, sent


async def host_sqlalchemy_async_session(kit: WebhookKit, dsn: str) -> tuple[list[str], list[str]]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import AsyncSession

    engine = _async_engine(dsn)
    async with AsyncSession(engine) as session:
        await session.execute(text(ORDER.format("rb")))
        lost = await kit.trigger(EVENT, payload=ROLLED_BACK, connection=session)
        await session.rollback()
    async with AsyncSession(engine) as session, session.begin():
        await session.execute(text(ORDER.format("ok")))
        sent = await kit.trigger(EVENT, payload=COMMITTED, connection=session)
    return lost, sent


async def host_sqlite3(kit: WebhookKit, path: str) -> tuple[list[str], list[str]]:
    # The standard library's default (legacy) transaction control, as most hosts use it.
    conn = sqlite3.connect(path)
    conn.execute(ORDER.format("rb"))
    lost = await kit.trigger(EVENT, payload=ROLLED_BACK, connection=conn)
    conn.rollback()
    conn.execute(ORDER.format("ok"))
    sent = await kit.trigger(EVENT, payload=COMMITTED, connection=conn)
    conn.commit()
    return lost, sent


def _django_database(target: str) -> dict[str, str]:
    if "://" not in target:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": target}
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username or "",
        "HOST": query["host"],
        "PORT": query["port"],
    }


def host_django(store: str, target: str) -> tuple[list[str], list[str]]:
    """Sync, as Django code is: the BlockingKit writes through ``django.db.connection``."""
    import django
    from django.conf import settings

    settings.configure(DATABASES={"default": _django_database(target)}, USE_TZ=True)
    django.setup()
    from django.db import connection, transaction

    from webhookkit.blocking import BlockingKit

    kit = BlockingKit(make_kit(store)).open()
    lost: list[str] = []
    with contextlib.suppress(Rollback), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(ORDER.format("rb"))
        lost = kit.trigger_sync(EVENT, payload=ROLLED_BACK, connection=connection)
        raise Rollback
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(ORDER.format("ok"))
        sent = kit.trigger_sync(EVENT, payload=COMMITTED, connection=connection)
    return lost, sent


HOSTS: dict[str, Host] = {
    "asyncpg": host_asyncpg,
    "psycopg": host_psycopg,
    "psycopg-async": host_psycopg_async,
    "sqlalchemy": host_sqlalchemy,
    "sqlalchemy-session": host_sqlalchemy_session,
    "sqlalchemy-async": host_sqlalchemy_async,
    "sqlalchemy-async-session": host_sqlalchemy_async_session,
    "sqlite3": host_sqlite3,
    "sqlalchemy-sqlite": host_sqlalchemy,
}


async def host_main(driver: str, store: str, target: str) -> None:
    kit = make_kit(store)
    await kit.store.open()  # queue only: this process never sends
    lost, sent = await HOSTS[driver](kit, target)
    print(json.dumps({"rolled_back": lost, "committed": sent}), flush=True)
    # Killed here with SIGKILL: nothing of this process runs after the commit.
    await asyncio.sleep(3600)


def main(driver: str, store: str, target: str) -> None:
    if driver.startswith("django"):
        lost, sent = host_django(store, target)  # Django's ORM is sync: no event loop here
        print(json.dumps({"rolled_back": lost, "committed": sent}), flush=True)
        time.sleep(3600)  # killed here with SIGKILL
    else:
        asyncio.run(host_main(driver, store, target))


# -- the test process ----------------------------------------------------------------------


async def setup_store(store: str, url: str) -> WebhookKit:
    kit = make_kit(store)
    await kit.store.open()
    app = await kit.apps.create("shop", permissions=["MANAGE_ORDERS"])
    for i in range(WEBHOOKS):
        await kit.webhooks.create(app, target_url=f"{url}/hook-{i}", events=[EVENT])
    return kit


async def run_host(driver: str, store: str, target: str, log: Path) -> dict[str, list[str]]:
    """Run the host process until it has committed, then ``kill -9`` it."""
    with log.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "engine.test_outbox_drivers",
            driver,
            store,
            target,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT / "tests"), "PYTHONUNBUFFERED": "1"},
        )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        code = await process.wait()
    if not line:
        problem = await asyncio.to_thread(log.read_text)
        raise AssertionError(f"host exited with {code} before committing:\n{problem[-3000:]}")
    assert code == -signal.SIGKILL
    ids: dict[str, list[str]] = json.loads(line)
    return ids


async def check_delivered_once(
    kit: WebhookKit,
    store: str,
    ids: dict[str, list[str]],
    receiver: CountingReceiver,
    workers: Workers,
) -> None:
    assert len(ids["rolled_back"]) == WEBHOOKS and len(ids["committed"]) == WEBHOOKS
    worker = await workers.start(store, concurrency=4, lease=10.0, poll=0.2)

    async def settled() -> bool:
        pending = await kit.store.list_deliveries(DeliveryQuery(status=DeliveryStatus.PENDING))
        return receiver.counts[COMMITTED["n"]] >= WEBHOOKS and not pending

    await wait_until(settled, timeout=60, what="the worker to deliver the committed event")
    assert await workers.terminate(worker) == 0, worker.log_tail()
    stored = await kit.store.list_deliveries(DeliveryQuery(limit=100))
    assert sorted(d.id for d in stored) == sorted(ids["committed"]), "a rollback left rows"
    assert all(d.status is DeliveryStatus.SUCCESS for d in stored)
    assert receiver.counts == Counter({COMMITTED["n"]: WEBHOOKS}), "one delivery per webhook"
    assert receiver.requests == WEBHOOKS
    for delivery_id in ids["rolled_back"]:
        assert await kit.get_delivery(delivery_id) is None


POSTGRES_DRIVERS = [
    "asyncpg",
    "psycopg",
    "psycopg-async",
    "sqlalchemy",
    "sqlalchemy-session",
    "sqlalchemy-async",
    "sqlalchemy-async-session",
    "django-postgresql",
]


@pytest.mark.parametrize("driver", POSTGRES_DRIVERS)
async def test_postgres_outbox_survives_kill_after_commit(
    driver: str,
    pg_dsn: str,
    tmp_path: Path,
    counting_receiver: CountingReceiver,
    workers: Workers,
) -> None:
    import asyncpg

    kit = await setup_store(pg_dsn, counting_receiver.url)
    try:
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute("CREATE TABLE orders (id TEXT PRIMARY KEY)")
            ids = await run_host(driver, pg_dsn, pg_dsn, tmp_path / "host.log")
            await check_delivered_once(kit, pg_dsn, ids, counting_receiver, workers)
            assert [r["id"] for r in await conn.fetch("SELECT id FROM orders")] == ["ok"]
        finally:
            await conn.close()
    finally:
        await kit.aclose()


@pytest.mark.parametrize("driver", ["sqlite3", "sqlalchemy-sqlite", "django-sqlite"])
async def test_sqlite_outbox_survives_kill_after_commit(
    driver: str, tmp_path: Path, counting_receiver: CountingReceiver, workers: Workers
) -> None:
    path = tmp_path / "shop.db"
    store = f"sqlite:///{path}"
    kit = await setup_store(store, counting_receiver.url)
    try:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("CREATE TABLE orders (id TEXT PRIMARY KEY)")
            conn.commit()
            ids = await run_host(driver, store, str(path), tmp_path / "host.log")
            await check_delivered_once(kit, store, ids, counting_receiver, workers)
            assert conn.execute("SELECT id FROM orders").fetchall() == [("ok",)]
    finally:
        await kit.aclose()


async def test_connection_the_store_cannot_use_is_refused(tmp_path: Path, pg_dsn: str) -> None:
    import psycopg

    path = tmp_path / "shop.db"
    async with make_kit(f"sqlite:///{path}") as kit:
        app = await kit.apps.create("shop", permissions=["MANAGE_ORDERS"])
        await kit.webhooks.create(app, target_url="https://example.com/h", events=[EVENT])
        with pytest.raises(ConfigurationError, match=r"sqlite3\.Connection") as refused:
            await kit.trigger(EVENT, payload=COMMITTED, connection=object())
        assert refused.value.field == "connection"
        # A PostgreSQL connection cannot hold an SQLite store's rows.
        with (
            psycopg.connect(pg_dsn) as conn,
            pytest.raises(ConfigurationError, match="psycopg connection to postgresql"),
        ):
            await kit.trigger(EVENT, payload=COMMITTED, connection=conn)
        assert await kit.list_deliveries() == []
    async with make_kit(pg_dsn) as kit:
        app = await kit.apps.create("shop", permissions=["MANAGE_ORDERS"])
        await kit.webhooks.create(app, target_url="https://example.com/h", events=[EVENT])
        with (
            contextlib.closing(sqlite3.connect(path)) as lite,
            pytest.raises(ConfigurationError, match="asyncpg Connection") as refused,
        ):
            await kit.trigger(EVENT, payload=COMMITTED, connection=lite)
        assert refused.value.field == "connection"


def test_channel_matches_the_postgres_store() -> None:
    from webhookkit.stores import _outbox, postgres

    assert _outbox.CHANNEL == postgres.CHANNEL


if __name__ == "__main__":
    main(*sys.argv[1:4])


# -- write_outbox itself, in this process ---------------------------------------------------


def rows(payload_id: str = "p1") -> tuple[list[Payload], list[Delivery]]:
    now = datetime.now(UTC)
    payload = Payload(id=payload_id, event="order_created", body=b"{}", created_at=now)
    delivery = Delivery(
        id=f"d-{payload_id}",
        payload_id=payload_id,
        webhook_id="w1",
        app_id="a1",
        event="order_created",
        created_at=now,
        next_try_at=now,
    )
    return [payload], [delivery]


def test_placeholders_in_each_drivers_style() -> None:
    text = "INSERT INTO t (a, b) VALUES ($2, $1)"
    assert placeholders(text, [(1, 2)], "dollar") == (text, [(1, 2)])
    assert placeholders(text, [(1, 2)], "format") == (
        "INSERT INTO t (a, b) VALUES (%s, %s)",
        [(2, 1)],
    )
    assert placeholders(text, [(1, 2)], "qmark") == ("INSERT INTO t (a, b) VALUES (?, ?)", [(2, 1)])
    assert placeholders(text, [(1, 2)], "named") == (
        "INSERT INTO t (a, b) VALUES (:p2, :p1)",
        [{"p1": 1, "p2": 2}],
    )


async def test_sqlite3_in_autocommit_mode_commits_the_rows_at_once(tmp_path: Path) -> None:
    path = tmp_path / "wk.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        host = sqlite3.connect(path, isolation_level=None)
        try:
            payloads, deliveries = rows("p1")
            write_outbox(host, SQLITE, payloads, deliveries)
            assert not host.in_transaction
            assert await store.get_delivery("d-p1") is not None
            # Inside the host's explicit transaction the rows go with its ROLLBACK.
            host.execute("BEGIN")
            payloads, deliveries = rows("p2")
            write_outbox(host, SQLITE, payloads, deliveries)
            host.execute("ROLLBACK")
            assert await store.get_delivery("d-p2") is None
        finally:
            host.close()
    finally:
        await store.aclose()


async def test_a_failed_write_leaves_the_hosts_transaction_usable(pg_dsn: str) -> None:
    import psycopg

    store = PostgresStore(pg_dsn, listen=False)
    await store.open()
    try:
        with psycopg.connect(pg_dsn) as host:
            host.execute("CREATE TABLE orders (id TEXT PRIMARY KEY)")
            host.execute(ORDER.format("kept"))
            _, orphan = rows("missing")  # a delivery whose payload is nowhere
            with pytest.raises(StoreError, match="ForeignKeyViolation"):
                write_outbox(host, POSTGRES, [], orphan)
            # The savepoint took only the outbox's rows back: the order is still there.
            payloads, deliveries = rows("p3")
            write_outbox(host, POSTGRES, payloads, deliveries)
            host.commit()
        assert await store.get_delivery("d-p3") is not None
        assert await store.get_delivery("d-missing") is None
    finally:
        await store.aclose()
    conn = await asyncpg_connect(pg_dsn)
    try:
        assert [r["id"] for r in await conn.fetch("SELECT id FROM orders")] == ["kept"]
    finally:
        await conn.close()


async def test_write_outbox_refuses_an_async_connection(pg_dsn: str) -> None:
    conn = await asyncpg_connect(pg_dsn)
    try:
        payloads, deliveries = rows()
        with pytest.raises(ConfigurationError, match="is async") as refused:
            write_outbox(conn, POSTGRES, payloads, deliveries)
        assert refused.value.field == "connection"
    finally:
        await conn.close()


async def asyncpg_connect(dsn: str) -> Any:
    import asyncpg

    return await asyncpg.connect(dsn)


async def test_an_idempotency_key_through_the_hosts_connection(tmp_path: Path) -> None:
    from datetime import timedelta

    from webhookkit.stores.base import IdempotencyKey

    path = tmp_path / "wk.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        host = sqlite3.connect(path)
        try:
            now = datetime.now(UTC)
            payloads, deliveries = rows("p1")
            key = IdempotencyKey("order-1", ("d-p1",), now, now + timedelta(hours=1))
            assert write_outbox(host, SQLITE, payloads, deliveries, idempotency_key=key) is None
            # The same key again, in the same transaction: nothing written, the first ids.
            again, second = rows("p2")
            retry = IdempotencyKey("order-1", ("d-p2",), now, now + timedelta(hours=1))
            held = write_outbox(host, SQLITE, again, second, idempotency_key=retry)
            assert held == ["d-p1"]
            host.rollback()  # frees the key with the rows
            assert write_outbox(host, SQLITE, again, second, idempotency_key=retry) is None
            host.commit()
        finally:
            host.close()
        assert await store.get_delivery("d-p1") is None
        assert await store.get_delivery("d-p2") is not None
        assert await store.find_idempotency_key("order-1", datetime.now(UTC)) == ["d-p2"]
    finally:
        await store.aclose()
