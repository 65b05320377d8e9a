"""``kill -9`` a worker process mid-run: every delivery still reaches the receiver.

The test process queues 5,000 events for one webhook and starts real
``python -m webhookkit worker`` processes; it kills one with SIGKILL (no handler, no lease
handed back) after the receiver has seen part of the work, starts a replacement, and waits
until nothing is pending. Delivery is at-least-once: what the killed worker had sent but not
yet recorded is sent again once its lease runs out, so the duplicates are bounded by what it
had in flight.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.procs import CountingReceiver, Worker, Workers, wait_until
from webhookkit import Delivery, DeliveryQuery, DeliveryStatus, HTTPTransport, WebhookKit
from webhookkit.stores import PostgresStore, SQLiteStore, Store

TOTAL = 5_000
CONCURRENCY = 50
LEASE = 3.0  # seconds: the killed worker's deliveries come back this soon
POLL = 0.2
#: The receiver has seen this many requests when the worker is killed.
KILL_AFTER = 1_000
#: How long the whole backlog may take once the replacement worker runs.
FINISH_WITHIN = 75.0
#: Each answer waits this long after the request was counted: the killed worker then has
#: requests out that arrived but whose answers it never recorded (the duplicates to come).
ANSWER_DELAY = 0.01

RecordProperty = Callable[[str, object], None]


@dataclass(frozen=True)
class AtKill:
    """The store and the receiver just after the kill."""

    seen: int  # distinct deliveries the receiver had got
    pending: int
    leased: frozenset[str]  # pending with a lease: claimed by a worker
    in_flight: frozenset[str]  # received yet still pending: sent, answer not recorded


async def queue_events(kit: WebhookKit, url: str, *, batch: int) -> list[str]:
    """One app, one webhook, TOTAL events; element ``n`` is the delivery of event ``n``."""
    app = await kit.apps.create("shop", permissions=["MANAGE_ORDERS"])
    await kit.webhooks.create(app, target_url=f"{url}/hooks", events=["ORDER_CREATED"])
    ids: list[str] = []
    for start in range(0, TOTAL, batch):
        numbers = range(start, min(start + batch, TOTAL))
        made = await asyncio.gather(
            *(kit.trigger("ORDER_CREATED", payload={"n": n}) for n in numbers)
        )
        for delivery_ids in made:
            assert len(delivery_ids) == 1
            ids += delivery_ids
    return ids


async def pending(store: Store, limit: int = TOTAL) -> list[Delivery]:
    return await store.list_deliveries(DeliveryQuery(status=DeliveryStatus.PENDING, limit=limit))


async def nothing_pending(store: Store) -> bool:
    return not await pending(store, limit=1)


async def kill_mid_run(
    workers: Workers, victim: Worker, receiver: CountingReceiver, store: Store, ids: list[str]
) -> AtKill:
    await wait_until(
        lambda: receiver.distinct >= KILL_AFTER or not victim.running,
        timeout=60,
        what=f"the receiver to see {KILL_AFTER} deliveries",
    )
    assert victim.running, victim.log_tail()
    assert await workers.kill(victim) == -signal.SIGKILL
    # Requests the dead worker had already written may still sit in the receiver's socket.
    await asyncio.sleep(0.5)
    # Receiver first, store second: surviving workers keep sending, and a delivery seen
    # before the store was read had been claimed (leased) before that too.
    seen = set(receiver.counts)
    left = await pending(store)
    at_kill = AtKill(
        seen=len(seen),
        pending=len(left),
        leased=frozenset(d.id for d in left if d.lease_until is not None),
        in_flight=frozenset(ids[n] for n in seen) & {d.id for d in left},
    )
    assert at_kill.pending > 0 and at_kill.seen < TOTAL, "killed too late: nothing left to do"
    assert at_kill.in_flight <= at_kill.leased
    return at_kill


async def check_all_delivered(
    store: Store, receiver: CountingReceiver, ids: list[str]
) -> list[Delivery]:
    assert sorted(receiver.counts) == list(range(TOTAL)), "some deliveries never arrived"
    final = await store.list_deliveries(DeliveryQuery(limit=TOTAL + 1))
    assert sorted(d.id for d in final) == sorted(ids)
    assert all(d.status is DeliveryStatus.SUCCESS for d in final)
    assert all(d.lease_until is None and d.attempts >= 1 for d in final)
    return final


def report(label: str, receiver: CountingReceiver, at_kill: AtKill, record: RecordProperty) -> None:
    print(
        f"crash[{label}]: deliveries={TOTAL} requests={receiver.requests} "
        f"duplicates={receiver.duplicates} seen_at_kill={at_kill.seen} "
        f"leased_at_kill={len(at_kill.leased)} in_flight_at_kill={len(at_kill.in_flight)}"
    )
    record("duplicates", receiver.duplicates)
    record("in_flight_at_kill", len(at_kill.in_flight))


async def test_sqlite_worker_killed_mid_run_loses_nothing(
    tmp_path: Path,
    counting_receiver: CountingReceiver,
    workers: Workers,
    record_property: RecordProperty,
) -> None:
    path = tmp_path / "wk.db"
    # The test process only queues (its scheduler never starts); NORMAL sync queues faster and
    # loses nothing unless the machine loses power. The workers use the URL's FULL default.
    store = SQLiteStore(path, synchronous="NORMAL")
    kit = WebhookKit(store=store, transports=[HTTPTransport(allow_addresses=["127.0.0.1/32"])])
    try:
        counting_receiver.delay = ANSWER_DELAY
        ids = await queue_events(kit, counting_receiver.url, batch=100)
        url = f"sqlite:///{path}"
        first = await workers.start(url, concurrency=CONCURRENCY, lease=LEASE, poll=POLL)
        at_kill = await kill_mid_run(workers, first, counting_receiver, store, ids)

        second = await workers.start(url, concurrency=CONCURRENCY, lease=LEASE, poll=POLL)
        await wait_until(
            lambda: nothing_pending(store),
            timeout=FINISH_WITHIN,
            what="the replacement worker to finish the backlog",
            interval=0.25,
        )
        assert await workers.terminate(second) == 0, second.log_tail()

        final = await check_all_delivered(store, counting_receiver, ids)
        report("sqlite", counting_receiver, at_kill, record_property)
        # Only what the dead worker had sent without recording the answer went out twice,
        # and never more than its send slots; each delivery has exactly one attempt recorded.
        duplicated = {ids[n] for n, count in counting_receiver.counts.items() if count > 1}
        assert duplicated <= at_kill.in_flight
        assert max(counting_receiver.counts.values()) <= 2
        assert len(at_kill.in_flight) <= CONCURRENCY
        assert all(d.attempts == 1 for d in final)
    finally:
        await kit.aclose()
        await store.aclose()


async def test_postgres_one_of_three_workers_killed_mid_run_loses_nothing(
    pg_dsn: str,
    counting_receiver: CountingReceiver,
    workers: Workers,
    record_property: RecordProperty,
) -> None:
    store = PostgresStore(pg_dsn, max_size=10, listen=False)
    kit = WebhookKit(store=store, transports=[HTTPTransport(allow_addresses=["127.0.0.1/32"])])
    try:
        counting_receiver.delay = ANSWER_DELAY
        ids = await queue_events(kit, counting_receiver.url, batch=50)
        started = await asyncio.gather(
            *(
                workers.start(pg_dsn, concurrency=CONCURRENCY, lease=LEASE, poll=POLL, name=name)
                for name in ("w1", "w2", "w3")
            )
        )
        at_kill = await kill_mid_run(workers, started[1], counting_receiver, store, ids)

        restarted = await workers.start(
            pg_dsn, concurrency=CONCURRENCY, lease=LEASE, poll=POLL, name="w2-restarted"
        )
        await wait_until(
            lambda: nothing_pending(store),
            timeout=FINISH_WITHIN,
            what="the workers to finish the backlog",
            interval=0.25,
        )
        for worker in (started[0], started[2], restarted):
            assert await workers.terminate(worker) == 0, worker.log_tail()

        await check_all_delivered(store, counting_receiver, ids)
        report("postgresql", counting_receiver, at_kill, record_property)
        # The survivors kept sending while the victim's leases ran out; what went out twice
        # is bounded by the victim's send slots.
        assert counting_receiver.duplicates <= CONCURRENCY
    finally:
        await kit.aclose()
        await store.aclose()
