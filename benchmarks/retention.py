"""Retention on PostgreSQL: purge finished deliveries by row deletion (``PostgresStore.purge``,
batches of PURGE_BATCH) while a worker keeps claiming, and measure the claim latency.

    .venv/bin/python -m benchmarks.retention --rows 1000000

Rows are made with one ``INSERT ... SELECT generate_series`` (finished successes 30 days old,
sharing 1,000 payloads) plus one pending delivery the claimer claims and releases in a loop.
Prints a Markdown table: purge time, and claim latency (p50, p99, max) with no purge running
and during the purge. Dropping time partitions is not built, so it has no row here.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta

from benchmarks._pg import create_database, start_cluster
from webhookkit import Delivery, Payload, PostgresStore

LEASE = timedelta(seconds=30)


async def _fill(dsn: str, rows: int, old: datetime) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """INSERT INTO webhookkit_payloads (id, event, body, created_at)
               SELECT 'p' || i, 'order_created', '\\x7b7d'::bytea, $1
               FROM generate_series(0, 999) AS i""",
            old,
        )
        await conn.execute(
            """INSERT INTO webhookkit_deliveries
                   (id, payload_id, webhook_id, app_id, event, created_at, status, attempts,
                    updated_at)
               SELECT 'd' || i, 'p' || (i % 1000), 'w1', 'a1', 'order_created', $1,
                      'success', 1, $1
               FROM generate_series(1, $2) AS i""",
            old,
            rows,
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _claims(store: PostgresStore, stop: asyncio.Event, latencies: list[float]) -> None:
    """Claim the one due delivery and hand it back, again and again, timing each claim."""
    while not stop.is_set():
        started = time.perf_counter()
        batch = await store.claim_batch(datetime.now(UTC), limit=10, lease=LEASE)
        latencies.append(time.perf_counter() - started)
        await store.release([d.id for d in batch.deliveries])


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(admin_dsn: str, rows: int) -> list[str]:
    _, dsn = await create_database(admin_dsn, "retention")
    now = datetime.now(UTC)
    await _fill(dsn, rows, now - timedelta(days=30))
    store = PostgresStore(dsn, min_size=2, max_size=4)
    await store.open()
    try:
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
        idle: list[float] = []
        stop = asyncio.Event()
        claimer = asyncio.create_task(_claims(store, stop, idle))
        await asyncio.sleep(2.0)
        stop.set()
        await claimer
        during: list[float] = []
        stop = asyncio.Event()
        claimer = asyncio.create_task(_claims(store, stop, during))
        started = time.perf_counter()
        deleted = await store.purge(datetime.now(UTC), keep_success=None)
        purge_s = time.perf_counter() - started
        stop.set()
        await claimer
    finally:
        await store.aclose()
    assert deleted == rows, (deleted, rows)
    return [
        "| method | rows | purge s | claims | claim p50 ms | claim p99 ms | claim max ms |",
        "|---|---|---|---|---|---|---|",
        f"| no purge (baseline) | - | - | {len(idle)} | {_ms(idle, 0.5):.2f} | "
        f"{_ms(idle, 0.99):.2f} | {1000 * max(idle):.2f} |",
        f"| row deletion (`purge`) | {rows:,} | {purge_s:.1f} | {len(during)} | "
        f"{_ms(during, 0.5):.2f} | {_ms(during, 0.99):.2f} | {1000 * max(during):.2f} |",
        f"(claims during the purge: mean {1000 * statistics.fmean(during):.2f} ms)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    cluster = start_cluster()
    try:
        lines = asyncio.run(run(cluster.dsn(), args.rows))
    finally:
        cluster.stop()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
