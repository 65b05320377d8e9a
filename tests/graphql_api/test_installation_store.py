"""Installation records survive in every store: put, get, list (oldest first), replace, delete."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from webhookkit.installations import AppInstallation, InstallationStatus
from webhookkit.stores import MemoryStore, PostgresStore, SQLiteStore, Store


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with contextlib.AsyncExitStack() as stack:
        opened: Store
        if request.param == "memory":
            opened = MemoryStore()
        elif request.param == "sqlite":
            opened = SQLiteStore(tmp_path / "kit.db")
        else:
            cluster = request.getfixturevalue("pg_cluster")
            opened = PostgresStore(await stack.enter_async_context(cluster.database()))
        stack.push_async_callback(opened.aclose)
        await opened.open()
        yield opened


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(n: int, **changes: object) -> AppInstallation:
    base = AppInstallation(
        id=f"inst-{n}",
        app_name=f"app {n}",
        manifest_url=f"https://apps.example.com/{n}/manifest",
        status=InstallationStatus.PENDING,
        created_at=T0 + timedelta(minutes=n),
        updated_at=T0 + timedelta(minutes=n),
        permissions=frozenset({"MANAGE_ORDERS"}),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def test_installations_round_trip(store: Store) -> None:
    assert await store.get_installation("inst-1") is None
    assert await store.list_installations() == []
    second, first = record(2), record(1, activate_after_installation=False)
    await store.put_installation(second)
    await store.put_installation(first)
    assert await store.get_installation("inst-1") == first
    assert [i.id for i in await store.list_installations()] == ["inst-1", "inst-2"]

    failed = replace(
        second,
        status=InstallationStatus.FAILED,
        message="tokenTargetUrl answered HTTP 500",
        updated_at=T0 + timedelta(hours=1),
    )
    await store.put_installation(failed)
    assert await store.get_installation("inst-2") == failed
    installed = replace(first, status=InstallationStatus.INSTALLED, app_id="app-1")
    await store.put_installation(installed)
    assert (await store.get_installation("inst-1")) == installed
    assert len(await store.list_installations()) == 2

    assert await store.delete_installation("inst-2") is True
    assert await store.delete_installation("inst-2") is False
    assert [i.id for i in await store.list_installations()] == ["inst-1"]


async def test_installation_survives_reopening_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "kit.db"
    first = SQLiteStore(path)
    await first.open()
    await first.put_installation(record(1, status=InstallationStatus.INSTALLED, app_id="a"))
    await first.aclose()
    again = SQLiteStore(path)
    try:
        found = await again.get_installation("inst-1")
        assert found is not None and found.status is InstallationStatus.INSTALLED
        assert found.permissions == frozenset({"MANAGE_ORDERS"})
    finally:
        await again.aclose()
