"""PostgreSQL store throughput with 1, 2 and 4 concurrent claimers.

Run: ``python -m benchmarks.bench_stores`` (under 90 s). It starts its own PostgreSQL with
initdb/pg_ctl in a temporary directory (default durability: fsync and synchronous commit on),
queues deliveries, then lets N of four worker *processes* (as separate machines would; started
once, each with its own pool) loop ``claim_due`` -> ``finish_attempt`` until nothing is left,
and reports claims+finishes per second and the ratio to one worker. Two scenarios:

- ``store-bound``: finishing costs nothing, so the store (and the CPUs it shares with the
  workers) is the only limit;
- ``25 ms sends``: each delivery waits 25 ms as an HTTP send would, so a worker is bound by
  its own concurrency and more workers help as long as claimers do not block each other.

After each run it checks that every delivery succeeded after exactly one attempt.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.process
import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.queues import Queue
from pathlib import Path
from typing import TYPE_CHECKING

from webhookkit import Attempt, AttemptStatus, Delivery, DeliveryStatus, Payload
from webhookkit.stores import PostgresStore

if TYPE_CHECKING:
    from stores.pgcluster import PostgresCluster

WORKER_COUNTS = (1, 2, 4)
CLAIM_BATCH = 20
#: Sends (finishes) a worker keeps in flight, as a scheduler sending concurrently would.
IN_FLIGHT = 4
LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class Scenario:
    name: str
    deliveries: int
    send_seconds: float


SCENARIOS = (Scenario("store-bound", 1500, 0.0), Scenario("25 ms sends", 400, 0.025))


def _cluster_class() -> type[PostgresCluster]:
    # The launcher lives with the store tests; one implementation serves both.
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from stores.pgcluster import PostgresCluster

    return PostgresCluster


async def _worker(dsn: str, commands: Queue[float | None], results: Queue[int]) -> None:
    """One claimer: on each command (a send time) drain the due deliveries, report the count."""
    store = PostgresStore(dsn, min_size=IN_FLIGHT, max_size=IN_FLIGHT, listen=False)
    await store.open()
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def send(delivery: Delivery, send_seconds: float) -> None:
        async with gate:
            if send_seconds:
                await asyncio.sleep(send_seconds)
            now = datetime.now(UTC)
            attempt = Attempt(
                id=uuid.uuid4().hex,
                delivery_id=delivery.id,
                number=delivery.attempts + 1,
                created_at=now,
                status=AttemptStatus.SUCCESS,
                duration=send_seconds,
                response_status_code=200,
                response_excerpt="ok",
                request_headers=(("Saleor-Event", delivery.event),),
            )
            await store.finish_attempt(
                delivery.id, attempt, status=DeliveryStatus.SUCCESS, next_try_at=None, now=now
            )

    try:
        results.put(0)  # connected and ready
        while (send_seconds := await asyncio.to_thread(commands.get)) is not None:
            done = 0
            while batch := await store.claim_due(datetime.now(UTC), limit=CLAIM_BATCH, lease=LEASE):
                await asyncio.gather(*(send(d, send_seconds) for d in batch))
                done += len(batch)
            results.put(done)
    finally:
        await store.aclose()


def _worker_process(dsn: str, commands: Queue[float | None], results: Queue[int]) -> None:
    asyncio.run(_worker(dsn, commands, results))


@dataclass(frozen=True)
class Workers:
    """Claimer processes started once and reused by every run, so runs time only the work."""

    commands: list[Queue[float | None]]
    results: Queue[int]
    processes: Sequence[multiprocessing.process.BaseProcess]

    @classmethod
    def start(cls, dsn: str, count: int) -> Workers:
        ctx = multiprocessing.get_context("spawn")
        results: Queue[int] = ctx.Queue()
        commands: list[Queue[float | None]] = [ctx.Queue() for _ in range(count)]
        processes = [
            ctx.Process(target=_worker_process, args=(dsn, c, results), daemon=True)
            for c in commands
        ]
        for proc in processes:
            proc.start()
        for _ in processes:
            results.get(timeout=120)
        return cls(commands, results, processes)

    def drain(self, workers: int, send_seconds: float) -> tuple[int, float]:
        """Let the first ``workers`` processes drain the queue; (deliveries, seconds)."""
        started = time.monotonic()
        for queue in self.commands[:workers]:
            queue.put(send_seconds)
        total = sum(self.results.get(timeout=300) for _ in range(workers))
        return total, time.monotonic() - started

    def stop(self) -> None:
        for queue in self.commands:
            queue.put(None)
        for proc in self.processes:
            proc.join(timeout=30)
            if proc.exitcode != 0:
                raise SystemExit(f"bench_stores: a worker exited with {proc.exitcode}")


async def _queue(dsn: str, count: int) -> None:
    store = PostgresStore(dsn, listen=False)
    try:
        await store.open()
        now = datetime.now(UTC)
        for start in range(0, count, 500):
            payload = Payload(
                id=uuid.uuid4().hex, event="order_created", body=b'{"order": 1}', created_at=now
            )
            deliveries = [
                Delivery(
                    id=uuid.uuid4().hex,
                    payload_id=payload.id,
                    webhook_id=f"w{i % 10}",
                    app_id="a1",
                    event="order_created",
                    created_at=now,
                    next_try_at=now,
                )
                for i in range(start, min(start + 500, count))
            ]
            await store.add_deliveries([payload], deliveries)
    finally:
        await store.aclose()


async def _check_and_reset(dsn: str, count: int) -> None:
    """Every delivery succeeded after exactly one attempt: no claim was handed out twice."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        stats = await conn.fetchrow(
            "SELECT count(*) AS n, count(*) FILTER (WHERE status = 'success') AS ok, "
            "max(attempts) AS most FROM webhookkit_deliveries"
        )
        attempts = await conn.fetchval("SELECT count(*) FROM webhookkit_attempts")
        if (stats["n"], stats["ok"], stats["most"], attempts) != (count, count, 1, count):
            raise SystemExit(f"bench_stores: inconsistent {dict(stats)}, {attempts} attempts")
        await conn.execute(
            "TRUNCATE webhookkit_attempts, webhookkit_deliveries, webhookkit_payloads"
        )
    finally:
        await conn.close()


def _run(dsn: str, pool: Workers, scenario: Scenario, workers: int) -> float:
    """Claims+finishes per second of ``workers`` processes draining ``scenario``."""
    asyncio.run(_queue(dsn, scenario.deliveries))
    total, elapsed = pool.drain(workers, scenario.send_seconds)
    asyncio.run(_check_and_reset(dsn, scenario.deliveries))
    return total / elapsed


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main(argv: list[str] | None = None) -> dict[tuple[str, int], float]:
    """Start PostgreSQL, measure 1, 2 and 4 workers per scenario in interleaved rounds and
    print a table; returns the median rate by (scenario, workers)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_stores")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--no-fsync", action="store_true", help="fsync and synchronous_commit off")
    args = parser.parse_args(argv)
    settings = {"fsync": "off", "synchronous_commit": "off"} if args.no_fsync else {}
    load = os.getloadavg()[0]
    began = time.monotonic()
    cluster = _cluster_class().start(settings=settings)
    rates: dict[tuple[str, int], list[float]] = {
        (s.name, n): [] for s in SCENARIOS for n in WORKER_COUNTS
    }
    try:
        dsn = cluster.dsn()
        asyncio.run(_queue(dsn, 0))  # create the schema once
        pool = Workers.start(dsn, max(WORKER_COUNTS))
        try:
            for _ in range(args.rounds):
                for scenario in SCENARIOS:
                    for n in WORKER_COUNTS:
                        rates[scenario.name, n].append(_run(dsn, pool, scenario, n))
        finally:
            pool.stop()
    finally:
        cluster.stop()
    medians = {key: _median(values) for key, values in rates.items()}
    print(
        f"PostgresStore, claim batch {CLAIM_BATCH}, {IN_FLIGHT} sends in flight per worker, "
        f"fsync {'off' if args.no_fsync else 'on'}, median of {args.rounds} interleaved "
        f"rounds; {os.cpu_count()} CPUs, load average {load:.2f} at start, "
        f"{time.monotonic() - began:.0f} s in all"
    )
    print(f"{'scenario':<12} {'workers':>7} {'claims+finishes/s':>18} {'ratio':>6}  runs")
    for scenario in SCENARIOS:
        base = medians[scenario.name, WORKER_COUNTS[0]]
        for n in WORKER_COUNTS:
            median = medians[scenario.name, n]
            runs = ", ".join(f"{r:.0f}" for r in rates[scenario.name, n])
            print(f"{scenario.name:<12} {n:>7} {median:>18.0f} {median / base:>6.2f}  {runs}")
    return medians


if __name__ == "__main__":
    main()
