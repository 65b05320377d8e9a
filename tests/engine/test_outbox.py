"""The transactional outbox with a running scheduler: webhooks go out if and only if the
host's transaction commits (``kit.trigger(..., connection=conn)``, PostgreSQL store)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from conftest import LOOPBACK, Receiver

from webhookkit import DeliveryConfig, DeliveryStatus, HTTPTransport, WebhookKit

ReceiverFactory = Callable[[], Awaitable[Receiver]]


class HostFailed(RuntimeError):
    """The host's business logic failing after it queued the webhooks."""


@pytest.fixture
async def host(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """The host application's own connection, with a table of its own."""
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE orders (id TEXT PRIMARY KEY)")
    yield conn
    await conn.close()


async def count(conn: asyncpg.Connection, table: str) -> int:
    value = await conn.fetchval(f"SELECT count(*) FROM {table}")  # our own table names
    return int(value)


async def test_trigger_in_the_hosts_transaction_sends_only_what_commits(
    pg_dsn: str, host: asyncpg.Connection, receiver_factory: ReceiverFactory
) -> None:
    first, second = await receiver_factory(), await receiver_factory()
    async with WebhookKit(
        store=pg_dsn,
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
        delivery=DeliveryConfig(poll_interval=0.1),
    ) as kit:
        assert kit.scheduler.running
        app = await kit.apps.create("shop", permissions=["MANAGE_ORDERS"])
        for receiver in (first, second):
            await kit.webhooks.create(app, target_url=receiver.url, events=["ORDER_CREATED"])

        lost: list[str] = []

        async def failing_order() -> None:
            async with host.transaction():
                await host.execute("INSERT INTO orders VALUES ('o1')")
                lost.extend(
                    await kit.trigger("ORDER_CREATED", payload={"order": "o1"}, connection=host)
                )
                raise HostFailed("payment declined")

        with pytest.raises(HostFailed):
            await failing_order()
        assert len(lost) == 2
        # The scheduler polls every 0.1 s and LISTENs: a leaked row would be sent by now.
        await kit.wait_idle()
        await asyncio.sleep(1.0)
        await kit.wait_idle()
        assert first.received == [] and second.received == []
        assert [await kit.get_delivery(i) for i in lost] == [None, None]
        assert await count(host, "webhookkit_deliveries") == 0
        assert await count(host, "webhookkit_payloads") == 0
        assert await count(host, "orders") == 0

        async with host.transaction():
            await host.execute("INSERT INTO orders VALUES ('o2')")
            sent = await kit.trigger("ORDER_CREATED", payload={"order": "o2"}, connection=host)
            # Not committed yet: invisible to the running scheduler.
            await kit.wait_idle()
            assert first.received == [] and second.received == []
        done = await kit.wait_for(sent, timeout=30)
        await kit.wait_idle()

    assert len(sent) == 2
    assert [d.status for d in done] == [DeliveryStatus.SUCCESS, DeliveryStatus.SUCCESS]
    assert sorted(d.webhook_id for d in done) == sorted({d.webhook_id for d in done})
    for receiver in (first, second):
        assert len(receiver.received) == 1, "exactly one delivery per webhook"
        assert json.loads(receiver.received[0].body) == {"order": "o2"}
    assert await count(host, "webhookkit_deliveries") == 2
    assert await count(host, "orders") == 1
