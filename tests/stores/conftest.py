"""Store fixtures: one PostgreSQL server per test session, a fresh database per test, and the
``store`` fixture that runs a test against the memory, SQLite and PostgreSQL stores (the
last twice: unpartitioned, and partitioned by day with the partitions of the factories' T0
made, so the rows land in a day partition rather than the default one)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from stores.factories import T0
from stores.pgcluster import PostgresCluster
from webhookkit.stores import MemoryStore, PostgresStore, SQLiteStore, Store, partitions


def make_store(kind: str, tmp_path: Path, dsn: str | None) -> Store:
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SQLiteStore(tmp_path / "webhookkit.db")
    assert dsn is not None
    return PostgresStore(dsn, min_size=1, max_size=4, partitioned=kind == "postgres-partitioned")


@pytest.fixture(params=["memory", "sqlite", "postgres", "postgres-partitioned"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each store kind, opened; closed after the test."""
    kind: str = request.param
    async with contextlib.AsyncExitStack() as stack:
        dsn = None
        if kind.startswith("postgres"):
            cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
            dsn = await stack.enter_async_context(cluster.database())
        opened = make_store(kind, tmp_path, dsn)
        stack.push_async_callback(opened.aclose)
        await opened.open()
        if isinstance(opened, PostgresStore) and opened.partitioned:
            day = T0.date()
            await partitions.create_partitions(opened, day - timedelta(days=1), day)
        yield opened
