"""What only the PostgreSQL store promises: many workers, LISTEN/NOTIFY, the outbox."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from stores.factories import LEASE, at, attempt, delivery, finish, order_backlog, payload
from webhookkit import DeliveryConfig, DeliveryStatus, StoreError, WebhookKit
from webhookkit.delivery.records import AttemptResult
from webhookkit.stores import DeliveryQuery, PostgresStore, WorkNotifier
from webhookkit.testing import MemoryTransport

LISTENERS = (
    "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND datname = current_database()"
)


@pytest.fixture
async def stores(pg_dsn: str) -> AsyncIterator[Callable[..., PostgresStore]]:
    """Make any number of stores on one database, as separate worker processes would."""
    made: list[PostgresStore] = []

    def make(*, listen: bool = True) -> PostgresStore:
        store = PostgresStore(pg_dsn, min_size=1, max_size=4, listen=listen)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.aclose()


@pytest.fixture
async def host(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """The host application's own connection, with a table of its own."""
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE orders (id TEXT PRIMARY KEY)")
    yield conn
    await conn.close()


async def test_concurrent_claimers_never_get_the_same_delivery(
    stores: Callable[..., PostgresStore],
) -> None:
    workers = [stores() for _ in range(3)]
    await asyncio.gather(*(w.open() for w in workers))  # concurrent migration, one schema
    ids = [f"d{i:04}" for i in range(300)]
    await workers[0].add_deliveries([payload()], [delivery(i) for i in ids])

    async def claim_all(worker: PostgresStore) -> list[str]:
        got: list[str] = []
        while batch := await worker.claim_due(at(1), limit=7, lease=LEASE):
            got += [d.id for d in batch]
        return got

    results = await asyncio.gather(*(claim_all(w) for w in workers))
    claimed = [i for result in results for i in result]
    assert sorted(claimed) == ids  # every delivery once, none twice
    assert all(results), "each worker should have claimed some"


async def test_rows_locked_elsewhere_are_skipped_not_waited_for(
    stores: Callable[..., PostgresStore], host: asyncpg.Connection
) -> None:
    store = stores()
    await store.add_deliveries([payload()], [delivery(f"d{i}") for i in range(6)])
    async with host.transaction():
        # What another worker's claim locks: the deliveries' queue rows (migration 13).
        await host.execute("SELECT id FROM webhookkit_queue WHERE id IN ('d0', 'd1') FOR UPDATE")
        async with asyncio.timeout(30):
            claimed = await store.claim_due(at(1), limit=2, lease=LEASE)
        assert [d.id for d in claimed] == ["d2", "d3"]
    async with host.transaction():
        # A lock on the delivery rows themselves (a host's own transaction) holds no claim.
        await host.execute(
            "SELECT id FROM webhookkit_deliveries WHERE id IN ('d0', 'd1') FOR UPDATE"
        )
        async with asyncio.timeout(30):
            (first, second) = await store.claim_due(at(1), limit=2, lease=LEASE)
        assert (first.id, second.id) == ("d0", "d1")


async def test_a_crashed_workers_lease_runs_out_and_another_takes_over(
    stores: Callable[..., PostgresStore],
) -> None:
    crashing, survivor = stores(), stores()
    await crashing.add_deliveries([payload()], [delivery("d1")])
    (taken,) = await crashing.claim_due(at(0), limit=1, lease=LEASE)
    await crashing.aclose()  # dies without finishing
    assert await survivor.claim_due(at(29), limit=1, lease=LEASE) == []
    assert await survivor.next_due() == at(30)
    (retaken,) = await survivor.claim_due(at(30), limit=1, lease=LEASE)
    assert retaken.id == taken.id and retaken.lease_until == at(60)
    done = await finish(survivor, "d1", DeliveryStatus.SUCCESS, when=31)
    assert done.attempts == 1


async def test_queuing_in_one_process_wakes_a_waiter_in_another(
    stores: Callable[..., PostgresStore],
) -> None:
    producer, worker = stores(), stores()
    await asyncio.gather(producer.open(), worker.open())
    assert isinstance(worker, WorkNotifier)
    assert await worker.wait_for_work(0.01) is False  # nothing queued yet
    calls: list[str] = []
    worker.add_work_listener(lambda: calls.append("woken"))
    waiter = asyncio.create_task(worker.wait_for_work(60))
    await asyncio.sleep(0)
    await producer.add_deliveries([payload()], [delivery("d1")])
    assert await waiter is True
    assert calls == ["woken"]

    (claimed,) = await worker.claim_due(at(0), limit=1, lease=LEASE)
    waiter = asyncio.create_task(worker.wait_for_work(60))
    await producer.release([claimed.id])  # released work is announced too
    assert await waiter is True
    assert calls == ["woken", "woken"]


async def test_outbox_commit_sends_and_announces_only_on_commit(
    stores: Callable[..., PostgresStore], host: asyncpg.Connection, pg_dsn: str
) -> None:
    store = stores()
    await store.open()
    woken: list[int] = []
    store.add_work_listener(lambda: woken.append(1))
    probe = await asyncpg.connect(pg_dsn)
    try:
        async with host.transaction():
            await host.execute("INSERT INTO orders VALUES ('o1')")
            await store.add_deliveries([payload()], [delivery("d1")], connection=host)
            # Invisible to everyone else until the host commits.
            assert await store.get_delivery("d1") is None
            assert await store.claim_due(at(1), limit=10, lease=LEASE) == []
            # Notifications arrive in commit order: once this probe is heard, an early
            # NOTIFY from the outbox would have been heard too.
            await probe.execute("SELECT pg_notify('webhookkit_deliveries', 'probe')")
            assert await store.wait_for_work(30) is True
            assert woken == [1]
        assert await store.wait_for_work(30) is True
        assert woken == [1, 1]
    finally:
        await probe.close()
    assert await store.get_delivery("d1") == delivery("d1")
    assert await store.get_payload("p1") == payload()
    (claimed,) = await store.claim_due(at(1), limit=10, lease=LEASE)
    assert claimed.id == "d1"


async def test_outbox_rollback_leaves_no_trace(
    stores: Callable[..., PostgresStore], host: asyncpg.Connection
) -> None:
    store = stores()
    with contextlib.suppress(RuntimeError):
        async with host.transaction():
            await host.execute("INSERT INTO orders VALUES ('o1')")
            await store.add_deliveries([payload()], [delivery("d1")], connection=host)
            raise RuntimeError("the host's business logic failed")
    assert await host.fetchval("SELECT count(*) FROM orders") == 0
    assert await store.get_delivery("d1") is None
    assert await store.get_payload("p1") is None
    assert await store.claim_due(at(1), limit=10, lease=LEASE) == []
    assert await store.next_due() is None


async def test_outbox_outside_a_host_transaction_commits_by_itself(
    stores: Callable[..., PostgresStore], host: asyncpg.Connection
) -> None:
    store = stores()
    await store.open()
    await store.add_deliveries([payload()], [delivery("d1")], connection=host)
    assert await store.get_delivery("d1") == delivery("d1")
    with pytest.raises(StoreError, match="payload"):
        await store.add_deliveries([], [delivery("d2", "missing")], connection=host)
    assert not host.is_in_transaction()


async def test_a_lost_listen_connection_wakes_waiters_and_comes_back(
    stores: Callable[..., PostgresStore], pg_dsn: str
) -> None:
    worker, producer = stores(), stores(listen=False)
    await asyncio.gather(worker.open(), producer.open())
    admin = await asyncpg.connect(pg_dsn)
    try:
        (pid,) = [r["pid"] for r in await admin.fetch(LISTENERS)]
        waiter = asyncio.create_task(worker.wait_for_work(60))
        await asyncio.sleep(0)
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        assert await waiter is True  # woken to poll: notifications may have been missed
        for _ in range(600):  # the reconnect starts after 0.1 s; give it up to 30 s
            if [r["pid"] for r in await admin.fetch(LISTENERS)] not in ([], [pid]):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the store did not LISTEN again after losing its connection")
        await worker.wait_for_work(0)  # forget the reconnect's own wake-up
        waiter = asyncio.create_task(worker.wait_for_work(60))
        await producer.add_deliveries([payload()], [delivery("d1")])
        assert await waiter is True
    finally:
        await admin.close()


async def test_errors_never_show_the_password(pg_dsn: str) -> None:
    bad = pg_dsn.replace("postgres@", "postgres:hunter2@").replace("/wk_", "/missing_wk_")
    store = PostgresStore(bad)
    assert "hunter2" not in repr(store)
    with pytest.raises(StoreError) as caught:
        await store.open()
    assert "hunter2" not in str(caught.value)
    assert "missing_wk_" in str(caught.value)
    await store.aclose()


async def test_timestamps_keep_microseconds_and_come_back_in_utc(
    stores: Callable[..., PostgresStore],
) -> None:
    store = stores()
    await store.add_deliveries([payload()], [delivery("d1", created=0.000001)])
    loaded = await store.get_delivery("d1")
    assert loaded is not None
    assert loaded.created_at == at(0) + timedelta(microseconds=1)
    assert loaded.created_at.utcoffset() == timedelta(0)


async def test_attempts_need_no_foreign_key_and_leave_nothing_behind(
    stores: Callable[..., PostgresStore], pg_dsn: str
) -> None:
    """Migration 11 drops the attempts' foreign key (a trigger and a locking lookup per attempt
    written): the finish statements refuse an unknown delivery themselves, and the purge
    deletes a delivery's attempts with it."""
    store = stores()
    await store.open()
    db = await asyncpg.connect(pg_dsn)
    try:
        assert not await db.fetchval(
            "SELECT count(*) FROM pg_constraint WHERE conname = $1",
            "webhookkit_attempts_delivery_id_fkey",
        )
        await store.add_deliveries([payload("p1")], [delivery("d1", "p1"), delivery("d2", "p1")])
        await finish(store, "d1", DeliveryStatus.SUCCESS, when=1)
        await store.finish_many(
            [
                AttemptResult(
                    "d2", attempt("d2", ok=True, when=1), DeliveryStatus.SUCCESS, None, at(1)
                )
            ]
        )
        with pytest.raises(StoreError, match="not found"):
            await finish(store, "ghost", DeliveryStatus.SUCCESS, when=2)
        ghost = AttemptResult(
            "ghost", attempt("ghost", when=2), DeliveryStatus.SUCCESS, None, at(2)
        )
        with pytest.raises(StoreError, match="does not exist"):
            # With a known delivery in the same batch: the statement writes all or nothing.
            await store.finish_many(
                [
                    AttemptResult(
                        "d1", attempt("d1", 2, when=2), DeliveryStatus.SUCCESS, None, at(2)
                    ),
                    ghost,
                ]
            )
        assert await db.fetchval("SELECT count(*) FROM webhookkit_attempts") == 2

        assert await store.purge(at(0) + timedelta(days=30), keep_success=None) == 2
        assert await db.fetchval("SELECT count(*) FROM webhookkit_attempts") == 0
        assert await db.fetchval("SELECT count(*) FROM webhookkit_deliveries") == 0
    finally:
        await db.close()


async def test_a_worker_store_opens_with_its_finish_prepared_on_two_connections(
    pg_dsn: str,
) -> None:
    """A listening (worker) store connects the two connections a claim and a finish use at
    once, the finish prepared on each; a queue-only store keeps to its one connection."""
    worker = PostgresStore(pg_dsn, min_size=1, max_size=4)
    producer = PostgresStore(pg_dsn, min_size=1, max_size=4, listen=False)
    try:
        await worker.open()
        await producer.open()
        assert worker._pool.get_size() == 2
        assert producer._pool.get_size() == 1
        held = [await worker._pool.acquire() for _ in range(2)]
        try:
            for conn in held:
                rows = await conn.fetch("SELECT statement FROM pg_prepared_statements")
                assert any("webhookkit_finished[]" in r["statement"] for r in rows), rows
        finally:
            for conn in held:
                await worker._pool.release(conn)
        assert worker._pool.get_size() == 2  # nothing opened a third
    finally:
        await worker.aclose()
        await producer.aclose()


async def test_a_claim_first_run_on_a_small_table_never_keeps_its_plan(pg_dsn: str) -> None:
    """A prepared claim made while the table was nearly empty must not go on updating claimed
    rows through a sequential scan once the table has grown (a generic plan would)."""
    from webhookkit.stores.postgres import CLAIM_SETTINGS

    store = PostgresStore(pg_dsn, min_size=1, max_size=1, listen=False)
    try:
        for n in range(8):  # more than the five custom plans before a generic one is chosen
            await store.add_deliveries([payload(f"p{n}")], [delivery(f"tiny-{n}", f"p{n}")])
            await store.claim_batch(at(1), limit=1, lease=LEASE)
        big = [delivery(f"d{i:05}", "big", webhook=f"w{i % 50}") for i in range(5000)]
        await store.add_deliveries([payload("big")], big)
        batch = await store.claim_batch(at(1), limit=200, lease=LEASE, per_webhook=20)
        assert len(batch.deliveries) == 200
        async with store._conn("test") as conn:
            [claim] = await conn.fetch(
                "SELECT name, generic_plans FROM pg_prepared_statements "
                "WHERE statement LIKE '%FOR UPDATE OF q SKIP LOCKED%' "
                "AND statement NOT LIKE '%pg_prepared_statements%'"
            )
            assert claim["generic_plans"] == 0
            now = f"'{at(1).isoformat()}'::timestamptz"
            args = f"{now}, 200, {now} + interval '30 s', '{{}}'::text[], 800, 20"
            async with conn.transaction():
                await conn.execute(CLAIM_SETTINGS)
                explained = await conn.fetch(f"EXPLAIN EXECUTE {claim['name']}({args})")
            plan = "\n".join(r[0] for r in explained)
    finally:
        await store.aclose()
    assert "Seq Scan on webhookkit_deliveries" not in plan, plan
    assert "Seq Scan on webhookkit_queue" not in plan, plan


async def test_a_claim_rewrites_no_index_entry(pg_dsn: str) -> None:
    """A claim sets only the lease of queue rows, whose pages have room for the new row
    versions: every claimed row is updated in place of its page's free space (HOT), with no
    new entry in any of the queue's indexes, and the deliveries are only read."""
    from webhookkit.stores import _pg_sql as pq
    from webhookkit.stores import _sql as q
    from webhookkit.stores.postgres import CLAIM_SETTINGS

    store = PostgresStore(pg_dsn, min_size=1, max_size=1, listen=False)
    try:
        # Ids of the length webhookkit makes (32 hex characters), so rows are their real size.
        ids = [f"{i:032x}" for i in range(300)]
        hooks = [f"{n:032x}" for n in range(10)]
        await store.add_deliveries(
            [payload()], [delivery(i, webhook=hooks[n % 10]) for n, i in enumerate(ids)]
        )
        async with store._conn("test") as conn:
            options = await conn.fetchval(
                "SELECT reloptions FROM pg_class WHERE oid = 'webhookkit_queue'::regclass"
            )
            assert f"fillfactor={q.QUEUE_FILLFACTOR}" in options
            async with conn.transaction():  # the counts of this transaction alone
                await conn.execute(CLAIM_SETTINGS)
                rows = await conn.fetch(pq.CLAIM_BATCH, at(1), 200, at(31), [], 800, 200)
                counts = [await _updates(conn, t) for t in ("queue", "deliveries")]
        assert len(rows) == 200
        assert counts == [(200, 200), (0, 0)]
        # Leased rows keep their place in the due index; the next claim passes over them.
        batch = await store.claim_batch(at(2), limit=500, lease=LEASE)
        assert sorted(d.id for d in batch.deliveries) == ids[200:]
        assert await store.claim_batch(at(30), limit=500, lease=LEASE) == type(batch)([], {})
        assert await store.next_due() == at(31)
        again = await store.claim_batch(at(31), limit=500, lease=LEASE)
        assert sorted(d.id for d in again.deliveries) == sorted(r["id"] for r in rows)
    finally:
        await store.aclose()


async def test_listing_pending_deliveries_reads_no_finished_row(pg_dsn: str) -> None:
    """Pending deliveries are listed from the queue: with 2,000 finished deliveries beside
    three pending ones (one waiting for a retry), the listing reads the three rows only."""
    store = PostgresStore(pg_dsn, min_size=1, max_size=2, listen=False)
    try:
        done = [delivery(f"done-{i:04}", webhook="w1", created=i / 1000) for i in range(2000)]
        live = [delivery(f"live-{i}", webhook="w1", created=10 + i) for i in range(3)]
        await store.add_deliveries([payload()], done + live)
        results = [
            AttemptResult(d.id, attempt(d.id, ok=True, when=5), DeliveryStatus.SUCCESS, None, at(5))
            for d in done
        ]
        for start in range(0, len(results), 500):
            await store.finish_many(results[start : start + 500])
        await finish(store, "live-1", DeliveryStatus.PENDING, when=12, next_try=60)
        listed = await store.list_deliveries(
            DeliveryQuery(status=DeliveryStatus.PENDING, webhook_id="w1")
        )
        assert [d.id for d in listed] == ["live-0", "live-1", "live-2"]
        assert listed[1].attempts == 1 and listed[1].next_try_at == at(60)
        from webhookkit.stores import _pg_sql as pq

        text, args = pq.list_pending_sql(
            DeliveryQuery(status=DeliveryStatus.PENDING, webhook_id="w1")
        )
        conn = await asyncpg.connect(pg_dsn)  # a new backend: no earlier statement's counts
        try:
            rows = await conn.fetch(text, *args)
            rel = "'webhookkit_deliveries'::regclass"
            read = await conn.fetchval(
                f"SELECT pg_stat_get_xact_tuples_returned({rel})"
                f" + pg_stat_get_xact_tuples_fetched({rel})"
            )
        finally:
            await conn.close()
        assert len(rows) == 3
        assert read <= 6, read  # three rows, each by primary key (entry and heap row)
    finally:
        await store.aclose()


async def test_a_failed_claim_rolls_back_and_leaves_its_connection_clean(
    pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A claim's transaction is begun by hand (BEGIN and its settings in one round trip): an
    error inside it is rolled back on the spot, and the pooled connection is clean after."""
    store = PostgresStore(pg_dsn, min_size=1, max_size=1, listen=False)
    try:
        await store.add_deliveries([payload()], [delivery("d1")])
        with pytest.raises(StoreError, match="DivisionByZero"):
            await store._run_claim("claim_batch", "SELECT 1 / 0")
        async with store._conn("test") as conn:  # the only connection of the pool
            assert not conn.is_in_transaction()
            setting = await conn.fetchval("SELECT current_setting('plan_cache_mode')")
            assert setting == "auto"  # the claim's SET LOCAL ended with its transaction
        batch = await store.claim_batch(at(1), limit=5, lease=LEASE)
        assert [d.id for d in batch.deliveries] == ["d1"]
    finally:
        await store.aclose()
    # Not left for the pool to roll back (asyncpg reports that as an error).
    assert "active transaction" not in caplog.text


class _LostAnswer(PostgresStore):
    """Its first claim that leases rows commits, then fails as if the connection dropped
    before the answer arrived."""

    lost = 0

    async def _run_claim(self, action: str, sql: str, *args: Any) -> list[Any]:
        rows = await super()._run_claim(action, sql, *args)
        if rows and not self.lost:
            self.lost = len(rows)
            raise StoreError(f"postgresql: {action}: ConnectionDoesNotExistError: closed")
        return rows


async def test_a_claim_whose_answer_was_lost_is_released_before_the_next(pg_dsn: str) -> None:
    """The rows a claim leased before its answer was lost go back before the next claim, so
    they are sent now, not after their lease; the next claim's own leases are not touched,
    even at the same instant (a frozen clock gives both the same lease end)."""
    store = _LostAnswer(pg_dsn, min_size=1, max_size=2, listen=False)
    try:
        await store.add_deliveries([payload()], [delivery(f"d{i}") for i in range(5)])
        with pytest.raises(StoreError):
            await store.claim_batch(at(1), limit=3, lease=LEASE)
        assert store.lost == 3
        again = await store.claim_batch(at(1), limit=10, lease=LEASE)
        assert sorted(d.id for d in again.deliveries) == [f"d{i}" for i in range(5)]
        assert (await store.claim_batch(at(1), limit=10, lease=LEASE)).deliveries == []
        assert await store.next_due() == at(1) + LEASE
    finally:
        await store.aclose()


async def test_deliveries_of_a_lost_claim_answer_are_sent_without_waiting_out_the_lease(
    pg_dsn: str,
) -> None:
    transport = MemoryTransport()
    store = _LostAnswer(pg_dsn, min_size=1, max_size=4)
    kit = WebhookKit(
        store=store, transports=[transport], delivery=DeliveryConfig(lease=timedelta(hours=1))
    )
    try:
        ids = await order_backlog(kit, 1, 5)
        await kit.start()
        finished = await kit.wait_for(ids, timeout=30)  # an hour's lease would time this out
    finally:
        await kit.aclose()
    assert store.lost == 5
    assert [d.status for d in finished] == [DeliveryStatus.SUCCESS] * 5
    assert len(transport.sent) == 5 and kit.stats.store_errors >= 1


async def _updates(conn: asyncpg.Connection, table: str) -> tuple[int, int]:
    """Rows of ``webhookkit_<table>`` updated in the current transaction, and how many of
    those were HOT updates."""
    rel = f"'webhookkit_{table}'::regclass"
    updated = await conn.fetchval(f"SELECT pg_stat_get_xact_tuples_updated({rel})")
    hot = await conn.fetchval(f"SELECT pg_stat_get_xact_tuples_hot_updated({rel})")
    return int(updated), int(hot)


async def test_a_finish_rewrites_no_delivery_index_entry(pg_dsn: str) -> None:
    """A finish changes no column any deliveries index holds (migration 13): every finished
    delivery is a HOT update, its queue row goes (a success) or moves (a retry)."""
    from webhookkit.stores import _sql as q

    store = PostgresStore(pg_dsn, min_size=1, max_size=1, listen=False)
    try:
        ids = [f"{i:032x}" for i in range(200)]
        await store.add_deliveries([payload()], [delivery(i) for i in ids])
        claimed = await store.claim_batch(at(1), limit=200, lease=LEASE)
        assert len(claimed.deliveries) == 200
        results = [
            AttemptResult(d.id, attempt(d.id, ok=True), DeliveryStatus.SUCCESS, None, at(2))
            if n % 4
            else AttemptResult(d.id, attempt(d.id), DeliveryStatus.PENDING, at(10), at(2))
            for n, d in enumerate(claimed.deliveries)
        ]
        rows = q.finished_rows(results)
        async with store._conn("test") as conn:
            async with conn.transaction():
                # Counts not yet reported include the claim's: take the difference.
                before = [await _updates(conn, t) for t in ("deliveries", "queue")]
                await conn.execute(store._finish_many_sql, rows)
                after = [await _updates(conn, t) for t in ("deliveries", "queue")]
            counts = [(x[0] - y[0], x[1] - y[1]) for x, y in zip(after, before, strict=True)]
            queued = await conn.fetch("SELECT id, due_at, lease_until FROM webhookkit_queue")
        assert counts == [(200, 200), (50, 0)]  # a retry's queue row moves in the due index
        retried = {r.delivery_id for r in results if r.status is DeliveryStatus.PENDING}
        assert {r["id"] for r in queued} == retried
        assert all(r["due_at"] == at(10) and r["lease_until"] is None for r in queued)
        assert await store.count_pending() == 50
    finally:
        await store.aclose()


async def _back_to_schema_12(dsn: str) -> None:
    """Undo migration 13 on a database made by this webhookkit: the deliveries' own indexes
    back, no queue, the trigger gone, the version row removed (what an earlier release left)."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(
                "DROP TRIGGER webhookkit_deliveries_queued ON webhookkit_deliveries;"
                "DROP FUNCTION webhookkit_deliveries_added();"
                "DROP TABLE webhookkit_queue;"
                "DROP TYPE webhookkit_finished;"
                "CREATE INDEX webhookkit_deliveries_due ON webhookkit_deliveries (due_at, id)"
                " WHERE status = 'pending';"
                "CREATE INDEX webhookkit_deliveries_finished"
                " ON webhookkit_deliveries (status, updated_at);"
                "CREATE INDEX webhookkit_deliveries_order"
                " ON webhookkit_deliveries (webhook_id, ordering_key, seq)"
                " WHERE status = 'pending' AND ordering_key IS NOT NULL;"
                "DELETE FROM webhookkit_schema_migrations WHERE version = 13"
            )
    finally:
        await conn.close()


@pytest.mark.parametrize("partitioned", [False, True])
async def test_upgrading_queues_exactly_the_pending_deliveries(
    pg_dsn: str, partitioned: bool
) -> None:
    """Migration 13 on a database of the previous schema: each pending delivery gets its queue
    row with the due time and lease it had, finished ones none; claims, ordering and the
    finish then work on the queue."""
    first = PostgresStore(pg_dsn, listen=False, partitioned=partitioned)
    await first.open()
    await first.aclose()
    await _back_to_schema_12(pg_dsn)
    conn = await asyncpg.connect(pg_dsn)
    try:
        # Rows as the previous schema's statements left them (due_at and lease_until kept on
        # the delivery; a claim left due_at as it was).
        await conn.execute(
            "INSERT INTO webhookkit_payloads (id, event, body, created_at) VALUES ($1, $2, $3, $4)",
            "p1",
            "order_created",
            b"{}",
            at(0),
        )
        rows = [
            ("free", "pending", at(5), None, None),
            ("leased", "pending", at(0), at(40), None),
            ("later", "pending", at(100), None, None),
            ("done", "success", None, None, None),
            ("order-1", "pending", at(0), None, "k"),
            ("order-2", "pending", at(0), None, "k"),
        ]
        for did, status, due, lease, key in rows:
            await conn.execute(
                "INSERT INTO webhookkit_deliveries (id, payload_id, webhook_id, app_id, event,"
                " created_at, status, next_try_at, attempts, lease_until, updated_at, due_at,"
                " ordering_key) VALUES ($1, 'p1', 'w1', 'a1', 'order_created', $2, $3, $4, 0,"
                " $5, $2, $4, $6)",
                did,
                at(0),
                status,
                due,
                lease,
                key,
            )
    finally:
        await conn.close()
    store = PostgresStore(pg_dsn, listen=False)
    try:
        await store.open()
        async with store._conn("test") as db:
            queued = {
                r["id"]: (r["due_at"], r["lease_until"])
                for r in await db.fetch("SELECT id, due_at, lease_until FROM webhookkit_queue")
            }
            indexes = {
                r["indexname"]
                for r in await db.fetch(
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'webhookkit_deliveries'"
                )
            }
        assert queued == {
            "free": (at(5), None),
            "leased": (at(0), at(40)),
            "later": (at(100), None),
            "order-1": (at(0), None),
            "order-2": (at(0), None),
        }
        assert not indexes & {f"webhookkit_deliveries_{n}" for n in ("due", "finished", "order")}
        assert store.partitioned is partitioned
        assert await store.count_pending() == 5
        assert (await store.get_delivery("leased")).lease_until == at(40)  # type: ignore[union-attr]
        claimed = await store.claim_due(at(10), limit=10, lease=LEASE)
        assert [d.id for d in claimed] == ["order-1", "free"]  # order-2 waits for order-1
        await finish(store, "order-1", DeliveryStatus.SUCCESS, when=11)
        assert await store.next_due() == at(0)  # order-2: due since 0, free once 1 finished
        assert [d.id for d in await store.claim_due(at(12), limit=10, lease=LEASE)] == ["order-2"]
        # Its old lease over, and the lease of the claim at 10: in due order.
        again = await store.claim_due(at(40), limit=10, lease=LEASE)
        assert [d.id for d in again] == ["leased", "free"]
    finally:
        await store.aclose()


async def test_a_claimed_row_maps_to_the_same_delivery_as_any_read(pg_dsn: str) -> None:
    """claimed_delivery maps a claim's rows positionally (the hot path); it must give what
    the general row mapping gives, every field set."""
    from dataclasses import replace

    from webhookkit.stores import _pg_sql as pq
    from webhookkit.stores import _sql as q
    from webhookkit.stores.postgres import CLAIM_SETTINGS

    store = PostgresStore(pg_dsn, min_size=1, max_size=1, listen=False)
    try:
        full = replace(
            delivery("d1"),
            attempts=3,
            last_error="receiver answered HTTP 503",
            updated_at=at(2),
            retry_base=2,
            requeued_at=at(1),
            ordering_key="order-7",
        )
        await store.add_deliveries([payload()], [full, delivery("d2")])
        async with store._conn("test") as conn, conn.transaction():
            await conn.execute(CLAIM_SETTINGS)
            rows = await conn.fetch(pq.CLAIM_BATCH, at(5), 10, at(35), [], 40, 10)
        assert len(rows) == 2
        for row in rows:
            assert pq.claimed_delivery(row) == q.row_to_delivery(q.POSTGRES, row)
        assert pq.claimed_delivery(rows[0]) == replace(full, lease_until=at(35))
    finally:
        await store.aclose()
