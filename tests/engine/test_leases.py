"""Deliveries held locally (endpoint at its concurrency limit) must not outlive their lease.

A worker claims up to twice its concurrency but sends at most ``per_endpoint`` at a time to
one endpoint; the rest wait in memory. If they waited past their lease, another worker
would claim and send them while the first still meant to: every such delivery went out
twice. The scheduler lets go of a held delivery once less than half its lease is left.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

from conftest import LOOPBACK, Receiver

from webhookkit import DeliveryConfig, DeliveryStatus, HTTPTransport, WebhookKit
from webhookkit.stores import PostgresStore

DELIVERIES = 200
LEASE = timedelta(seconds=3)
CONCURRENCY = 50  # a worker claims up to twice this
#: Ten sends at a time per endpoint: 90 held deliveries wait 9 rounds, longer than the lease.
ANSWER_DELAY = 0.5


async def test_two_workers_never_send_a_held_delivery_twice(
    pg_dsn: str, receiver: Receiver
) -> None:
    receiver.delay = ANSWER_DELAY
    queue = WebhookKit(
        store=PostgresStore(pg_dsn, listen=False),
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
    )
    workers = [
        WebhookKit(
            store=PostgresStore(pg_dsn),
            transports=[HTTPTransport(allow_addresses=LOOPBACK)],
            delivery=DeliveryConfig(concurrency=CONCURRENCY, lease=LEASE, poll_interval=0.2),
        )
        for _ in range(2)
    ]
    try:
        app = await queue.apps.create("shop", permissions=["MANAGE_ORDERS"])
        await queue.webhooks.create(app, target_url=receiver.url, events=["ORDER_CREATED"])
        ids = [
            i
            for n in range(DELIVERIES)
            for i in await queue.trigger("ORDER_CREATED", payload={"n": n})
        ]
        # The premise: the last held deliveries would wait longer than their lease.
        slots = workers[0].scheduler.gate.config.per_endpoint
        assert (CONCURRENCY * 2 - slots) / slots * ANSWER_DELAY > LEASE.total_seconds()
        for worker in workers:
            await worker.start()
        done = await queue.wait_for(ids, timeout=90)
    finally:
        for worker in workers:
            await worker.aclose()
            await worker.store.aclose()
        await queue.aclose()
        await queue.store.aclose()

    counts = Counter(json.loads(r.body)["n"] for r in receiver.received)
    assert sorted(counts) == list(range(DELIVERIES))
    assert [n for n, seen in counts.items() if seen > 1] == [], "sent twice"
    assert all(d.status is DeliveryStatus.SUCCESS and d.attempts == 1 for d in done)
    assert all(w.stats.attempts > 0 for w in workers)
