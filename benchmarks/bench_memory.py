"""Memory per pending delivery in the default memory store.

Queues N deliveries (one trigger each, a small JSON body, scheduler not running so they all
stay pending) and measures the growth of the Python heap with tracemalloc, against a baseline
of the same kit before any trigger. Reports bytes per delivery (payload row + delivery row +
index entries) and the ratio to the 1 KB budget.

Run: .venv/bin/python -m benchmarks.bench_memory [--deliveries 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import tracemalloc

from webhookkit import DeliveryQuery, DeliveryStatus, WebhookKit

BUDGET = 1024


async def measure(count: int) -> tuple[float, float]:
    kit = WebhookKit(max_queued=None)
    app = await kit.apps.create("bench", permissions=["MANAGE_ORDERS"])
    await kit.webhooks.create(
        app, target_url="https://erp.example.com/hooks", events=["ORDER_CREATED"]
    )
    body = {"order": {"id": "T3JkZXI6MTIz", "number": "123", "total": "42.00"}}
    await kit.trigger("ORDER_CREATED", payload=body)  # warm every code path once
    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    started = time.perf_counter()
    for _ in range(count):
        await kit.trigger("ORDER_CREATED", payload=body)
    elapsed = time.perf_counter() - started
    gc.collect()
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    pending = await kit.list_deliveries(
        DeliveryQuery(status=DeliveryStatus.PENDING, limit=count + 1)
    )
    assert len(pending) == count + 1, len(pending)
    await kit.aclose()
    return (after - before) / count, count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deliveries", type=int, default=100_000)
    args = parser.parse_args()
    per_delivery, rate = asyncio.run(measure(args.deliveries))
    print(f"pending deliveries        {args.deliveries:>10,}")
    print(f"heap growth per delivery  {per_delivery:>10,.0f} B")
    print(f"budget                    {BUDGET:>10,} B")
    print(f"ratio to budget           {per_delivery / BUDGET:>10.2f}x")
    print(f"triggers/s (traced)       {rate:>10,.0f}")


if __name__ == "__main__":
    main()
