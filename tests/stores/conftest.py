"""Store fixtures: one PostgreSQL server per test session, a fresh database per test, and the
``store`` fixture that runs a test against the memory, SQLite and PostgreSQL stores."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stores.pgcluster import PostgresCluster
from webhookkit.stores import MemoryStore, PostgresStore, SQLiteStore, Store


def make_store(kind: str, tmp_path: Path, dsn: str | None) -> Store:
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SQLiteStore(tmp_path / "webhookkit.db")
    assert dsn is not None
    return PostgresStore(dsn, min_size=1, max_size=4)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each store kind, opened; closed after the test."""
    kind: str = request.param
    async with contextlib.AsyncExitStack() as stack:
        dsn = None
        if kind == "postgres":
            cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
            dsn = await stack.enter_async_context(cluster.database())
        opened = make_store(kind, tmp_path, dsn)
        stack.push_async_callback(opened.aclose)
        await opened.open()
        yield opened
