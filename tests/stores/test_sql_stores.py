"""The SQL stores' own promises: a versioned schema, SQLite's durability and thread, URLs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from stores.factories import LEASE, at, attempt, delivery, order_backlog, payload
from stores.pgcluster import PostgresCluster
from webhookkit import (
    App,
    ConfigurationError,
    Delivery,
    DeliveryConfig,
    DeliveryStatus,
    StoreError,
    WebhookKit,
)
from webhookkit.delivery.isolation import IsolationConfig
from webhookkit.delivery.records import AttemptResult, ClaimedBatch
from webhookkit.stores import MemoryStore, PostgresStore, SQLiteStore, Store, open_store
from webhookkit.stores._sql import MIGRATIONS, SCHEMA_VERSION, SQLITE
from webhookkit.testing import MemoryTransport

TABLES = {
    "webhookkit_apps",
    "webhookkit_tokens",
    "webhookkit_webhooks",
    "webhookkit_payloads",
    "webhookkit_deliveries",
    "webhookkit_attempts",
    "webhookkit_schema_migrations",
}


class Database:
    """Raw access to the database under a SQL store, to look behind its back."""

    def __init__(self, kind: str, target: str) -> None:
        self.kind = kind
        self.target = target

    def store(self) -> Store:
        if self.kind == "sqlite":
            return SQLiteStore(self.target)
        return PostgresStore(self.target, min_size=1, max_size=2)

    async def fetch(self, sql: str) -> list[tuple[object, ...]]:
        if self.kind == "sqlite":
            with sqlite3.connect(self.target) as conn:
                return [tuple(r) for r in conn.execute(sql).fetchall()]
        conn = await asyncpg.connect(self.target)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    async def execute(self, sql: str) -> None:
        if self.kind == "sqlite":
            with sqlite3.connect(self.target) as conn:
                conn.execute(sql)
            return
        conn = await asyncpg.connect(self.target)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def tables(self) -> set[str]:
        if self.kind == "sqlite":
            rows = await self.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            rows = await self.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        return {str(r[0]) for r in rows}


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        yield Database("sqlite", str(tmp_path / "store.db"))
    else:
        cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
        async with cluster.database() as dsn:
            yield Database("postgres", dsn)


async def test_open_creates_the_versioned_schema_once(database: Database) -> None:
    first, second = database.store(), database.store()
    try:
        await asyncio.gather(first.open(), second.open())
        await first.open()
    finally:
        await first.aclose()
        await second.aclose()
    assert await database.tables() >= TABLES
    rows = await database.fetch("SELECT version, description FROM webhookkit_schema_migrations")
    assert rows == [(m.version, m.description) for m in MIGRATIONS]
    assert MIGRATIONS[-1].version == SCHEMA_VERSION


async def test_data_survives_closing_and_reopening(database: Database) -> None:
    store = database.store()
    await store.put_app(App(id="a1", name="kept"))
    await store.add_deliveries([payload()], [delivery("d1")])
    await store.claim_due(at(0), limit=1, lease=LEASE)
    await store.aclose()
    again = database.store()
    try:
        assert await again.get_app("a1") == App(id="a1", name="kept")
        assert await again.claim_due(at(1), limit=1, lease=LEASE) == []  # lease survived too
        (claimed,) = await again.claim_due(at(30), limit=1, lease=LEASE)
        assert claimed.id == "d1"
    finally:
        await again.aclose()


async def test_a_schema_newer_than_the_library_is_refused(database: Database) -> None:
    store = database.store()
    await store.open()
    await store.aclose()
    await database.execute(
        "INSERT INTO webhookkit_schema_migrations (version, description, applied_at) "
        f"VALUES ({SCHEMA_VERSION + 1}, 'from the future', "
        f"{'0' if database.kind == 'sqlite' else 'now()'})"
    )
    newer = database.store()
    with pytest.raises(StoreError, match="upgrade webhookkit"):
        await newer.open()
    await newer.aclose()


async def test_naive_datetimes_are_refused(database: Database) -> None:
    store = database.store()
    try:
        with pytest.raises(StoreError, match="timezone-aware"):
            await store.claim_due(datetime(2026, 1, 1), limit=1, lease=LEASE)
        await store.add_deliveries([payload()], [delivery("d1")])
        naive = datetime(2026, 1, 1)
        late = AttemptResult("d1", attempt("d1", ok=True), DeliveryStatus.SUCCESS, None, naive)
        with pytest.raises(StoreError, match="timezone-aware"):
            await store.finish_many([late])
        assert (await store.get_delivery("d1")) == delivery("d1")  # nothing written
    finally:
        await store.aclose()


async def test_sqlite_uses_wal_and_runs_statements_off_the_event_loop(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "wal.db")
    await store.open()
    try:
        workers = [t for t in threading.enumerate() if t.name.startswith("webhookkit-sqlite")]
        assert len(workers) == 1 and workers[0] is not threading.current_thread()
        with sqlite3.connect(tmp_path / "wal.db") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        # The loop keeps running while the store works: a ticker advances during a batch.
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        payloads = [payload(f"p{i}") for i in range(200)]
        await store.add_deliveries(payloads, [delivery(f"d{i}", f"p{i}") for i in range(200)])
        task.cancel()
        assert ticks > 1
    finally:
        await store.aclose()
    assert not [t for t in threading.enumerate() if t.name.startswith("webhookkit-sqlite")]


async def test_sqlite_in_memory_database_works(tmp_path: Path) -> None:
    store = open_store("sqlite:///:memory:")
    assert isinstance(store, SQLiteStore)
    try:
        await store.add_deliveries([payload()], [delivery("d1")])
        assert (await store.get_delivery("d1")) == delivery("d1")
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    ("url", "check"),
    [
        ("memory://", lambda s: isinstance(s, MemoryStore)),
        ("sqlite:///relative/dir/hooks.db", lambda s: s.path == "relative/dir/hooks.db"),
        ("sqlite:////var/lib/hooks.db", lambda s: s.path == "/var/lib/hooks.db"),
        ("postgresql://u:pw@db.internal:5432/shop", lambda s: isinstance(s, PostgresStore)),
        ("postgres://u@db/shop?sslmode=require", lambda s: isinstance(s, PostgresStore)),
    ],
)
def test_open_store_picks_the_store_by_url(url: str, check: Callable[[Store], bool]) -> None:
    assert check(open_store(url))


def test_open_store_keeps_passwords_out_of_reprs() -> None:
    shown = repr(open_store("postgresql://u:pw-123@db/shop?password=pw-456"))
    assert "pw-123" not in shown and "pw-456" not in shown and "db/shop" in shown


@pytest.mark.parametrize("url", ["mysql://db/x", "sqlite://", "sqlite:///", "redis://x"])
def test_open_store_refuses_unknown_or_incomplete_urls(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_store(url)
    assert caught.value.field == "store"


async def test_header_pairs_are_stored_as_the_same_json_by_every_finish(
    database: Database,
) -> None:
    """A batch of finishes (SQLite: one JSON parameter with the pairs nested) and a single
    finish store the same text for the same headers, and both read back exactly."""
    headers = (
        ("Saleor-Signature", 'a "quoted" \\ value'),
        ("X-Name", "café ünïcode ☃"),
        ("X-Dup", "1"),
        ("X-Dup", "2"),
    )
    store = database.store()
    try:
        await store.add_deliveries([payload("p1")], [delivery("d1", "p1"), delivery("d2", "p1")])
        one = dataclasses.replace(
            attempt("d1"), request_headers=headers, response_headers=headers[:1]
        )
        many = dataclasses.replace(attempt("d2"), request_headers=headers, response_headers=())
        await store.finish_attempt(
            "d1", one, status=DeliveryStatus.FAILED, next_try_at=None, now=at(1)
        )
        await store.finish_many([AttemptResult("d2", many, DeliveryStatus.FAILED, None, at(1))])
        assert [a.request_headers for a in await store.list_attempts("d1")] == [headers]
        assert [
            (a.request_headers, a.response_headers) for a in await store.list_attempts("d2")
        ] == [(headers, ())]
    finally:
        await store.aclose()
    rows = await database.fetch(
        "SELECT delivery_id, request_headers, response_headers FROM webhookkit_attempts "
        "ORDER BY delivery_id"
    )
    (_, single, _), (_, batched, none) = rows
    assert json.loads(str(single)) == json.loads(str(batched)) == [list(p) for p in headers]
    if database.kind == "sqlite":  # text columns: the very same bytes
        assert single == batched
        assert none == "[]"


async def test_sqlite_claimers_on_one_file_each_read_back_only_their_own_claim(
    tmp_path: Path,
) -> None:
    # A SQLite claim is two statements (the write, then a read of what it claimed); three
    # stores, each with its own connection and thread, claim from one file at once. Each
    # store leases for its own length, so a row's lease says which store took it.
    path = tmp_path / "shared.db"
    stores = [SQLiteStore(path) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        ids = [f"d{i:04}" for i in range(2000)]
        await stores[0].add_deliveries(
            [payload(f"p{i}", body=b"body %d" % i) for i in range(60)],
            [delivery(d, f"p{n % 60}", webhook=f"w{n % 10}") for n, d in enumerate(ids)],
        )

        async def claim_all(n: int, store: SQLiteStore) -> list[str]:
            lease = LEASE + timedelta(seconds=n)
            got: list[str] = []
            while (batch := await store.claim_batch(at(1), limit=7, lease=lease)).deliveries:
                for d in batch.deliveries:
                    assert d.lease_until == at(1) + lease, "another claim's row read back"
                    assert d.status is DeliveryStatus.PENDING
                    if d.payload_id in batch.payloads:  # a payload comes with its first claim
                        want = b"body %d" % int(d.payload_id[1:])
                        assert batch.payloads[d.payload_id].body == want
                got += [d.id for d in batch.deliveries]
            return got

        results = await asyncio.gather(*(claim_all(n, s) for n, s in enumerate(stores)))
        assert sorted(i for r in results for i in r) == ids  # each delivery once, none twice
        # SQLite's busy handler may keep one store waiting through the whole run; the
        # interleaving this test is about needs two.
        assert sum(1 for r in results if r) >= 2, "claims should have interleaved"
        with sqlite3.connect(path) as conn:
            leased = dict(conn.execute("SELECT id, lease_until FROM webhookkit_deliveries"))
        for n, result in enumerate(results):
            want = SQLITE.ts(at(1) + LEASE + timedelta(seconds=n))
            assert {leased[i] for i in result} <= {want}  # a store that got none: empty
    finally:
        await asyncio.gather(*(s.aclose() for s in stores))


async def drain_backlog(
    store: SQLiteStore, webhooks: int, triggers: int, delivery: DeliveryConfig
) -> tuple[list[Delivery], MemoryTransport]:
    """Queue ``triggers`` x ``webhooks`` deliveries before the scheduler starts (a backlog,
    so every slot and claim could be full), then deliver them all."""
    transport = MemoryTransport()
    kit = WebhookKit(store=store, transports=[transport], delivery=delivery)
    try:
        ids = await order_backlog(kit, webhooks, triggers)
        await kit.start()
        finished = await kit.wait_for(ids, timeout=60)
    finally:
        await kit.aclose()
    assert [d.status for d in finished] == [DeliveryStatus.SUCCESS] * len(ids)
    return finished, transport


async def test_a_finish_write_takes_at_most_half_the_send_slots(tmp_path: Path) -> None:
    # With every slot's result in one write, the slots wait for it together and the store
    # waits for them to send again; with halves, one half sends while the other is written.
    sizes: list[int] = []

    class Recording(SQLiteStore):
        async def finish_many(self, results: Sequence[AttemptResult]) -> None:
            sizes.append(len(results))
            await super().finish_many(results)

    config = DeliveryConfig(concurrency=10)
    finished, transport = await drain_backlog(Recording(tmp_path / "halves.db"), 1, 60, config)
    assert len(finished) == 60 and sum(sizes) == 60 and len(transport.sent) == 60
    assert max(sizes) == 5, sizes  # grouped (not one by one), never more than half of 10


async def test_sent_deliveries_hold_their_slots_until_written_without_a_waiting_task(
    tmp_path: Path,
) -> None:
    # While a finish write hangs, the sent deliveries keep their send slots (no more than
    # concurrency are sent) yet no delivery task is left waiting for the write: the finisher
    # completes them once it lands, and the rest are then sent.
    gate = asyncio.Event()
    writing = asyncio.Event()

    class Stalled(SQLiteStore):
        async def finish_many(self, results: Sequence[AttemptResult]) -> None:
            writing.set()
            await gate.wait()
            await super().finish_many(results)

    transport = MemoryTransport()
    kit = WebhookKit(
        store=Stalled(tmp_path / "stalled.db"),
        transports=[transport],
        delivery=DeliveryConfig(concurrency=4),
    )
    try:
        ids = await order_backlog(kit, 4, 3)
        await kit.start()
        await asyncio.wait_for(writing.wait(), 10)
        for _ in range(1000):  # until every slot has sent and queued its attempt
            if len(transport.sent) >= 4 and kit.scheduler.finisher.waiting >= 4:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # time enough for a fifth send, were a slot free
        senders = [
            t
            for t in asyncio.all_tasks()
            if getattr(t.get_coro(), "__qualname__", "") == "Scheduler._deliver"
        ]
        assert len(transport.sent) == 4 and kit.scheduler.in_flight == 4
        assert senders == []
        gate.set()
        finished = await kit.wait_for(ids, timeout=30)
    finally:
        gate.set()
        await kit.aclose()
    assert [d.status for d in finished] == [DeliveryStatus.SUCCESS] * 12
    assert len(transport.sent) == 12


async def test_a_completion_that_raises_frees_its_slot_and_endpoint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The finisher completes written deliveries; a bug in that bookkeeping must not keep the
    # send slot or the endpoint's share taken (with one of each, nothing else would be sent).
    transport = MemoryTransport()
    config = DeliveryConfig(concurrency=1, isolation=IsolationConfig(per_endpoint=1))
    kit = WebhookKit(store=SQLiteStore(tmp_path / "c.db"), transports=[transport], delivery=config)
    try:
        ids = await order_backlog(kit, 1, 3)
        written = kit.scheduler._written
        calls = 0

        def failing_once(done: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("bookkeeping bug")
            return written(done)

        kit.scheduler._written = failing_once  # type: ignore[method-assign,assignment]
        await kit.start()
        finished = await kit.wait_for(ids, timeout=30)
        await kit.wait_idle()
        assert kit.scheduler.in_flight == 0
    finally:
        await kit.aclose()
    assert [d.status for d in finished] == [DeliveryStatus.SUCCESS] * 3
    assert len(transport.sent) == 3 and calls == 3
    assert "completing delivery" in caplog.text and "bookkeeping bug" in caplog.text


async def test_claims_refill_half_the_local_queue_or_more(tmp_path: Path) -> None:
    # Sends finish while a claim is out: woken by each of them, the loop followed a full
    # claim at once with one for the few slots freed meanwhile (limits of 5 here).
    limits: list[int] = []

    class Recording(SQLiteStore):
        async def claim_batch(self, now: datetime, **kwargs: Any) -> ClaimedBatch:
            limits.append(kwargs["limit"])
            return await super().claim_batch(now, **kwargs)

    config = DeliveryConfig(concurrency=10, isolation=IsolationConfig(per_endpoint=10))
    finished, _ = await drain_backlog(Recording(tmp_path / "refill.db"), 4, 100, config)
    assert len(finished) == 400
    # claim_size is 40 (four times concurrency): every claim asks for at least half of it.
    assert min(limits) >= 20, limits
