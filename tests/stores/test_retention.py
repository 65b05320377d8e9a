"""Retention at scale: a long purge deletes in short batches, so claiming never stalls behind it
(another store object on the same database claims while 50,000 finished rows go)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from stores.factories import LEASE, at, delivery, payload
from stores.pgcluster import PostgresCluster
from webhookkit import DeliveryStatus
from webhookkit.stores import PostgresStore, SQLiteStore, Store
from webhookkit.stores._sql import PURGE_BATCH

FINISHED = 50_000


@pytest.fixture(params=["sqlite", "postgres"])
async def two_stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Store, Store]]:
    """Two store objects (two connections) on one SQLite file or PostgreSQL database."""
    async with contextlib.AsyncExitStack() as stack:
        made: list[Store] = []
        for _ in range(2):
            if request.param == "sqlite":
                store: Store = SQLiteStore(tmp_path / "retention.db")
            else:
                cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
                if not made:
                    dsn = await stack.enter_async_context(cluster.database())
                store = PostgresStore(dsn, min_size=1, max_size=2)
            stack.push_async_callback(store.aclose)
            await store.open()
            made.append(store)
        yield made[0], made[1]


async def test_claims_complete_while_a_large_purge_runs(two_stores: tuple[Store, Store]) -> None:
    purger, claimer = two_stores
    chunk = 5_000
    for start in range(0, FINISHED, chunk):
        pid = f"p{start // chunk}"
        await purger.add_deliveries(
            [payload(pid)],
            [
                delivery(f"old{i}", pid, status=DeliveryStatus.SUCCESS, next_try=None)
                for i in range(start, start + chunk)
            ],
        )
    await purger.add_deliveries([payload("live")], [delivery("due", "live", created=100)])
    assert FINISHED > 10 * PURGE_BATCH, "the purge must take many batches"

    now = at(0) + timedelta(days=30)
    purge = asyncio.create_task(purger.purge(now, keep_success=None))
    await asyncio.sleep(0)  # the purge's first batch is under way
    claimed = await claimer.claim_batch(now, limit=10, lease=LEASE)
    claimed_before_the_purge_ended = not purge.done()
    assert [d.id for d in claimed.deliveries] == ["due"]
    assert claimed_before_the_purge_ended, "the claim waited for the whole purge"
    assert await purge == FINISHED
    assert [d.id for d in await claimer.list_deliveries()] == ["due"]
    assert await claimer.get_payload("p0") is None
    assert await claimer.get_payload("live") is not None
