"""Scenario 3, worker processes: 1, 2 and 4 workers draining one PostgreSQL store.

Each worker is a separate process (``benchmarks._worker``: the CLI worker's kit plus the
``noop://`` transport), its kit started and connected before the clock starts. Timed from the first
``kit.trigger`` of a producer kit (fan-out to ``webhooks`` webhooks) until the store lists no
pending delivery; then every delivery must be a success (and, over HTTP, counted by the
receiver). Two kinds of sends:

- 25 ms sends: HTTP to a receiver that answers each request 25 ms late; each worker keeps at
  most ``concurrency`` sends in flight, so one worker is bound by its sends (at most
  concurrency / 25 ms) and more workers help as long as the store keeps up;
- store-bound: the ``noop://`` transport, so only the store and the kits' own work count.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks._kit import NoopTransport, count_deliveries, make_kit
from benchmarks._pg import create_database
from benchmarks._receiver import read_stats
from webhookkit import DeliveryQuery, DeliveryStatus

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class WorkerRun:
    kind: str
    workers: int
    deliveries: int
    seconds: float
    concurrency: int

    @property
    def rate(self) -> float:
        return self.deliveries / self.seconds


class WorkerPool:
    """Worker processes on one store, started once; each run starts the kits of some."""

    def __init__(self, size: int) -> None:
        argv = [sys.executable, "-m", "benchmarks._worker", "--poll", "0.2"]
        self._procs = [
            subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, text=True
            )
            for _ in range(size)
        ]
        self._active: list[subprocess.Popen[str]] = []

    @staticmethod
    async def _tell(procs: list[subprocess.Popen[str]], line: str, answer: str) -> None:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
        for proc in procs:
            assert proc.stdout is not None
            got = await asyncio.to_thread(proc.stdout.readline)
            if got.strip() != answer:
                raise RuntimeError(f"worker: {line!r} answered {got!r}, not {answer!r}")

    async def start(self, count: int, concurrency: int, dsn: str) -> None:
        """Start kits on ``dsn`` in ``count`` workers; returns once each is claiming."""
        self._active = self._procs[:count]
        await self._tell(self._active, f"start {concurrency} {dsn}", "worker ready")

    async def stop(self) -> None:
        await self._tell(self._active, "stop", "worker stopped")
        self._active = []

    def close(self) -> None:
        for proc in self._procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self._procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()


async def workers_run(
    pool: WorkerPool,
    admin_dsn: str,
    workers: int,
    deliveries: int,
    concurrency: int,
    receiver_url: str | None,
    webhooks: int = 20,
) -> WorkerRun:
    """One run of ``workers`` of the pool on a fresh database of the server at ``admin_dsn``.

    ``receiver_url``: send over HTTP to it (the slow receiver); None: the no-op transport.
    """
    _, dsn = await create_database(admin_dsn, "wkw")
    producer = make_kit(store=dsn, extra_transports=[NoopTransport()], max_queued=None)
    try:
        await producer.store.open()  # creates the schema before the workers connect
        app = await producer.apps.create("bench", permissions=["MANAGE_ORDERS"])
        base = f"{receiver_url}/hook" if receiver_url else "noop://sink"
        for w in range(webhooks):
            await producer.webhooks.create(
                app, target_url=f"{base}/{w}", events=["ORDER_CREATED"], secret_key="s"
            )
        await pool.start(workers, concurrency, dsn)
        try:
            before = read_stats(receiver_url) if receiver_url else None
            pending = DeliveryQuery(status=DeliveryStatus.PENDING, limit=1)
            started = time.perf_counter()
            queued = 0
            for n in range(-(-deliveries // webhooks)):
                queued += len(await producer.trigger("ORDER_CREATED", payload={"n": n}))
            while await producer.list_deliveries(pending):
                if time.perf_counter() - started > 300:
                    raise TimeoutError("workers: deliveries still pending after 300 s")
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
        finally:
            await pool.stop()
        done = await count_deliveries(producer, DeliveryStatus.SUCCESS)
        if done != queued:
            raise RuntimeError(f"workers: {done} of {queued} deliveries succeeded")
        if receiver_url and before is not None:
            got = read_stats(receiver_url).count - before.count
            if got != queued:
                raise RuntimeError(f"workers: the receiver counted {got} of {queued}")
    finally:
        await producer.aclose()
    kind = "25 ms sends" if receiver_url else "store-bound"
    return WorkerRun(kind, workers, queued, elapsed, concurrency)
