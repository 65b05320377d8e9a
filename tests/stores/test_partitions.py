"""The partitioned PostgreSQL layout (``PostgresStore(dsn, partitioned=True)``): day partitions
made ahead, rows and attempts in their delivery's day, the default partition, retention that
drops whole days (never one with a live row), payloads and idempotency keys kept right, a drop
that gives way to a busy lock, the refusal to convert silently and the explicit conversion.

The conformance suite (``test_conformance.py``) runs every store behaviour on this layout too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from stores.factories import LEASE, T0, at, attempt, delivery, finish, payload
from webhookkit import ConfigurationError, Delivery, DeliveryStatus, StoreError
from webhookkit.delivery.records import AttemptResult
from webhookkit.stores import PostgresStore, open_store, partitions
from webhookkit.stores import _sql as q
from webhookkit.stores.base import IdempotencyKey

DAY = 86400
D0 = T0.date()  # 2026-03-01, the day of the factories' records


def day_name(table: str, day: date) -> str:
    return f"webhookkit_{table}_p{day:%Y%m%d}"


@pytest.fixture
async def stores(pg_dsn: str) -> AsyncIterator[Callable[..., PostgresStore]]:
    made: list[PostgresStore] = []

    def make(*, partitioned: bool = True, dsn: str = pg_dsn) -> PostgresStore:
        store = PostgresStore(dsn, min_size=1, max_size=3, partitioned=partitioned)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.aclose()


@pytest.fixture
async def db(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own, to look behind the store's back."""
    conn = await asyncpg.connect(pg_dsn)
    yield conn
    await conn.close()


async def opened(make: Callable[..., PostgresStore], *days: date) -> PostgresStore:
    store = make()
    await store.open()
    assert store.partitioned
    for day in days:
        await partitions.create_partitions(store, day, day)
    return store


async def exists(db: asyncpg.Connection, name: str) -> bool:
    return await db.fetchval("SELECT to_regclass($1)", name) is not None


async def where(db: asyncpg.Connection, table: str, key: str, value: str) -> str:
    """The partition holding the row of ``table`` whose ``key`` is ``value``."""
    return str(
        await db.fetchval(
            f"SELECT tableoid::regclass::text FROM webhookkit_{table} WHERE {key} = $1", value
        )
    )


async def test_a_new_database_gets_day_partitions_ahead_and_a_default(
    stores: Callable[..., PostgresStore], db: asyncpg.Connection
) -> None:
    store = await opened(stores)
    today = datetime.now(UTC).date()
    for table in ("deliveries", "attempts"):
        kind = await db.fetchval(
            "SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)", f"webhookkit_{table}"
        )
        assert kind == "p"
        assert await exists(db, f"webhookkit_{table}_default")
        for ahead in range(partitions.AHEAD_DAYS + 1):
            assert await exists(db, day_name(table, today + timedelta(days=ahead)))
    # Delivery pages keep room for their rows' claims (see test_a_claim_rewrites_no_index_entry).
    for name in ("webhookkit_deliveries_default", day_name("deliveries", today)):
        options = await db.fetchval(
            "SELECT reloptions FROM pg_class WHERE oid = to_regclass($1)", name
        )
        assert options == [f"fillfactor={q.DELIVERIES_FILLFACTOR}"], name
    listed = [name for name, _ in await partitions.list_partitions(store)]
    assert listed[-1] == "webhookkit_deliveries_default"
    assert listed[0] == day_name("deliveries", today)

    # A second process needs no option: the database says it is partitioned.
    other = stores(partitioned=False)
    await other.open()
    assert other.partitioned

    # Every purge makes the partitions ahead of the time it is given.
    later = today + timedelta(days=30)
    now = datetime(later.year, later.month, later.day, 12, tzinfo=UTC)
    await store.purge(now)
    for ahead in range(partitions.AHEAD_DAYS + 1):
        assert await exists(db, day_name("attempts", later + timedelta(days=ahead)))


async def test_rows_land_in_their_day_and_attempts_in_their_deliverys_day(
    stores: Callable[..., PostgresStore], db: asyncpg.Connection
) -> None:
    next_day = D0 + timedelta(days=1)
    store = await opened(stores, D0, next_day)
    await store.add_deliveries(
        [payload("p1")], [delivery("d0", "p1"), delivery("d1", "p1", created=DAY)]
    )
    assert await where(db, "deliveries", "id", "d0") == day_name("deliveries", D0)
    assert await where(db, "deliveries", "id", "d1") == day_name("deliveries", next_day)

    # Attempts two days later still live in their delivery's day, dropped with it.
    await finish(store, "d0", DeliveryStatus.PENDING, when=2 * DAY, next_try=3 * DAY)
    await finish(store, "d0", DeliveryStatus.SUCCESS, when=3 * DAY, number=2)
    await store.finish_many([_result("d1", when=2 * DAY)])
    assert {await where(db, "attempts", "id", a) for a in ("d0-1", "d0-2")} == {
        day_name("attempts", D0)
    }
    assert await where(db, "attempts", "id", "d1-1") == day_name("attempts", next_day)
    assert [a.id for a in await store.list_attempts("d0")] == ["d0-1", "d0-2"]
    assert await db.fetchval(
        "SELECT delivery_created_at FROM webhookkit_attempts WHERE id = 'd0-1'"
    ) == at(0)

    # An attempt for no delivery is refused as before, by either finish.
    with pytest.raises(StoreError, match="not found"):
        await finish(store, "ghost", DeliveryStatus.SUCCESS, when=5)
    with pytest.raises(StoreError, match="does not exist"):
        await store.finish_many([_result("ghost", when=5)])
    assert await db.fetchval("SELECT count(*) FROM webhookkit_attempts") == 3


def _result(did: str, *, when: float) -> AttemptResult:
    return AttemptResult(
        delivery_id=did,
        attempt=attempt(did, ok=True, when=when),
        status=DeliveryStatus.SUCCESS,
        next_try_at=None,
        now=at(when),
    )


async def test_the_default_partition_takes_rows_of_days_without_a_partition(
    stores: Callable[..., PostgresStore], db: asyncpg.Connection
) -> None:
    store = await opened(stores)
    old = datetime(2001, 1, 1, 9, tzinfo=UTC)
    stray = replace(delivery("stray"), created_at=old, next_try_at=old)
    await store.add_deliveries([payload("p1")], [stray])
    assert await where(db, "deliveries", "id", "stray") == "webhookkit_deliveries_default"
    (claimed,) = await store.claim_due(at(0), limit=5, lease=LEASE)
    assert claimed.id == "stray"
    await finish(store, "stray", DeliveryStatus.FAILED, when=1)
    assert await where(db, "attempts", "id", "stray-1") == "webhookkit_attempts_default"

    # That day's partition cannot be made while its rows are in the default: skipped, no error.
    assert await partitions.create_partitions(store, old.date(), old.date()) == []
    assert not await exists(db, day_name("deliveries", old.date()))
    assert (await store.get_delivery("stray")) is not None

    # Retention deletes the default partition's rows one by one; the partition stays.
    assert await store.purge(at(30 * DAY)) == 1
    assert await store.get_delivery("stray") is None
    assert await store.list_attempts("stray") == []
    assert await store.get_payload("p1") is None
    assert await exists(db, "webhookkit_deliveries_default")


async def test_a_fully_expired_day_is_dropped_with_its_attempts_and_payloads(
    stores: Callable[..., PostgresStore], db: asyncpg.Connection
) -> None:
    store = await opened(stores, D0)
    await store.add_deliveries(
        [payload("p1"), payload("p2")],
        [delivery("ok", "p1"), delivery("failed", "p1"), delivery("retried", "p2")],
    )
    await finish(store, "ok", DeliveryStatus.SUCCESS, when=1)
    await finish(store, "failed", DeliveryStatus.FAILED, when=2)
    await finish(store, "retried", DeliveryStatus.PENDING, when=3, next_try=60)
    await finish(store, "retried", DeliveryStatus.SUCCESS, when=60, number=2)
    assert await db.fetchval("SELECT count(*) FROM webhookkit_attempts") == 4

    assert await store.purge(at(15 * DAY)) == 3
    for table in ("deliveries", "attempts"):
        assert not await exists(db, day_name(table, D0))
    assert await store.list_deliveries() == []
    assert await store.list_attempts("retried") == []
    assert await db.fetchval("SELECT count(*) FROM webhookkit_attempts") == 0
    assert await store.get_payload("p1") is None
    assert await store.get_payload("p2") is None
    assert await db.fetchval("SELECT count(*) FROM webhookkit_payload_sweep") == 0
    assert await store.purge(at(15 * DAY)) == 0

    # A delivery of that day written afterwards goes to the default partition.
    await store.add_deliveries([payload("p3")], [delivery("late", "p3")])
    assert await where(db, "deliveries", "id", "late") == "webhookkit_deliveries_default"


async def test_a_day_with_a_live_delivery_is_kept_and_its_expired_rows_deleted(
    stores: Callable[..., PostgresStore], db: asyncpg.Connection
) -> None:
    store = await opened(stores, D0)
    partition = day_name("deliveries", D0)
    await store.add_deliveries(
        [payload("p1")], [delivery(f"ok{i}", "p1") for i in range(3)] + [delivery("waiting")]
    )
    for i in range(3):
        await finish(store, f"ok{i}", DeliveryStatus.SUCCESS, when=1)

    # One pending delivery keeps the day; the successes past 24 h still go, row by row.
    assert await store.purge(at(2 * DAY), keep_success=timedelta(hours=24)) == 3
    assert await exists(db, partition)
    assert [d.id for d in await store.list_deliveries()] == ["waiting"]
    assert await store.list_attempts("ok0") == []
    assert await store.get_payload("p1") is not None

    # Finished, but a failure younger than 14 days: kept.
    await finish(store, "waiting", DeliveryStatus.FAILED, when=2 * DAY)
    assert await store.purge(at(10 * DAY)) == 0
    assert await exists(db, partition)

    # Requeued by an operator: pending again, kept however old.
    assert await store.requeue("waiting", at(10 * DAY)) is not None
    assert await store.purge(at(40 * DAY), keep_success=None, keep_failed=timedelta(0)) == 0
    assert await exists(db, partition)

    # Final and past retention: the whole day goes.
    await finish(store, "waiting", DeliveryStatus.SUCCESS, when=40 * DAY, number=2)
    assert await store.purge(at(42 * DAY)) == 1
    assert not await exists(db, partition)
    assert await store.get_payload("p1") is None


async def test_shared_payloads_and_idempotency_keys_stay_right_after_a_drop(
    stores: Callable[..., PostgresStore], db: asyncpg.Connection
) -> None:
    next_day = D0 + timedelta(days=1)
    store = await opened(stores, D0, next_day)
    kept_key = IdempotencyKey("k-kept", ("old1", "old2"), at(0), at(20 * DAY))
    await store.add_deliveries(
        [payload("shared"), payload("only-old")],
        [delivery("old1", "shared"), delivery("old2", "only-old")],
        idempotency_key=kept_key,
    )
    expiring = IdempotencyKey("k-expiring", ("new1",), at(DAY), at(10 * DAY))
    # The next day's delivery reuses the stored payload of the day before.
    await store.add_deliveries(
        [], [delivery("new1", "shared", created=DAY)], idempotency_key=expiring
    )
    await finish(store, "old1", DeliveryStatus.SUCCESS, when=5)
    await finish(store, "old2", DeliveryStatus.FAILED, when=5)

    now = at(15 * DAY)
    assert await store.purge(now) == 2
    assert not await exists(db, day_name("deliveries", D0))
    assert await exists(db, day_name("deliveries", next_day))  # new1 is pending
    assert await store.get_payload("only-old") is None
    assert await store.get_payload("shared") is not None  # new1 still uses it
    assert (await store.get_delivery("new1")) is not None

    # The key outlives its dropped deliveries for its whole window, as with row deletion:
    # the same key still answers with the first trigger's ids and writes nothing.
    assert await store.find_idempotency_key("k-kept", now) == ["old1", "old2"]
    again = await store.add_deliveries(
        [payload("p9")],
        [delivery("dup", "p9", created=15 * DAY)],
        idempotency_key=replace(kept_key, created_at=now),
    )
    assert again == ["old1", "old2"]
    assert await store.get_delivery("dup") is None
    assert await store.find_idempotency_key("k-expiring", now) is None
    assert await db.fetchval("SELECT count(*) FROM webhookkit_idempotency_keys") == 1

    # Once its last user goes, the shared payload goes too.
    await finish(store, "new1", DeliveryStatus.SUCCESS, when=15 * DAY)
    assert await store.purge(at(17 * DAY)) == 1
    assert await store.get_payload("shared") is None
    assert await db.fetchval("SELECT count(*) FROM webhookkit_payloads") == 0


async def test_a_drop_gives_way_to_a_busy_lock_and_claims_go_on(
    stores: Callable[..., PostgresStore], db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    store = await opened(stores, D0)
    await store.add_deliveries([payload("p1")], [delivery(f"old{i}", "p1") for i in range(5)])
    for i in range(5):
        await finish(store, f"old{i}", DeliveryStatus.SUCCESS, when=1)
    now = datetime.now(UTC)
    due = Delivery(
        id="due", payload_id="p1", webhook_id="w2", app_id="a1", event="order_created",
        created_at=now, next_try_at=now,
    )  # fmt: skip
    await store.add_deliveries([], [due])
    claimer = stores()

    # A long transaction that read the deliveries (a report, pg_dump) holds their lock.
    await db.execute("BEGIN")
    await db.fetchval("SELECT count(*) FROM webhookkit_deliveries")
    try:
        purged, claimed = await asyncio.gather(
            store.purge(at(30 * DAY)), claimer.claim_batch(now, limit=10, lease=LEASE)
        )
        assert [d.id for d in claimed.deliveries] == ["due"]
        # The drop gave up for now, and its day was not deleted row by row instead.
        assert purged == 0
        assert "could not drop 1 expired day partitions" in caplog.text
        assert await db.fetchval(f"SELECT count(*) FROM {day_name('deliveries', D0)}") == 5
    finally:
        await db.execute("COMMIT")
    assert await store.purge(at(30 * DAY)) == 5
    assert not await exists(db, day_name("deliveries", D0))


async def test_an_unpartitioned_database_is_refused_and_converted_explicitly(
    stores: Callable[..., PostgresStore], db: asyncpg.Connection, pg_dsn: str
) -> None:
    plain = stores(partitioned=False)
    recent = datetime.now(UTC) - timedelta(days=1)
    ordered = [
        replace(delivery(i), created_at=recent, next_try_at=recent, ordering_key="k")
        for i in ("o1", "o2")
    ]
    await plain.add_deliveries([payload("p1")], [delivery("d1"), *ordered])
    await finish(plain, "d1", DeliveryStatus.FAILED, when=5)
    before = await plain.list_deliveries()
    attempts = await plain.list_attempts("d1")
    await plain.aclose()
    assert not plain.partitioned

    refused = stores(partitioned=True)
    with pytest.raises(ConfigurationError, match="convert_to_partitioned") as caught:
        await refused.open()
    assert caught.value.field == "partitioned"
    assert (
        await db.fetchval(
            "SELECT relkind::text FROM pg_class WHERE oid = to_regclass('webhookkit_deliveries')"
        )
        == "r"
    )  # untouched

    await partitions.convert_to_partitioned(pg_dsn)
    await partitions.convert_to_partitioned(pg_dsn)  # already partitioned: nothing to do
    store = stores(partitioned=True)
    await store.open()
    assert store.partitioned
    assert await store.list_deliveries() == before
    assert await store.list_attempts("d1") == attempts
    assert await where(db, "deliveries", "id", "d1") == "webhookkit_deliveries_default"  # T0 is old
    assert await where(db, "deliveries", "id", "o1") == day_name("deliveries", recent.date())
    assert await where(db, "attempts", "id", "d1-1") == "webhookkit_attempts_default"
    # The ordering sequence goes on after the copied rows: o2 stays behind o1, o3 behind both.
    o3 = replace(ordered[0], id="o3")
    await store.add_deliveries([], [o3])
    claimed = await store.claim_due(datetime.now(UTC), limit=10, lease=LEASE)
    assert [d.id for d in claimed] == ["o1"]
    assert (
        sorted(
            str(r["relname"])
            for r in await db.fetch("SELECT relname FROM pg_class WHERE relname LIKE '%_old'")
        )
        == []
    )


async def test_the_store_url_turns_the_layout_on(pg_dsn: str, db: asyncpg.Connection) -> None:
    store = open_store(f"{pg_dsn}&partitioned=true")
    assert isinstance(store, PostgresStore)
    try:
        await store.open()
        assert store.partitioned
        assert "partitioned" not in repr(store)
    finally:
        await store.aclose()
    for bad in ("maybe", ""):
        with pytest.raises(ConfigurationError, match="true or false") as caught:
            open_store(f"{pg_dsn}&partitioned={bad}")
        assert caught.value.field == "store"
    assert partitions.split_url_option("postgresql://h/db?partitioned=1&sslmode=off") == (
        "postgresql://h/db?sslmode=off",
        True,
    )
    assert partitions.split_url_option("postgresql://h/db?partitioned=off") == (
        "postgresql://h/db",
        False,
    )
    assert partitions.split_url_option("postgresql://h/db") == ("postgresql://h/db", None)
    with pytest.raises(ConfigurationError) as wrong:
        PostgresStore(pg_dsn, partitioned="yes")  # type: ignore[arg-type]
    assert wrong.value.field == "partitioned"


def test_statements_of_an_unknown_shape_are_refused_loudly() -> None:
    from webhookkit.stores import _sql as q

    # The shared statements transform (a change to their shape shows here first).
    assert "delivery_created_at" in partitions.finish_attempt_sql()
    assert "delivery_created_at" in partitions.finish_many_sql()
    text, _ = q.purge_sql(q.POSTGRES, T0, None, timedelta(days=14))
    assert "webhookkit_attempts" in partitions.purge_rows_sql(text)
    with contextlib.suppress(AttributeError):
        partitions.purge_rows_sql.cache_clear()
    with pytest.raises(StoreError, match="shape"):
        partitions._with_delivery_time("UPDATE webhookkit_deliveries SET status = $2")
    with pytest.raises(StoreError, match="shape"):
        partitions.purge_rows_sql("DELETE FROM webhookkit_deliveries")
