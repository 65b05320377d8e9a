"""Scenario 2, the PostgreSQL queue: webhookkit's claim + finish against pgqueuer.

Both drain the same number of no-op jobs from their own database on the same server.
webhookkit: ``kit.trigger`` queues the deliveries (fan-out to ``webhooks`` webhooks whose URLs
use the ``noop://`` scheme, a transport that accepts at once) before a second kit starts; timed
from that kit's start until its counters show every delivery finished, so what is measured is
claim, sign, "send", record and finish. pgqueuer: ``Queries.enqueue`` of the jobs in one bulk
call, then ``QueueManager.run(batch_size=B, mode=drain)`` with a no-op entrypoint, timed. For
each, ``pg_stat_statements`` is reset before the timed part and the statements its database ran
are divided by the jobs. With ``rounds`` the three sides take turns that many times, each on a
fresh database dropped after its run, and each side's median run is reported.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from benchmarks._kit import NoopTransport, make_kit, wait_counted
from benchmarks._pg import create_database, drop_database, reset_statements, statements


@dataclass(frozen=True)
class QueueRun:
    side: str
    jobs: int
    seconds: float
    statements: int
    #: Every round's rate (jobs/s) when this is the median of several rounds.
    rates: tuple[float, ...] = ()

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds

    @property
    def per_job(self) -> float:
        return self.statements / self.jobs


async def webhookkit_drain(admin_dsn: str, jobs: int, webhooks: int = 50) -> QueueRun:
    name, dsn = await create_database(admin_dsn, "wkq")
    producer = make_kit(store=dsn, extra_transports=[NoopTransport()], max_queued=None)
    try:
        await producer.store.open()
        app = await producer.apps.create("bench", permissions=["MANAGE_ORDERS"])
        for w in range(webhooks):
            await producer.webhooks.create(
                app, target_url=f"noop://sink/{w}", events=["ORDER_CREATED"], secret_key="s"
            )
        queued = 0
        for n in range(-(-jobs // webhooks)):
            queued += len(await producer.trigger("ORDER_CREATED", payload={"n": n}))
    finally:
        await producer.aclose()
    noop = NoopTransport()
    kit = make_kit(store=dsn, extra_transports=[noop], max_queued=None)
    try:
        # Connected, signing keys loaded and configuration cached before the clock starts:
        # the drain is timed, not a process's start-up (an RSA key takes tens of ms to load).
        await kit.open()
        await reset_statements(admin_dsn)
        started = time.perf_counter()
        await kit.start()
        await wait_counted(kit, queued)
        elapsed = time.perf_counter() - started
        count = await statements(admin_dsn, name)
        if kit.stats.successes != queued or noop.sent != queued:
            raise RuntimeError(f"webhookkit: {kit.stats.successes} of {queued} succeeded")
    finally:
        await kit.aclose()
        await drop_database(admin_dsn, dsn)  # no autovacuum of it in later rounds
    return QueueRun("webhookkit PostgresStore", queued, elapsed, count)


async def pgqueuer_drain(admin_dsn: str, jobs: int, batch_size: int) -> QueueRun:
    import asyncpg
    from pgqueuer import Job, QueueManager
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    name, dsn = await create_database(admin_dsn, "pgq", migrated=False)
    conn = await asyncpg.connect(dsn)
    try:
        queries = Queries(AsyncpgDriver(conn))
        await queries.install()
        await queries.enqueue(["noop"] * jobs, [b"{}"] * jobs, [0] * jobs)
        qm = QueueManager(queries)
        done = 0

        @qm.entrypoint("noop")
        async def noop(job: Job) -> None:
            nonlocal done
            done += 1

        await reset_statements(admin_dsn)
        started = time.perf_counter()
        await qm.run(
            batch_size=batch_size,
            mode=QueueExecutionMode.drain,
            dequeue_timeout=timedelta(seconds=0.1),
            log_aggregation_interval=timedelta(0),
        )
        elapsed = time.perf_counter() - started
        count = await statements(admin_dsn, name)
        left: Any = await conn.fetchval("SELECT count(*) FROM pgqueuer")
    finally:
        await conn.close()
        await drop_database(admin_dsn, dsn)
    if done != jobs or left:
        raise RuntimeError(f"pgqueuer: {done} of {jobs} jobs ran, {left} left queued")
    return QueueRun(f"pgqueuer, batch {batch_size}", jobs, elapsed, count)


def pgqueuer_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("pgqueuer")
    except Exception:
        return None


def _median(runs: list[QueueRun]) -> QueueRun:
    """The run of median rate (the lower middle one of an even count), with every rate."""
    ordered = sorted(runs, key=lambda r: r.rate)
    middle = ordered[(len(ordered) - 1) // 2]
    return replace(middle, rates=tuple(r.rate for r in runs))


async def run(admin_dsn: str, jobs: int, rounds: int = 1) -> list[QueueRun]:
    """Each side drains ``rounds`` times, the sides taking turns (the machine's speed drifts
    over a minute); each side's median run is returned, webhookkit first."""

    def pgqueuer_side(batch: int) -> Callable[[], Awaitable[QueueRun]]:
        return lambda: pgqueuer_drain(admin_dsn, jobs, batch)

    sides: list[Callable[[], Awaitable[QueueRun]]] = [lambda: webhookkit_drain(admin_dsn, jobs)]
    if pgqueuer_version() is not None:
        sides += [pgqueuer_side(10), pgqueuer_side(100)]
    done: list[list[QueueRun]] = [[] for _ in sides]
    for _ in range(rounds):
        for side, runs in zip(sides, done, strict=True):
            runs.append(await side())
    return [_median(runs) for runs in done]
