"""Retention on PostgreSQL: purge 1,000,000 finished deliveries by row deletion and by dropping
day partitions, while a worker keeps claiming, and measure the claim latency.

    .venv/bin/python -m benchmarks.retention --rows 1000000

Two databases get the same rows, made with one ``INSERT ... SELECT generate_series`` each:
finished successes created over 30 days (``--days``), 16 to 45 days old, on 1,000 shared
payloads, plus one pending delivery that the claimer claims and releases in a loop. The first
database has the plain layout, purged by ``PostgresStore.purge`` deleting rows (batches of
PURGE_BATCH, one transaction each); the second is partitioned (``PostgresStore(dsn,
partitioned=True)``, one partition per day), where the same ``purge`` drops the day partitions.
Prints a Markdown table: purge time, the deliveries table's size on disk before and after, and
the claim latency (p50, p99, max) for 2 s before the purge, during it and for 2 s after it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from benchmarks._pg import create_database, start_cluster
from webhookkit import Delivery, Payload, PostgresStore
from webhookkit.stores import partitions

LEASE = timedelta(seconds=30)
#: Days the rows are spread over (``--days``), one partition each.
DAYS = 30
#: The newest rows are this old: past the 14 days failures are kept, so every day can go.
YOUNGEST = timedelta(days=16)
#: The deliveries table with its indexes (and every partition's, when partitioned).
SIZE = (
    "SELECT pg_total_relation_size('webhookkit_deliveries') + coalesce(("
    "SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('webhookkit_deliveries') "
    "WHERE relid <> 'webhookkit_deliveries'::regclass), 0)"
)


async def _fill(dsn: str, rows: int, oldest: datetime, days: int) -> None:
    """``rows`` successes spread evenly over ``days`` days from ``oldest`` (finished a minute
    after creation), on 1,000 shared payloads."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """INSERT INTO webhookkit_payloads (id, event, body, created_at)
               SELECT 'p' || i, 'order_created', '\\x7b7d'::bytea, $1
               FROM generate_series(0, 999) AS i""",
            oldest,
        )
        await conn.execute(
            f"""INSERT INTO webhookkit_deliveries
                   (id, payload_id, webhook_id, app_id, event, created_at, status, attempts,
                    updated_at)
               SELECT 'd' || i, 'p' || (i % 1000), 'w1', 'a1', 'order_created', t, 'success',
                      1, t + interval '1 minute'
               FROM generate_series(1, $2::int) AS i,
                    LATERAL (SELECT $1::timestamptz + (i % {days}) * interval '1 day'
                                       + (i / {days}) % 86000 * interval '1 second' AS t) AS s""",
            oldest,
            rows,
        )
        await conn.execute("VACUUM ANALYZE")
        # Flush the fill's WAL now, so no checkpoint of it runs during the measurements.
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def _size_mb(dsn: str) -> float:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return float(await conn.fetchval(SIZE)) / 1e6
    finally:
        await conn.close()


async def _claims(store: PostgresStore, stop: asyncio.Event, latencies: list[float]) -> None:
    """Claim the one due delivery and hand it back, again and again, timing each claim."""
    while not stop.is_set():
        started = time.perf_counter()
        batch = await store.claim_batch(datetime.now(UTC), limit=10, lease=LEASE)
        latencies.append(time.perf_counter() - started)
        await store.release([d.id for d in batch.deliveries])


async def _claim_for(store: PostgresStore, seconds: float) -> list[float]:
    latencies: list[float] = []
    stop = asyncio.Event()
    claimer = asyncio.create_task(_claims(store, stop, latencies))
    await asyncio.sleep(seconds)
    stop.set()
    await claimer
    return latencies


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Side:
    """One layout's run."""

    idle: list[float]
    during: list[float]
    after: list[float]
    purge_s: float
    deleted: int
    before_mb: float
    after_mb: float


async def _measure(store: PostgresStore, dsn: str) -> Side:
    now = datetime.now(UTC)
    await store.add_deliveries(
        [Payload(id="live", event="order_created", body=b"{}", created_at=now)],
        [
            Delivery(
                id="due",
                payload_id="live",
                webhook_id="w2",
                app_id="a1",
                event="order_created",
                created_at=now,
                next_try_at=now,
            )
        ],
    )
    before = await _size_mb(dsn)
    idle = await _claim_for(store, 2.0)
    during: list[float] = []
    stop = asyncio.Event()
    claimer = asyncio.create_task(_claims(store, stop, during))
    started = time.perf_counter()
    deleted = await store.purge(datetime.now(UTC), keep_success=None)
    purge_s = time.perf_counter() - started
    stop.set()
    await claimer
    after = await _claim_for(store, 2.0)
    return Side(idle, during, after, purge_s, deleted, before, await _size_mb(dsn))


async def run(admin_dsn: str, rows: int, days: int = DAYS) -> list[str]:
    oldest = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - (
        YOUNGEST + timedelta(days=days - 1)
    )
    # Row deletion: the plain layout.
    _, dsn = await create_database(admin_dsn, "retention")
    await _fill(dsn, rows, oldest, days)
    store = PostgresStore(dsn, min_size=2, max_size=4)
    await store.open()
    try:
        plain = await _measure(store, dsn)
    finally:
        await store.aclose()
    # Partition drop: the same rows in one partition per day.
    _, dsn = await create_database(admin_dsn, "retention_part", migrated=False)
    store = PostgresStore(dsn, min_size=2, max_size=4, partitioned=True)
    await store.open()
    try:
        made = await partitions.create_partitions(
            store, oldest.date(), (oldest + timedelta(days=days - 1)).date()
        )
        assert len(made) == days, made
        await _fill(dsn, rows, oldest, days)
        parted = await _measure(store, dsn)
        left = [name for name, _ in await partitions.list_partitions(store)]
    finally:
        await store.aclose()
    assert plain.deleted == rows, (plain.deleted, rows)
    assert parted.deleted == rows, (parted.deleted, rows)
    assert not set(made) & set(left), "a day partition was not dropped"

    def line(label: str, side: Side, values: list[float], purge: bool) -> str:
        sizes = f"{side.before_mb:.0f} → {side.after_mb:.0f}" if purge else "-"
        return (
            f"| {label} | {f'{rows:,}' if purge else '-'} | "
            f"{f'{side.purge_s:.1f}' if purge else '-'} | {sizes} | {len(values):,} | "
            f"{_ms(values, 0.5):.2f} | {_ms(values, 0.99):.2f} | {1000 * max(values):.2f} |"
        )

    return [
        "| layout, method | rows | purge s | deliveries MB | claims | claim p50 ms "
        "| claim p99 ms | claim max ms |",
        "|---|---|---|---|---|---|---|---|",
        line("plain, before the purge (baseline)", plain, plain.idle, False),
        line("plain, row deletion (`purge`)", plain, plain.during, True),
        line("plain, after the purge", plain, plain.after, False),
        line(
            f"partitioned, before the purge ({len(made) + len(left)} partitions)",
            parted,
            parted.idle,
            False,
        ),
        line(f"partitioned, {days} partitions dropped (`purge`)", parted, parted.during, True),
        line(f"partitioned, after the drop ({len(left)} partitions)", parted, parted.after, False),
        f"(claims during the purge, mean: row deletion {1000 * statistics.fmean(plain.during):.2f}"
        f" ms, partition drop {1000 * statistics.fmean(parted.during):.2f} ms)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=DAYS, help="days of partitions (30)")
    args = parser.parse_args()
    cluster = start_cluster()
    try:
        lines = asyncio.run(run(cluster.dsn(), args.rows, args.days))
    finally:
        cluster.stop()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
