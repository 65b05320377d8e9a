"""Idempotent triggers: ``kit.trigger(..., idempotency_key=k)`` makes one set of deliveries per
key within the window, on every store, through the outbox too, whoever races for the key."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from conftest import LOOPBACK, Receiver
from stores.pgcluster import PostgresCluster

from webhookkit import DeliveryConfig, DeliveryStatus, HTTPTransport, WebhookKit
from webhookkit.clock import Clock
from webhookkit.exceptions import InvalidFieldError
from webhookkit.stores import MemoryStore, PostgresStore, SQLiteStore, Store
from webhookkit.stores.base import IDEMPOTENCY_WINDOW, IdempotencyKey
from webhookkit.testing import FakeClock

ReceiverFactory = Callable[[], Awaitable[Receiver]]
EVENT = "ORDER_CREATED"


def make_kit(store: Store | str, clock: Clock | None = None) -> WebhookKit:
    """The one place this module builds a kit."""
    return WebhookKit(
        domain="shop.example.com",
        store=store,
        clock=clock,
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
        delivery=DeliveryConfig(poll_interval=0.1),
        retention=None,
    )


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A store URL of each kind (``memory://`` is private to the kit that opens it)."""
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'kit.db'}"
    else:
        cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
        async with cluster.database() as dsn:
            yield dsn


def store_for(url: str) -> Store:
    if url == "memory://":
        return MemoryStore()
    if url.startswith("sqlite:///"):
        return SQLiteStore(url.removeprefix("sqlite:///"))
    return PostgresStore(url, min_size=1, max_size=4)


async def two_webhooks(kit: WebhookKit, factory: ReceiverFactory) -> list[Receiver]:
    receivers = [await factory(), await factory()]
    app = await kit.apps.create("shop", permissions=["MANAGE_ORDERS"])
    for receiver in receivers:
        await kit.webhooks.create(app, target_url=receiver.url, events=[EVENT])
    return receivers


async def delivered(kit: WebhookKit, ids: list[str]) -> None:
    done = await kit.wait_for(ids, timeout=30)
    assert [d.status for d in done] == [DeliveryStatus.SUCCESS] * len(ids)
    await kit.wait_idle()


def bodies(receiver: Receiver) -> list[object]:
    return [json.loads(r.body) for r in receiver.received]


async def test_a_repeated_key_returns_the_same_deliveries_and_sends_once(
    target: str, receiver_factory: ReceiverFactory
) -> None:
    async with make_kit(target) as kit:
        receivers = await two_webhooks(kit, receiver_factory)
        first = await kit.trigger(EVENT, payload={"n": 1}, idempotency_key="order-1")
        assert len(first) == 2
        await delivered(kit, first)
        again = [
            await kit.trigger(EVENT, payload={"n": i}, idempotency_key="order-1") for i in (2, 3)
        ]
        assert again == [first, first]
        other = await kit.trigger(EVENT, payload={"n": 4}, idempotency_key="order-2")
        assert len(other) == 2 and not set(other) & set(first)
        await delivered(kit, other)
        assert len(await kit.list_deliveries()) == 4
    for receiver in receivers:
        assert bodies(receiver) == [{"n": 1}, {"n": 4}]


async def test_concurrent_triggers_with_one_key_make_one_set_on_one_kit(
    target: str, receiver_factory: ReceiverFactory
) -> None:
    async with make_kit(target) as kit:
        receivers = await two_webhooks(kit, receiver_factory)
        results = await asyncio.gather(
            *(kit.trigger(EVENT, payload={"n": i}, idempotency_key="k") for i in range(20))
        )
        assert len(results[0]) == 2
        assert all(r == results[0] for r in results)
        await delivered(kit, results[0])
        assert len(await kit.list_deliveries()) == 2
    for receiver in receivers:
        assert len(receiver.received) == 1, "one delivery per webhook"


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_concurrent_triggers_through_separate_kits_on_one_database(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, receiver_factory: ReceiverFactory
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if kind == "postgres":
            cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
            url = await stack.enter_async_context(cluster.database())
        else:
            url = f"sqlite:///{tmp_path / 'shared.db'}"
        kits = [await stack.enter_async_context(make_kit(store_for(url))) for _ in range(4)]
        receivers = await two_webhooks(kits[0], receiver_factory)
        for kit in kits[1:]:
            await kit.store.poll_config()  # see the webhooks made by the first kit at once
        results = await asyncio.gather(
            *(
                kits[i % 4].trigger(EVENT, payload={"n": i}, idempotency_key="shared")
                for i in range(20)
            )
        )
        assert len(results[0]) == 2
        assert all(r == results[0] for r in results)
        await delivered(kits[0], results[0])
        for kit in kits:
            await kit.wait_idle()
        assert len(await kits[0].list_deliveries()) == 2
    for receiver in receivers:
        assert len(receiver.received) == 1, "one delivery per webhook"


async def test_a_key_expires_after_the_window(
    target: str, receiver_factory: ReceiverFactory
) -> None:
    clock = FakeClock()
    async with make_kit(target, clock) as kit:
        receivers = await two_webhooks(kit, receiver_factory)
        first = await kit.trigger(EVENT, payload={"n": 1}, idempotency_key="order-1")
        await delivered(kit, first)
        await clock.advance((IDEMPOTENCY_WINDOW - timedelta(seconds=1)).total_seconds())
        assert await kit.trigger(EVENT, payload={"n": 2}, idempotency_key="order-1") == first
        await clock.advance(1)
        second = await kit.trigger(EVENT, payload={"n": 3}, idempotency_key="order-1")
        assert len(second) == 2 and not set(second) & set(first)
        await delivered(kit, second)
        assert await kit.trigger(EVENT, payload={"n": 4}, idempotency_key="order-1") == second
    for receiver in receivers:
        assert bodies(receiver) == [{"n": 1}, {"n": 3}]


async def test_purge_deletes_expired_keys(target: str) -> None:
    store = store_for(target)
    clock = FakeClock()
    now = clock.now()
    try:
        for i in range(3):
            key = IdempotencyKey(f"k{i}", (f"d{i}",), now, now + timedelta(hours=i + 1))
            assert await store.add_deliveries([], [], idempotency_key=key) is None
        await store.purge(now + timedelta(hours=2))
        # Looked up at the start: only the key that had not expired at the purge is left.
        assert await store.find_idempotency_key("k0", now) is None
        assert await store.find_idempotency_key("k1", now) is None
        assert await store.find_idempotency_key("k2", now) == ["d2"]
    finally:
        await store.aclose()


async def test_a_key_remembers_that_there_was_nothing_to_send(
    target: str, receiver_factory: ReceiverFactory
) -> None:
    async with make_kit(target) as kit:
        assert await kit.trigger(EVENT, payload={}, idempotency_key="early") == []
        receivers = await two_webhooks(kit, receiver_factory)
        assert await kit.trigger(EVENT, payload={}, idempotency_key="early") == []
        fresh = await kit.trigger(EVENT, payload={}, idempotency_key="later")
        await delivered(kit, fresh)
    for receiver in receivers:
        assert len(receiver.received) == 1


@pytest.mark.parametrize(
    "key",
    ["", "x" * 256, 42, b"bytes", "nul\x00", "lone\ud800surrogate"],
    ids=["empty", "too-long", "int", "bytes", "nul", "surrogate"],
)
async def test_a_bad_key_is_a_typed_error_and_writes_nothing(
    key: object, receiver_factory: ReceiverFactory
) -> None:
    async with make_kit("memory://") as kit:
        receivers = await two_webhooks(kit, receiver_factory)
        with pytest.raises(InvalidFieldError) as raised:
            await kit.trigger(EVENT, payload={}, idempotency_key=key)  # type: ignore[arg-type]
        assert raised.value.field == "idempotency_key"
        assert "idempotency_key" in str(raised.value)
        ok = await kit.trigger(EVENT, payload={}, idempotency_key="x" * 255)
        await delivered(kit, ok)
        assert len(await kit.list_deliveries()) == 2
    for receiver in receivers:
        assert len(receiver.received) == 1


# -- through the host's transaction (the outbox), PostgreSQL with asyncpg --------------------


@pytest.fixture
async def hosts(pg_dsn: str) -> AsyncIterator[list[asyncpg.Connection]]:
    """Two connections of the host application."""
    conns = [await asyncpg.connect(pg_dsn), await asyncpg.connect(pg_dsn)]
    yield conns
    for conn in conns:
        await conn.close()


async def test_outbox_a_rolled_back_key_is_free_again(
    pg_dsn: str, hosts: list[asyncpg.Connection], receiver_factory: ReceiverFactory
) -> None:
    host = hosts[0]
    async with make_kit(pg_dsn) as kit:
        receivers = await two_webhooks(kit, receiver_factory)
        with contextlib.suppress(RuntimeError):
            async with host.transaction():
                lost = await kit.trigger(
                    EVENT, payload={"n": 1}, connection=host, idempotency_key="o"
                )
                # Within the same transaction the key already answers.
                again = await kit.trigger(
                    EVENT, payload={"n": 2}, connection=host, idempotency_key="o"
                )
                assert again == lost
                raise RuntimeError("the host's business logic failed")
        assert await host.fetchval("SELECT count(*) FROM webhookkit_idempotency_keys") == 0
        async with host.transaction():
            kept = await kit.trigger(EVENT, payload={"n": 3}, connection=host, idempotency_key="o")
        assert len(kept) == 2 and not set(kept) & set(lost)
        await delivered(kit, kept)
        # Committed: the key answers outside the host's transaction too.
        assert await kit.trigger(EVENT, payload={"n": 4}, idempotency_key="o") == kept
        assert (
            await kit.trigger(EVENT, payload={"n": 5}, connection=host, idempotency_key="o") == kept
        )
        await kit.wait_idle()
    for receiver in receivers:
        assert bodies(receiver) == [{"n": 3}]


@pytest.mark.parametrize("winner", ["commits", "rolls back"])
async def test_outbox_a_racing_transaction_waits_for_the_holder_of_the_key(
    winner: str,
    pg_dsn: str,
    hosts: list[asyncpg.Connection],
    receiver_factory: ReceiverFactory,
) -> None:
    first, second = hosts
    async with make_kit(pg_dsn) as kit:
        receivers = await two_webhooks(kit, receiver_factory)
        holder = first.transaction()
        await holder.start()
        held = await kit.trigger(EVENT, payload={"n": 1}, connection=first, idempotency_key="r")
        waiter = second.transaction()
        await waiter.start()
        racing = asyncio.create_task(
            kit.trigger(EVENT, payload={"n": 2}, connection=second, idempotency_key="r")
        )
        await asyncio.sleep(0.5)
        assert not racing.done(), "the unique key makes the second transaction wait"
        if winner == "commits":
            await holder.commit()
            assert await racing == held
            await waiter.commit()
            expected = [{"n": 1}]
            sent = held
        else:
            await holder.rollback()
            sent = await racing
            assert len(sent) == 2 and not set(sent) & set(held)
            await waiter.commit()
            expected = [{"n": 2}]
        await delivered(kit, sent)
        assert len(await kit.list_deliveries()) == 2
    for receiver in receivers:
        assert bodies(receiver) == expected
