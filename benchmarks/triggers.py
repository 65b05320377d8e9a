"""Scenario 4, trigger latency: what ``kit.trigger`` costs as webhooks are added, per store.

Per store, kits whose scheduler is not started (deliveries stay queued, so only the trigger
is timed: finding the webhooks, building and writing the deliveries); each measurement in a
fresh kit on the store at its defaults, after an untimed first trigger. In order:

1. one webhook subscribed to PRODUCT_UPDATED: the baseline (10,000 others absent);
2. 1, 10, 100, 1,000 webhooks subscribed to ORDER_CREATED (``trigger("ORDER_CREATED")``);
3. webhooks of other events added until 10,000 are unrelated to PRODUCT_UPDATED, and the
   PRODUCT_UPDATED trigger timed again: one subscribed among 10,000 unrelated.

p50 and p99 of ``triggers`` calls each. On PostgreSQL, ``pg_stat_statements`` counts the SELECTs
on ``webhookkit_webhooks``/``webhookkit_apps`` during the timed triggers (configuration reads
on the hot path) and those on ``webhookkit_config_version`` (a cache's version check, if the
store has one); the other stores report their own count if they keep one
(``store.stats.config_reads``), else "n/a".
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks._kit import make_kit
from benchmarks._pg import config_selects, create_database, reset_statements, selects_on
from webhookkit import App, MemoryStore, SQLiteStore, Store, WebhookKit

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
    version_reads: float | None  # SELECTs of webhookkit_config_version per trigger (PostgreSQL)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def _store_reads(kit: WebhookKit) -> int | None:
    """The store's own count of configuration reads, where it keeps one
    (``store.stats.config_reads``); None otherwise."""
    value = getattr(getattr(kit.store, "stats", None), "config_reads", None)
    return value if isinstance(value, int) else None


async def _time(
    kit: WebhookKit, event: str, count: int, expect: int, pg: tuple[str, str] | None
) -> tuple[list[float], float | None, float | None]:
    await kit.trigger(event, payload=PAYLOAD)  # warm: first statement preparations
    if pg is not None:
        await reset_statements(pg[0])
    counted = _store_reads(kit)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        ids = await kit.trigger(event, payload=PAYLOAD)
        samples.append(time.perf_counter() - started)
        if len(ids) != expect:
            raise RuntimeError(f"trigger {event}: {len(ids)} deliveries, expected {expect}")
    reads: float | None = None
    versions: float | None = None
    if pg is not None:
        reads = await config_selects(*pg) / count
        versions = await selects_on(*pg, "config_version") / count
    elif counted is not None:
        reads = ((_store_reads(kit) or 0) - counted) / count
    return samples, reads, versions


async def _add(kit: WebhookKit, apps: list[App], event: str, count: int, start: int) -> None:
    """Create ``count`` webhooks of ``event``, 20 at a time (setup, not timed)."""

    async def create(n: int) -> None:
        await kit.webhooks.create(
            apps[n % len(apps)],
            target_url=f"https://hooks.example.com/{event.lower()}/{n}",
            events=[event],
            secret_key="s",
        )

    for first in range(start, start + count, 20):
        await asyncio.gather(*(create(n) for n in range(first, min(first + 20, start + count))))


async def _setup(make_store: Callable[[], Store | str], adds: list[tuple[str, int, int]]) -> None:
    """Add webhooks through a kit of their own: ``(event, count, first number)`` each."""
    store = make_store()
    kit = make_kit(store=store, max_queued=None)
    try:
        await kit.store.open()
        apps = await kit.apps.list()
        if not apps:
            apps = [await kit.apps.create(f"app{a}", permissions=PERMISSIONS) for a in range(10)]
        for event, count, first in adds:
            await _add(kit, apps, event, count, first)
    finally:
        await kit.aclose()
        if isinstance(store, SQLiteStore):
            await store.aclose()


async def _measure(
    store: Store | str, event: str, count: int, expect: int, pg: tuple[str, str] | None
) -> tuple[list[float], float | None, float | None]:
    """Time triggers in a kit of its own on the store, at the store's default settings."""
    kit = make_kit(store=store, max_queued=None)
    try:
        await kit.store.open()
        return await _time(kit, event, count, expect, pg)
    finally:
        await kit.aclose()


async def run_store(
    kind: str,
    make_setup_store: Callable[[], Store | str],
    store: Store | str,
    pg: tuple[str, str] | None,
    sizes: tuple[int, ...],
    unrelated: int,
    triggers: int,
) -> list[TriggerRun]:
    """The sequence in the module docstring on one store. Webhooks are added by a setup kit
    (``make_setup_store``: on SQLite one that does not sync each commit, or 10,000 creates
    would take minutes) and triggers timed by a kit on ``store`` at its defaults."""
    runs: list[TriggerRun] = []
    await _setup(make_setup_store, [("PRODUCT_UPDATED", 1, 0)])
    samples, reads, versions = await _measure(store, "PRODUCT_UPDATED", triggers, 1, pg)
    runs.append(TriggerRun(kind, "1, others absent", 1, 0, samples, reads, versions))
    have = 0
    for size in sizes:
        await _setup(make_setup_store, [("ORDER_CREATED", size - have, have)])
        have = size
        count = max(10, triggers * 10 // max(10, size))  # fewer samples of big fan-outs
        samples, reads, versions = await _measure(store, "ORDER_CREATED", count, size, pg)
        runs.append(TriggerRun(kind, str(size), size, 1, samples, reads, versions))
    others = unrelated - have
    per_event = -(-others // len(UNRELATED_EVENTS))
    await _setup(
        make_setup_store,
        [
            (event, min(per_event, others - i * per_event), 0)
            for i, event in enumerate(UNRELATED_EVENTS)
        ],
    )
    # Half the samples: a trigger that scans 10,000 webhooks costs ~0.2 s.
    among = max(10, triggers // 2)
    samples, reads, versions = await _measure(store, "PRODUCT_UPDATED", among, 1, pg)
    case = f"1 among {unrelated:,} unrelated"
    runs.append(TriggerRun(kind, case, 1, unrelated, samples, reads, versions))
    return runs


async def run(
    admin_dsn: str | None, sizes: tuple[int, ...], unrelated: int, triggers: int
) -> list[TriggerRun]:
    memory = MemoryStore()
    runs = await run_store("memory", lambda: memory, memory, None, sizes, unrelated, triggers)
    with tempfile.TemporaryDirectory(prefix="webhookkit-bench-") as tmp:
        path = os.path.join(tmp, "triggers.db")
        runs += await run_store(
            "sqlite",
            lambda: SQLiteStore(path, synchronous="OFF"),
            f"sqlite:///{path}",
            None,
            sizes,
            unrelated,
            triggers,
        )
    if admin_dsn is not None:
        name, dsn = await create_database(admin_dsn, "wkt")
        runs += await run_store(
            "postgresql", lambda: dsn, dsn, (admin_dsn, name), sizes, unrelated, triggers
        )
    return runs
