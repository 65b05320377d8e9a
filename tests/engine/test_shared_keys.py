"""Signing keys kept in the store: one key set for every process, rotated once for all.

Each "process" here is its own store object on the same database (its own connections), which
is what separate processes have; the test with real worker processes is at the end.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from signing.conftest import NodeRunner, jws_case, node_verify  # noqa: F401 (the fixture)
from stores.pgcluster import PostgresCluster

from engine.procs import WebProcess, Workers, start_web, wait_until
from webhookkit.exceptions import ConfigurationError, InvalidKeyError
from webhookkit.keyring import (
    ENCRYPTION_KEY_ENV,
    LocalKeySet,
    StoredKeySet,
    encryption_key_from,
    local_key_set,
    open_key_set,
)
from webhookkit.signing import KeySet, KeyState, generate_key
from webhookkit.stores import MemoryStore, PostgresStore, SQLiteStore
from webhookkit.stores.base import StoredKey

StoreFactory = Callable[[], SQLiteStore | PostgresStore]
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, StoreFactory]]:
    """A factory of store objects on one database (one per simulated process), and the URL."""
    opened: list[SQLiteStore | PostgresStore] = []
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = str(tmp_path / "keys.db")
        else:
            cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
            url = await stack.enter_async_context(cluster.database())

        def make() -> SQLiteStore | PostgresStore:
            store = (
                SQLiteStore(url) if request.param == "sqlite" else PostgresStore(url, max_size=2)
            )
            opened.append(store)
            return store

        try:
            yield url, make
        finally:
            for store in opened:
                await store.aclose()


async def raw_rows(url: str) -> list[dict[str, Any]]:
    """The signing key rows as the database holds them, read without webhookkit."""
    query = "SELECT kid, state, private_key, encryption FROM webhookkit_signing_keys"
    if url.startswith("postgres"):
        conn = await asyncpg.connect(url)
        try:
            return [dict(r) for r in await conn.fetch(query)]
        finally:
            await conn.close()
    with sqlite3.connect(url) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(query).fetchall()]


async def test_first_process_wins_and_every_process_loads_its_key(
    stores: tuple[str, StoreFactory],
) -> None:
    url, make = stores
    handles = await asyncio.gather(*(open_key_set(make(), None) for _ in range(4)))
    try:
        assert all(isinstance(h, StoredKeySet) for h in handles)
        kids = {h.active.kid for h in handles}
        assert len(kids) == 1, kids
        rows = await raw_rows(url)
        assert [(r["kid"], r["state"]) for r in rows] == [(kids.pop(), "active")]
        # A restart loads the same key instead of making a new one.
        again = await open_key_set(make(), None)
        assert again.active.kid == handles[0].active.kid
        await again.aclose()
    finally:
        for handle in handles:
            await handle.aclose()


async def test_rotation_in_one_process_is_seen_by_the_others(
    stores: tuple[str, StoreFactory],
) -> None:
    url, make = stores
    # The other process polls every 0.2 s here (5 s by default).
    web = await open_key_set(make(), None, refresh=0.2)
    worker = await open_key_set(make(), None, refresh=0.2)
    try:
        old = web.active.kid
        new = generate_key("ES256")
        await web.add(new)
        assert [k["kid"] for k in web.jwks()["keys"]] == [old, new.kid]
        await wait_until(lambda: new.kid in worker, timeout=30, what="the worker to see step 1")
        assert worker.active.kid == old  # published, not signing yet
        assert worker.get(new.kid).state is KeyState.NEXT

        await web.activate(new.kid, retire_after=timedelta(hours=1))
        await wait_until(
            lambda: worker.active.kid == new.kid, timeout=30, what="the worker to switch keys"
        )
        assert [k["kid"] for k in worker.jwks()["keys"]] == [new.kid, old]
        assert worker.get(old).state is KeyState.RETIRED

        # Step 3 after the date: gone from the store and from both processes.
        later = datetime.now(UTC) + timedelta(hours=2)
        assert await worker.prune(later) == [old]
        assert old not in worker
        await web.refresh()
        assert old not in web
        assert [r["kid"] for r in await raw_rows(url)] == [new.kid]
    finally:
        await web.aclose()
        await worker.aclose()


async def test_postgres_notify_carries_a_change_without_waiting_for_the_poll(
    pg_dsn: str,
) -> None:
    stores = [PostgresStore(pg_dsn, max_size=2) for _ in range(2)]
    # A poll interval far beyond the wait below: only NOTIFY webhookkit_keys can be in time.
    web = await open_key_set(stores[0], None, refresh=3600)
    worker = await open_key_set(stores[1], None, refresh=3600)
    try:
        added = await web.add(alg="EdDSA")
        await wait_until(lambda: added.kid in worker, timeout=30, what="NOTIFY to reach worker")
    finally:
        await web.aclose()
        await worker.aclose()
        for store in stores:
            await store.aclose()


async def test_private_keys_are_encrypted_at_rest_with_an_encryption_key(
    stores: tuple[str, StoreFactory],
) -> None:
    url, make = stores
    secret = base64.b64encode(os.urandom(32)).decode()
    handle = await open_key_set(make(), None, encryption_key=secret)
    try:
        [row] = await raw_rows(url)
        assert row["encryption"] == "aes-256-gcm"
        blob = bytes(row["private_key"])
        assert b"PRIVATE KEY" not in blob
        assert handle.active.private_pem() not in blob
        # Another process with the same key signs with the same key.
        same = await open_key_set(make(), None, encryption_key=secret)
        assert same.active.kid == handle.active.kid
        await same.aclose()
        # Without it, or with another one, it refuses, naming the variable and never the key.
        for wrong in (None, base64.b64encode(os.urandom(32)).decode()):
            with pytest.raises(InvalidKeyError) as caught:
                await open_key_set(make(), None, encryption_key=wrong)
            assert ENCRYPTION_KEY_ENV in str(caught.value)
            assert secret not in str(caught.value)
        assert "PRIVATE" not in repr(handle) and "PRIVATE" not in repr(await make().load_keys())
    finally:
        await handle.aclose()


async def test_without_an_encryption_key_the_store_holds_pkcs8_pem(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "plain.db")
    handle = await open_key_set(store, None, encryption_key=None)
    try:
        [row] = await raw_rows(store.path)
        assert row["encryption"] == "none"
        assert bytes(row["private_key"]) == handle.active.private_pem()
        assert bytes(row["private_key"]).startswith(b"-----BEGIN PRIVATE KEY-----")
    finally:
        await handle.aclose()
        await store.aclose()


def test_encryption_key_must_be_32_bytes_of_base64() -> None:
    raw = os.urandom(32)
    assert encryption_key_from(base64.b64encode(raw).decode()) == raw
    assert encryption_key_from(base64.urlsafe_b64encode(raw)) == raw
    assert encryption_key_from(None, environ={ENCRYPTION_KEY_ENV: base64.b64encode(raw).decode()})
    assert encryption_key_from(None, environ={}) is None
    with pytest.raises(ConfigurationError) as caught:
        encryption_key_from("c2hvcnQ=")  # "short"
    assert caught.value.field == "encryption_key"
    assert "c2hvcnQ" not in str(caught.value)


async def test_a_configured_key_wins_and_nothing_is_stored(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "configured.db")
    pem = generate_key("RS256").private_pem()
    try:
        handle = await open_key_set(store, pem)
        assert isinstance(handle, LocalKeySet)
        assert handle.active.private_pem() == pem
        await store.open()
        assert await raw_rows(store.path) == []
    finally:
        await store.aclose()


async def test_a_generated_key_object_on_a_durable_store_is_a_loud_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLiteStore(tmp_path / "ephemeral.db")
    try:
        with caplog.at_level(logging.WARNING, logger="webhookkit.signing"):
            await open_key_set(store, KeySet.generate())
        [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert "generated in this process" in warning.getMessage()
        caplog.clear()
        # A key loaded from a PEM is what every process can share: no warning.
        with caplog.at_level(logging.WARNING, logger="webhookkit.signing"):
            await open_key_set(store, generate_key().private_pem())
        assert not caplog.records
    finally:
        await store.aclose()


async def test_memory_store_keys_stay_in_the_process_and_rotate_synchronously() -> None:
    store = MemoryStore()
    handle = await open_key_set(store, None)
    assert isinstance(handle, LocalKeySet) and not handle.stored
    new = generate_key()
    handle.keys.add(new)  # a plain KeySet: the sync steps still work
    await handle.activate(new.kid)
    assert handle.active.kid == new.kid
    assert await store.load_keys() == []


async def test_the_shared_key_set_refuses_changes_that_would_stay_in_one_process(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "refuse.db")
    handle = await open_key_set(store, None)
    try:
        with pytest.raises(InvalidKeyError, match="kept in the store"):
            handle.keys.add(generate_key())
        with pytest.raises(InvalidKeyError, match="kept in the store"):
            handle.keys.activate(handle.active.kid)
        with pytest.raises(InvalidKeyError, match="active key"):
            await handle.retire(handle.active.kid)
        with pytest.raises(InvalidKeyError, match="no key with kid"):
            await handle.activate("nope")
        assert len(await store.load_keys()) == 1
    finally:
        await handle.aclose()
        await store.aclose()


async def test_every_store_keeps_at_most_one_active_key(
    stores: tuple[str, StoreFactory],
) -> None:
    _, make = stores
    store = make()
    handle = await open_key_set(store, None)
    try:
        rows = await store.load_keys()
        second = generate_key()
        row = StoredKey(
            kid=second.kid,
            alg=second.alg,
            state="active",
            private_key=second.private_pem(),
            encryption="none",
            retire_at=None,
            created_at=NOW,
            updated_at=NOW,
        )
        assert await store.add_key(row, only_if_empty=False) is False
        assert await store.add_key(row, only_if_empty=True) is False
        assert [r.kid for r in await store.load_keys()] == [rows[0].kid]
    finally:
        await handle.aclose()


async def test_open_key_set_on_every_start_keeps_one_handle_and_one_key(tmp_path: Path) -> None:
    """What a kit does: a local handle at construction, the store's at each start."""
    store = SQLiteStore(tmp_path / "starts.db")
    local = local_key_set(None)
    try:
        handle = await open_key_set(store, None, current=local)
        assert handle is not local and handle.stored
        assert await open_key_set(store, None, current=handle) is handle
        kid = handle.active.kid
        await handle.aclose()  # the kit stopped; a later start follows the store again
        assert await open_key_set(store, None, current=handle) is handle
        assert handle.active.kid == kid and len(await store.load_keys()) == 1
        await handle.aclose()
        memory = MemoryStore()
        assert await open_key_set(memory, None, current=local) is local
    finally:
        await store.aclose()


async def test_a_store_that_cannot_be_read_leaves_the_loaded_keys_signing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLiteStore(tmp_path / "outage.db")
    handle = await open_key_set(store, None, refresh=0.05)
    kid = handle.active.kid
    with caplog.at_level(logging.WARNING, logger="webhookkit.signing"):
        await store.aclose()  # every later read fails
        await wait_until(lambda: bool(caplog.records), timeout=30, what="the failed reload")
        await asyncio.sleep(0.2)  # more failed ticks, no more lines
    [warning] = caplog.records
    assert "keeping the current keys" in warning.getMessage()
    assert handle.active.kid == kid and [k["kid"] for k in handle.jwks()["keys"]] == [kid]
    await handle.aclose()


# -- three real processes on one PostgreSQL store -------------------------------------------


@dataclass
class Seen:
    """One request the receiver got: which worker sent it (its Saleor-Domain), what, signed how."""

    domain: str
    body: bytes
    signature: str

    @property
    def kid(self) -> str:
        header = self.signature.split(".", 1)[0]
        return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


async def test_web_process_and_two_workers_share_one_key_set_across_a_rotation(
    pg_dsn: str,
    tmp_path: Path,
    node_verify: NodeRunner,  # noqa: F811 (the fixture imported above)
) -> None:
    """None of the three processes is given a key. Every delivery the workers send verifies
    with Saleor's app SDK against the JWKS the web process serves, before and after a
    rotation done from the web process, and both workers follow the rotation."""
    seen: list[Seen] = []

    async def receive(request: web.Request) -> web.Response:
        seen.append(
            Seen(
                request.headers["Saleor-Domain"],
                await request.read(),
                request.headers["Saleor-Signature"],
            )
        )
        return web.Response(text="ok")

    receiver = web.Application()
    receiver.router.add_post("/orders", receive)
    runner = web.AppRunner(receiver, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    target = f"http://127.0.0.1:{runner.addresses[0][1]}/orders"

    workers = Workers(tmp_path, key_file=None)
    web_process: WebProcess | None = None
    domains = ("worker-a.shop.example.com", "worker-b.shop.example.com")
    try:
        # All three start at once: whichever reaches the empty store first creates the key.
        starting = asyncio.ensure_future(start_web(tmp_path, pg_dsn, target))
        await asyncio.gather(
            starting,
            *(
                workers.start(pg_dsn, concurrency=2, lease=30, poll=0.2, name=n, domain=d)
                for n, d in zip(("a", "b"), domains, strict=True)
            ),
        )
        web_proc = web_process = starting.result()
        first_kid = (await jwks_of(web_proc))[0]
        sent = 0

        async def deliver_until(done: Callable[[], bool], what: str) -> None:
            """Queue batches through the web process until ``done()`` (bounded)."""
            nonlocal sent
            deadline = asyncio.get_running_loop().time() + 90
            while not done():
                assert asyncio.get_running_loop().time() < deadline, f"gave up: {what}"
                await web_proc.call("/trigger", {"first": sent, "count": 10})
                sent += 10
                expected = sent

                def arrived(n: int = expected) -> bool:
                    return len(seen) >= n

                await wait_until(arrived, timeout=60, what=f"{sent} deliveries")

        await deliver_until(lambda: {s.domain for s in seen} == set(domains), "both workers")
        before = len(seen)
        assert {s.kid for s in seen} == {first_kid}

        # Rotation from the web process: publish, then switch.
        new_kid = (await web_proc.call("/keys/add"))["kid"]
        assert await jwks_of(web_proc) == [first_kid, new_kid]
        await web_proc.call("/keys/activate", {"kid": new_kid})
        assert await jwks_of(web_proc) == [new_kid, first_kid]

        def both_switched() -> bool:
            return {s.domain for s in seen[before:] if s.kid == new_kid} == set(domains)

        await deliver_until(both_switched, "both workers to sign with the new key")
        assert len({s.body for s in seen}) == len(seen) == sent  # each once, none lost

        # Saleor's SDK (and jose) verify every one against what the web process serves.
        cases = [
            jws_case(f"d{i}", web_proc.jwks_url, s.signature, s.body) for i, s in enumerate(seen)
        ]
        results = await node_verify(cases)
        failed = {n: r for n, r in results.items() if not r["saleorSdk"]["ok"]}
        assert not failed, list(failed.items())[:3]
        assert len(results) == len(seen)
        assert "PRIVATE KEY" not in read_logs(tmp_path)
    finally:
        if web_process is not None:
            await web_process.stop()
        await workers.aclose()
        await runner.cleanup()


async def jwks_of(web_process: WebProcess) -> list[str]:
    """The kids in the JWKS the web process serves, in its order."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(web_process.jwks_url) as response,
    ):
        assert response.status == 200
        return [k["kid"] for k in (await response.json())["keys"]]


def read_logs(directory: Path) -> str:
    """Everything the processes printed."""
    return "".join(p.read_text(errors="replace") for p in sorted(directory.glob("*.log")))
