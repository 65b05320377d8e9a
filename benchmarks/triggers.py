"""Scenario 4, trigger latency: what ``kit.trigger`` costs as webhooks are added, per store.

One kit per store, scheduler not started (deliveries stay queued, so only the trigger is
timed: finding the webhooks, building and writing the deliveries). In order:

1. one webhook subscribed to PRODUCT_UPDATED: the baseline (10,000 others absent);
2. 1, 10, 100, 1,000 webhooks subscribed to ORDER_CREATED (``trigger("ORDER_CREATED")``);
3. webhooks of other events added until 10,000 are unrelated to PRODUCT_UPDATED, and the
   PRODUCT_UPDATED trigger timed again: one subscribed among 10,000 unrelated.

p50 and p99 of ``triggers`` calls each. On PostgreSQL, ``pg_stat_statements`` counts the SELECTs
on ``webhookkit_webhooks``/``webhookkit_apps`` during the timed triggers (configuration reads
on the hot path); the other stores expose no such counter (reported as "n/a").
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass

from benchmarks._kit import make_kit
from benchmarks._pg import config_selects, create_database, reset_statements
from webhookkit import WebhookKit

PERMISSIONS = ["MANAGE_ORDERS", "MANAGE_PRODUCTS", "MANAGE_USERS", "MANAGE_CHECKOUTS"]
UNRELATED_EVENTS = ["CUSTOMER_CREATED", "CHECKOUT_CREATED", "ORDER_UPDATED"]
PAYLOAD = b'{"order":{"id":"T3JkZXI6MQ==","number":"1"}}'


@dataclass(frozen=True)
class TriggerRun:
    store: str
    case: str  # "1", "10", "100", "1000", "1 among N unrelated", "1, others absent"
    subscribed: int
    others: int
    samples: list[float]  # seconds
    config_reads: float | None  # per trigger, None where not countable

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def _time(
    kit: WebhookKit, event: str, count: int, expect: int, pg: tuple[str, str] | None
) -> tuple[list[float], float | None]:
    await kit.trigger(event, payload=PAYLOAD)  # warm: first statement preparations
    if pg is not None:
        await reset_statements(pg[0])
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        ids = await kit.trigger(event, payload=PAYLOAD)
        samples.append(time.perf_counter() - started)
        if len(ids) != expect:
            raise RuntimeError(f"trigger {event}: {len(ids)} deliveries, expected {expect}")
    reads = None if pg is None else await config_selects(*pg) / count
    return samples, reads


async def _add(kit: WebhookKit, apps: list[object], event: str, count: int, start: int) -> None:
    for n in range(start, start + count):
        await kit.webhooks.create(
            apps[n % len(apps)],  # type: ignore[arg-type]
            target_url=f"https://hooks.example.com/{event.lower()}/{n}",
            events=[event],
            secret_key="s",
        )


async def run_store(
    kind: str,
    store: str,
    pg: tuple[str, str] | None,
    sizes: tuple[int, ...],
    unrelated: int,
    triggers: int,
) -> list[TriggerRun]:
    kit = make_kit(store=store, max_queued=None)
    runs: list[TriggerRun] = []
    try:
        await kit.store.open()
        apps: list[object] = [
            await kit.apps.create(f"app{a}", permissions=PERMISSIONS) for a in range(10)
        ]
        await _add(kit, apps, "PRODUCT_UPDATED", 1, 0)
        samples, reads = await _time(kit, "PRODUCT_UPDATED", triggers, 1, pg)
        runs.append(TriggerRun(kind, "1, others absent", 1, 0, samples, reads))
        have = 0
        for size in sizes:
            await _add(kit, apps, "ORDER_CREATED", size - have, have)
            have = size
            count = max(10, triggers * 10 // max(10, size))  # fewer samples of big fan-outs
            samples, reads = await _time(kit, "ORDER_CREATED", count, size, pg)
            runs.append(TriggerRun(kind, str(size), size, 1, samples, reads))
        others = unrelated - have
        per_event = -(-others // len(UNRELATED_EVENTS))
        for i, event in enumerate(UNRELATED_EVENTS):
            await _add(kit, apps, event, min(per_event, others - i * per_event), 0)
        samples, reads = await _time(kit, "PRODUCT_UPDATED", triggers, 1, pg)
        runs.append(
            TriggerRun(kind, f"1 among {unrelated:,} unrelated", 1, unrelated, samples, reads)
        )
    finally:
        await kit.aclose()
    return runs


async def run(
    admin_dsn: str | None, sizes: tuple[int, ...], unrelated: int, triggers: int
) -> list[TriggerRun]:
    runs = await run_store("memory", "memory://", None, sizes, unrelated, triggers)
    with tempfile.TemporaryDirectory(prefix="webhookkit-bench-") as tmp:
        path = os.path.join(tmp, "triggers.db")
        runs += await run_store("sqlite", f"sqlite:///{path}", None, sizes, unrelated, triggers)
    if admin_dsn is not None:
        name, dsn = await create_database(admin_dsn, "wkt")
        runs += await run_store("postgresql", dsn, (admin_dsn, name), sizes, unrelated, triggers)
    return runs
