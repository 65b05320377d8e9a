"""kill -9 between a batch's sends and the flush of their finishes: at-least-once still holds.

The worker writes finished attempts in batches (group commit). Here its flush interval is
long, so it is killed after every delivery was sent and answered but before any attempt was
written: the deliveries stay pending and leased, the lease runs out, and another worker sends
them again. Every delivery arrives, none stays pending, each has exactly one attempt on record.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from engine.procs import ROOT, CountingReceiver, wait_until
from webhookkit import DeliveryStatus, PostgresStore, WebhookKit

WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import timedelta
    from webhookkit import (
        DeliveryConfig, HTTPTransport, IsolationConfig, PostgresStore, WebhookKit,
    )

    async def main(dsn, flush):
        kit = WebhookKit(
            store=PostgresStore(dsn),
            transports=[HTTPTransport(allow_addresses=["127.0.0.1/32"])],
            delivery=DeliveryConfig(
                concurrency=100, flush_interval=flush, lease=timedelta(seconds=3),
                poll_interval=0.2, isolation=IsolationConfig(per_endpoint=100),
            ),
            retention=None,
        )
        async with kit:
            print("worker ready", flush=True)
            await asyncio.Event().wait()

    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
    """
)


async def start_worker(dsn: str, flush: float, log: Path) -> asyncio.subprocess.Process:
    out = log.open("wb")
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            dsn,
            str(flush),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        out.close()
    await wait_until(
        lambda: "worker ready" in log.read_text(errors="replace") or process.returncode is not None,
        timeout=60,
        what="the worker to start",
    )
    if process.returncode is not None:
        raise AssertionError(await asyncio.to_thread(log.read_text, errors="replace"))
    return process


async def test_kill_between_sends_and_their_flushed_finish_loses_nothing(
    pg_dsn: str, counting_receiver: CountingReceiver, tmp_path: Path
) -> None:
    store = PostgresStore(pg_dsn, listen=False)
    queue = WebhookKit(store=store, retention=None)
    processes: list[asyncio.subprocess.Process] = []
    try:
        await store.open()
        app = await queue.apps.create("erp", permissions=["MANAGE_ORDERS"])
        await queue.webhooks.create(
            app, target_url=counting_receiver.url, events=["ORDER_CREATED"], secret_key="k"
        )
        ids = [i for n in range(40) for i in await queue.trigger("ORDER_CREATED", payload={"n": n})]

        # 40 results never fill a flush batch (half of 100 slots), the endpoint may take all
        # 40 at once, and the interval is long: every attempt of the first worker is still
        # waiting in memory when it dies.
        first = await start_worker(pg_dsn, 10.0, tmp_path / "first.log")
        processes.append(first)
        await wait_until(lambda: counting_receiver.distinct == 40, timeout=60, what="40 sends")
        assert await store.count_pending() == 40, "nothing may be recorded before the flush"
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()

        second = await start_worker(pg_dsn, 0.005, tmp_path / "second.log")
        processes.append(second)

        async def drained() -> bool:
            return await store.count_pending() == 0

        await wait_until(drained, timeout=60, what="the second worker to finish")
        done = [await store.get_delivery(i) for i in ids]
        assert all(d is not None and d.status is DeliveryStatus.SUCCESS for d in done)
        # Sent twice (at-least-once), recorded once: the killed worker's attempts were lost
        # with it, the second worker's are on record.
        assert counting_receiver.counts == {n: 2 for n in range(40)}
        attempts = [len(await store.list_attempts(i)) for i in ids]
        assert attempts == [1] * 40
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
        await queue.aclose()
        await store.aclose()
