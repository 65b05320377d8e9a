"""Scenario 5, memory per pending delivery: ``pending`` triggers queued in the memory store.

One webhook, one small distinct body per trigger (each delivery brings its own payload row,
the worst case: fan-out shares one), scheduler not started so all stay pending. Measured as
the growth of the process's resident set (``VmRSS`` in /proc/self/status) and of the Python
heap (``tracemalloc``, on a second kit, where tracing slows triggers about tenfold: a tenth as
many deliveries), each against the same kit before its first measured trigger, divided by
the deliveries.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from dataclasses import dataclass

from benchmarks._kit import count_deliveries, make_kit
from webhookkit import DeliveryStatus, WebhookKit


@dataclass(frozen=True)
class PendingRun:
    pending: int
    rss_per_delivery: float
    traced: int
    heap_per_delivery: float
    triggers_per_second: float


def _rss() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def _kit() -> WebhookKit:
    kit = make_kit(max_queued=None)
    app = await kit.apps.create("bench", permissions=["MANAGE_ORDERS"])
    await kit.webhooks.create(
        app, target_url="https://erp.example.com/hooks", events=["ORDER_CREATED"]
    )
    await kit.trigger("ORDER_CREATED", payload={"order": {"number": "warm"}})
    return kit


async def _fill(kit: WebhookKit, count: int) -> None:
    for n in range(count):
        await kit.trigger(
            "ORDER_CREATED", payload={"order": {"id": "T3JkZXI6MTIz", "number": str(n)}}
        )


async def _check(kit: WebhookKit, count: int) -> None:
    pending = await count_deliveries(kit, DeliveryStatus.PENDING)
    if pending != count + 1:  # + the warm-up trigger
        raise RuntimeError(f"pending: {pending} of {count + 1} deliveries pending")


async def run(pending: int) -> PendingRun:
    kit = await _kit()
    gc.collect()
    before = _rss()
    started = time.perf_counter()
    await _fill(kit, pending)
    rate = pending / (time.perf_counter() - started)
    gc.collect()
    rss = (_rss() - before) / pending
    await _check(kit, pending)
    await kit.aclose()
    del kit
    gc.collect()

    traced = max(1, pending // 10)
    kit = await _kit()
    gc.collect()
    tracemalloc.start()
    try:
        heap_before, _ = tracemalloc.get_traced_memory()
        await _fill(kit, traced)
        gc.collect()
        heap_after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    await _check(kit, traced)
    await kit.aclose()
    return PendingRun(pending, rss, traced, (heap_after - heap_before) / traced, rate)
