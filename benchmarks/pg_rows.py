"""What one delivery costs the PostgreSQL store's claim and finish, and how much of it is the
deliveries table's secondary indexes.

    .venv/bin/python -m benchmarks.pg_rows

Each variant gets its own database with ``--rows`` pending deliveries (100 webhooks, a payload
per 1,000), then claims them ``--claim`` at a time with ``PostgresStore.claim_batch`` and
finishes each claim with ``finish_many`` in batches of 100 (successes), one call after
another on one connection, as the scheduler's claim loop and finisher do. Printed: the wall
time per delivery of the claims and of the finishes (statement, commit and the client's
encoding), for the schema as it is and with secondary indexes dropped. The dropped indexes
serve listing and purging, not the queue; the figures say what they cost the queue.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from benchmarks._pg import create_database, drop_database, start_cluster
from webhookkit import Delivery, DeliveryStatus, Payload, PostgresStore
from webhookkit.delivery.records import Attempt, AttemptResult, AttemptStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LEASE = timedelta(minutes=5)
# Since migration 13 the deliveries table has these three secondary indexes and no other.
VARIANTS: tuple[tuple[str, ...], ...] = (
    (),
    ("created", "webhook"),
    ("created", "webhook", "payload"),
)


async def _fill(store: PostgresStore, rows: int) -> None:
    for block in range(-(-rows // 1000)):
        pid = f"p{block}"
        payload = Payload(id=pid, event="order_created", body=b'{"id": 1}', created_at=T0)
        count = min(1000, rows - block * 1000)
        deliveries = [
            Delivery(
                id=f"d{block}-{n}",
                payload_id=pid,
                webhook_id=f"w{n % 100}",
                app_id="a1",
                event="order_created",
                created_at=T0,
                next_try_at=T0,
            )
            for n in range(count)
        ]
        await store.add_deliveries([payload], deliveries)


def _success(delivery: Delivery, now: datetime) -> AttemptResult:
    attempt = Attempt(
        id=f"a-{delivery.id}",
        delivery_id=delivery.id,
        number=1,
        created_at=now,
        status=AttemptStatus.SUCCESS,
        duration=0.004,
        response_status_code=200,
        response_excerpt="ok",
        request_headers=(("Content-Type", "application/json"), ("Saleor-Event", "order_created")),
        response_headers=(("Content-Length", "2"),),
    )
    return AttemptResult(delivery.id, attempt, DeliveryStatus.SUCCESS, None, now)


async def variant(admin_dsn: str, dropped: tuple[str, ...], rows: int, claim: int) -> str:
    """One database, ``rows`` deliveries claimed and finished; a table row of the figures."""
    _, dsn = await create_database(admin_dsn, "rows")
    store = PostgresStore(dsn, max_size=2, listen=False)
    try:
        await store.open()
        conn = await asyncpg.connect(dsn)
        try:
            for name in dropped:
                await conn.execute(f"DROP INDEX webhookkit_deliveries_{name}")
            await _fill(store, rows)
            await conn.execute("VACUUM ANALYZE webhookkit_deliveries")
        finally:
            await conn.close()
        now = T0 + timedelta(seconds=1)
        claiming = finishing = 0.0
        done = 0
        while True:
            started = time.perf_counter()
            batch = await store.claim_batch(now, limit=claim, lease=LEASE)
            claimed = time.perf_counter()
            if not batch.deliveries:
                break
            results = [_success(d, now) for d in batch.deliveries]
            for first in range(0, len(results), 100):
                await store.finish_many(results[first : first + 100])
            claiming += claimed - started
            finishing += time.perf_counter() - claimed
            done += len(results)
        if done != rows or await store.count_pending() != 0:
            raise RuntimeError(f"pg_rows: {done} of {rows} deliveries claimed and finished")
    finally:
        await store.aclose()
        await drop_database(admin_dsn, dsn)
    label = ", ".join(dropped) or "none (the schema as it is)"
    return f"| {label} | {rows:,} | {claiming / done * 1e6:.0f} | {finishing / done * 1e6:.0f} |"


async def run(rows: int, claim: int, rounds: int) -> list[str]:
    cluster = start_cluster()
    try:
        lines = [
            "| secondary indexes dropped | deliveries | claim µs/delivery | finish µs/delivery |",
            "|---|---:|---:|---:|",
        ]
        for _ in range(rounds):  # interleaved: the machine's speed drifts between variants
            for dropped in VARIANTS:
                lines.append(await variant(cluster.dsn(), dropped, rows, claim))
        return lines
    finally:
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pg_rows", description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--claim", type=int, default=200, help="deliveries per claim")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    print("\n".join(asyncio.run(run(args.rows, args.claim, args.rounds))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
