"""Faults with real servers: a PostgreSQL restart mid-backlog, a store write failing during
``trigger``, back-pressure that other workers and rolled-back transactions must not leak."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from stores.pgcluster import PostgresCluster

from engine.procs import CountingReceiver, Workers, wait_until
from webhookkit import (
    DeliveryConfig,
    DeliveryStatus,
    HTTPTransport,
    MemoryStore,
    OutboundMessage,
    PostgresStore,
    SQLiteStore,
    StoreError,
    TransportResult,
    WebhookKit,
)
from webhookkit.delivery.isolation import IsolationConfig
from webhookkit.stores.base import Store

LOOPBACK = ("127.0.0.1/32",)


@pytest.fixture
def own_cluster() -> Iterator[PostgresCluster]:
    """A server of this test's own: the test restarts it."""
    cluster = PostgresCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


async def subscribe(kit: WebhookKit, url: str) -> None:
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    await kit.webhooks.create(app, target_url=url, events=["ORDER_CREATED"], secret_key="s3cret")


async def test_a_worker_rides_out_a_postgresql_restart(
    own_cluster: PostgresCluster,
    counting_receiver: CountingReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="webhookkit")
    counting_receiver.delay = 0.02
    store = PostgresStore(own_cluster.dsn(), max_size=4)
    kit = WebhookKit(
        store=store,
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
        delivery=DeliveryConfig(concurrency=8, poll_interval=0.2),
    )
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(store.aclose)  # even when the test fails half way
        await stack.enter_async_context(kit)
        await subscribe(kit, counting_receiver.url)
        ids = [i for n in range(400) for i in await kit.trigger("ORDER_CREATED", payload={"n": n})]
        await wait_until(lambda: counting_receiver.requests >= 40, timeout=30, what="a start")
        assert counting_receiver.requests < 400, "the backlog must still be running"
        await asyncio.to_thread(own_cluster.restart)
        # After the restart new triggers go out too (the first may meet a dead pooled
        # connection and say so with a typed error).
        for n in range(400, 420):
            for _ in range(50):
                try:
                    ids += await kit.trigger("ORDER_CREATED", payload={"n": n})
                    break
                except StoreError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("trigger never recovered after the restart")
        done = await kit.wait_for(ids, timeout=90)
        assert all(d.status is DeliveryStatus.SUCCESS for d in done)
        assert await store.count_pending() == 0
    assert counting_receiver.distinct == 420
    outage = [r for r in caplog.records if "store unavailable" in r.getMessage()]
    recovered = [r for r in caplog.records if "reachable again" in r.getMessage()]
    assert outage and recovered, [r.getMessage() for r in caplog.records]
    assert kit.stats.store_errors >= 1


# -- a hand-back the store refuses --------------------------------------------------------------


class RefusingReleases(MemoryStore):
    """A store that refuses its first ``refuse`` hand-backs, as a database going away does."""

    def __init__(self, refuse: int) -> None:
        super().__init__()
        self.refuse = refuse
        self.refused = 0

    async def release(self, delivery_ids: Sequence[str], *, until: datetime | None = None) -> None:
        if self.refused < self.refuse:
            self.refused += 1
            raise StoreError("release: connection was closed in the middle of operation")
        await super().release(delivery_ids, until=until)


async def test_hand_backs_the_store_refuses_are_written_once_it_answers(
    counting_receiver: CountingReceiver,
) -> None:
    # One send slot, and an endpoint that may hold two: a claim of four (twice per_endpoint)
    # hands one back. With an hour's lease, a hand-back dropped after a failed write would
    # keep its delivery unsent for the whole test.
    counting_receiver.delay = 0.01
    store = RefusingReleases(refuse=3)
    kit = WebhookKit(
        store=store,
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
        delivery=DeliveryConfig(
            concurrency=1,
            lease=timedelta(hours=1),
            isolation=IsolationConfig(per_endpoint=2),
        ),
    )
    async with kit:
        await subscribe(kit, counting_receiver.url)
        ids = [i for n in range(40) for i in await kit.trigger("ORDER_CREATED", payload={"n": n})]
        done = await kit.wait_for(ids, timeout=60)
    assert all(d.status is DeliveryStatus.SUCCESS for d in done)
    assert store.refused == 3
    assert kit.stats.released > 0 and kit.stats.store_errors >= 3
    assert counting_receiver.distinct == 40


# -- a store write failing during trigger -----------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def failing_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Store, str]]:
    """A store whose database refuses a delivery row for the webhook named in the returned
    marker (a trigger in the database itself), so a batch fails half way."""
    if request.param == "sqlite":
        sqlite = SQLiteStore(tmp_path / "faults.db")
        yield sqlite, "sqlite"
        await sqlite.aclose()
    else:
        cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
        async with cluster.database() as dsn:
            pg = PostgresStore(dsn, max_size=2)
            yield pg, dsn
            await pg.aclose()


async def _refuse_deliveries_for(store: Store, where: str, webhook_id: str) -> None:
    if isinstance(store, SQLiteStore):

        def install(conn: object) -> None:
            conn.execute(  # type: ignore[attr-defined]
                "CREATE TRIGGER refuse BEFORE INSERT ON webhookkit_deliveries "
                f"WHEN NEW.webhook_id = '{webhook_id}' BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )

        await store._run(install)  # the store's own connection and thread
        return
    conn = await asyncpg.connect(where)
    try:
        await conn.execute(
            f"""CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.webhook_id = '{webhook_id}' THEN
                RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$;
            CREATE TRIGGER refuse BEFORE INSERT ON webhookkit_deliveries
                FOR EACH ROW EXECUTE FUNCTION refuse();"""
        )
    finally:
        await conn.close()


async def test_a_failing_store_write_raises_a_typed_error_and_writes_nothing(
    failing_store: tuple[Store, str], counting_receiver: CountingReceiver
) -> None:
    store, where = failing_store
    kit = WebhookKit(
        store=store,
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
        delivery=DeliveryConfig(max_queued=5),
    )
    async with kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        hooks = [
            await kit.webhooks.create(
                app,
                target_url=f"{counting_receiver.url}/{n}",
                events=["ORDER_CREATED"],
                secret_key="s3cret",
            )
            for n in range(3)
        ]
        await store.open()
        await _refuse_deliveries_for(store, where, sorted(h.id for h in hooks)[1])
        for _ in range(10):  # far more than max_queued: a failed write gives its room back
            with pytest.raises(StoreError, match="disk full"):
                await kit.trigger("ORDER_CREATED", payload={"n": 1})
        assert await kit.list_deliveries() == []
        assert await store.count_pending() == 0
        assert kit.scheduler.queued == 0
        payloads = await _count_payloads(store, where)
        assert payloads == 0, "a failed batch must leave no payload behind"
    assert counting_receiver.requests == 0


async def _count_payloads(store: Store, where: str) -> int:
    if isinstance(store, SQLiteStore):
        row = await store._run(
            lambda c: c.execute("SELECT count(*) AS n FROM webhookkit_payloads").fetchone()
        )
        return int(row["n"])
    conn = await asyncpg.connect(where)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM webhookkit_payloads"))
    finally:
        await conn.close()


# -- back-pressure ------------------------------------------------------------------------------


class SlowHTTPTransport(HTTPTransport):
    """This process's sends take a second each, so another worker finishes nearly all."""

    async def send(self, message: OutboundMessage) -> TransportResult:
        await asyncio.sleep(1.0)
        return await super().send(message)


async def test_back_pressure_counts_what_other_workers_finish(
    pg_dsn: str, counting_receiver: CountingReceiver, workers: Workers
) -> None:
    store = PostgresStore(pg_dsn, max_size=4)
    kit = WebhookKit(
        store=store,
        transports=[SlowHTTPTransport(allow_addresses=LOOPBACK)],
        delivery=DeliveryConfig(max_queued=20, concurrency=1, batch_size=1),
    )
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(store.aclose)
        await stack.enter_async_context(kit)
        await subscribe(kit, counting_receiver.url)
        await workers.start(pg_dsn, concurrency=20, lease=30.0, poll=0.1)
        ids: list[str] = []
        # 200 triggers through a limit of 20: this process finishes about one a second, the
        # worker the rest. Counting only local finishes, trigger() would wait minutes here.
        async with asyncio.timeout(60):
            for n in range(200):
                ids += await kit.trigger("ORDER_CREATED", payload={"n": n})
        await kit.wait_for(ids, timeout=60)
    assert counting_receiver.distinct == 200


async def test_rolled_back_outbox_triggers_give_their_room_back(
    pg_dsn: str, counting_receiver: CountingReceiver
) -> None:
    store = PostgresStore(pg_dsn, max_size=4)
    kit = WebhookKit(
        store=store,
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
        delivery=DeliveryConfig(max_queued=20, poll_interval=0.1),
    )
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(store.aclose)
        await stack.enter_async_context(kit)
        await subscribe(kit, counting_receiver.url)
        conn = await asyncpg.connect(pg_dsn)
        try:
            for n in range(25):
                tx = conn.transaction()
                await tx.start()
                await kit.trigger("ORDER_CREATED", payload={"n": n}, connection=conn)
                await tx.rollback()
        finally:
            await conn.close()
        async with asyncio.timeout(10):  # the store has room: this must not wait
            ids = await kit.trigger("ORDER_CREATED", payload={"n": 99})
        await kit.wait_for(ids, timeout=30)
    assert set(counting_receiver.counts) == {99}
