"""Scenario 4, trigger latency: what ``kit.trigger`` costs as webhooks are added, per store.

Per store, kits whose scheduler is not started (deliveries stay queued, so only the trigger
is timed: finding the webhooks, building and writing the deliveries); each measurement in a
fresh kit on the store at its defaults, after an untimed first trigger. In order:

1. 1, 10, 100, 1,000 webhooks subscribed to ORDER_CREATED (``trigger("ORDER_CREATED")``);
2. webhooks of other events added until 10,000 are unrelated to PRODUCT_UPDATED (whose one
   webhook the store got first), and the PRODUCT_UPDATED trigger timed: one subscribed among
   10,000 unrelated, each trigger alternating with one on the baseline: a second, fresh store
   of the same kind with only that one webhook (the 10,000 absent).

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


Measured = tuple[list[float], float | None, float | None]  # samples, reads, version checks
Target = tuple[WebhookKit, tuple[str, str] | None]  # a kit, (admin DSN, database) on PostgreSQL


async def _time(targets: list[Target], event: str, count: int, expect: int) -> list[Measured]:
    """``count`` triggers on each kit, interleaved (load on the machine hits all alike)."""
    for kit, _ in targets:
        await kit.trigger(event, payload=PAYLOAD)  # warm: catalog load, statement preparations
    admins = {pg[0] for _, pg in targets if pg is not None}
    for admin in admins:
        await reset_statements(admin)
    counted = [_store_reads(kit) for kit, _ in targets]
    samples: list[list[float]] = [[] for _ in targets]
    for _ in range(count):
        for (kit, _), times in zip(targets, samples, strict=True):
            started = time.perf_counter()
            ids = await kit.trigger(event, payload=PAYLOAD)
            times.append(time.perf_counter() - started)
            if len(ids) != expect:
                raise RuntimeError(f"trigger {event}: {len(ids)} deliveries, expected {expect}")
    results: list[Measured] = []
    for (kit, pg), times, before in zip(targets, samples, counted, strict=True):
        reads: float | None = None
        versions: float | None = None
        if pg is not None:
            reads = await config_selects(*pg) / count
            versions = await selects_on(*pg, "config_version") / count
        elif before is not None:
            reads = ((_store_reads(kit) or 0) - before) / count
        results.append((times, reads, versions))
    return results


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
    stores: list[tuple[Store | str, tuple[str, str] | None]], event: str, count: int, expect: int
) -> list[Measured]:
    """Time triggers in fresh kits on ``stores`` (each at the store's default settings)."""
    kits = [make_kit(store=store, max_queued=None) for store, _ in stores]
    try:
        for kit in kits:
            await kit.store.open()
        targets = [(kit, pg) for kit, (_, pg) in zip(kits, stores, strict=True)]
        return await _time(targets, event, count, expect)
    finally:
        for kit in kits:
            await kit.aclose()


@dataclass(frozen=True)
class StoreUnderTest:
    kind: str
    setup: Callable[[], Store | str]  # the store as the setup kit opens it
    store: Store | str  # the store as the measuring kits open it
    pg: tuple[str, str] | None = None


async def run_store(
    main: StoreUnderTest,
    base: StoreUnderTest,
    sizes: tuple[int, ...],
    unrelated: int,
    triggers: int,
) -> list[TriggerRun]:
    """The sequence in the module docstring. ``main`` collects the webhooks; ``base`` (an
    empty store of the same kind) gets only the baseline's webhook, and its triggers are
    interleaved with the final "1 among N unrelated" ones. Webhooks are added by a setup kit
    (on SQLite one that does not sync each commit, or 10,000 creates would take minutes)."""
    kind = main.kind
    await _setup(base.setup, [("PRODUCT_UPDATED", 1, 0)])
    await _setup(main.setup, [("PRODUCT_UPDATED", 1, 0)])
    sized: list[TriggerRun] = []
    have = 0
    for size in sizes:
        await _setup(main.setup, [("ORDER_CREATED", size - have, have)])
        have = size
        count = max(10, triggers * 10 // max(10, size))  # fewer samples of big fan-outs
        [(samples, reads, versions)] = await _measure(
            [(main.store, main.pg)], "ORDER_CREATED", count, size
        )
        sized.append(TriggerRun(kind, str(size), size, 1, samples, reads, versions))
    others = unrelated - have
    per_event = -(-others // len(UNRELATED_EVENTS))
    await _setup(
        main.setup,
        [
            (event, min(per_event, others - i * per_event), 0)
            for i, event in enumerate(UNRELATED_EVENTS)
        ],
    )
    baseline, among = await _measure(
        [(base.store, base.pg), (main.store, main.pg)], "PRODUCT_UPDATED", triggers, 1
    )
    return [
        TriggerRun(kind, "1, others absent", 1, 0, *baseline),
        *sized,
        TriggerRun(kind, f"1 among {unrelated:,} unrelated", 1, unrelated, *among),
    ]


async def run(
    admin_dsn: str | None, sizes: tuple[int, ...], unrelated: int, triggers: int
) -> list[TriggerRun]:
    memory, memory_base = MemoryStore(), MemoryStore()
    runs = await run_store(
        StoreUnderTest("memory", lambda: memory, memory),
        StoreUnderTest("memory", lambda: memory_base, memory_base),
        sizes,
        unrelated,
        triggers,
    )
    with tempfile.TemporaryDirectory(prefix="webhookkit-bench-") as tmp:
        main_path, base_path = os.path.join(tmp, "main.db"), os.path.join(tmp, "base.db")
        runs += await run_store(
            StoreUnderTest(
                "sqlite",
                lambda: SQLiteStore(main_path, synchronous="OFF"),
                f"sqlite:///{main_path}",
            ),
            StoreUnderTest(
                "sqlite",
                lambda: SQLiteStore(base_path, synchronous="OFF"),
                f"sqlite:///{base_path}",
            ),
            sizes,
            unrelated,
            triggers,
        )
    if admin_dsn is not None:
        main_name, main_dsn = await create_database(admin_dsn, "wkt")
        base_name, base_dsn = await create_database(admin_dsn, "wkb")
        runs += await run_store(
            StoreUnderTest("postgresql", lambda: main_dsn, main_dsn, (admin_dsn, main_name)),
            StoreUnderTest("postgresql", lambda: base_dsn, base_dsn, (admin_dsn, base_name)),
            sizes,
            unrelated,
            triggers,
        )
    return runs
