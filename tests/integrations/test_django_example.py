"""The Django example shop (examples/django_shop) with real processes: ``manage.py migrate``,
``runserver`` and ``webhookkit_worker``, on PostgreSQL and on SQLite.

A POST saves an order and queues ORDER_CREATED in one ``atomic()`` block; the worker delivers
it to a loopback receiver that verifies the JWS against the JWKS the Django app serves. The
view that fails after saving rolls back and sends nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from engine.procs import wait_until

from webhookkit import Delivery, DeliveryQuery, DeliveryStatus, WebhookKit
from webhookkit.exceptions import SignatureError
from webhookkit.signing import JWKSVerifier, generate_key
from webhookkit.signing.hmac import hmac_signature

SHOP = Path(__file__).resolve().parents[2] / "examples" / "django_shop"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class VerifyingReceiver:
    """Accepts only deliveries whose JWS verifies against the shop's JWKS."""

    verifier: JWKSVerifier
    url: str = ""
    verified: list[dict[str, object]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        try:
            await self.verifier.verify(body, headers)
        except SignatureError as exc:
            self.rejected.append(str(exc))
            return web.Response(status=401)
        self.verified.append(json.loads(body))
        self.headers.append(headers)
        return web.Response(status=200)


@dataclass
class Shop:
    """The example project's processes, sharing one environment."""

    env: dict[str, str]
    logs: Path
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)

    async def manage(self, *args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "manage.py",
            *args,
            cwd=SHOP,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 90)
        text = out.decode(errors="replace")
        assert process.returncode == 0, f"manage.py {' '.join(args)}:\n{text}"
        return text

    async def start(self, name: str, *args: str) -> Path:
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "manage.py",
                *args,
                cwd=SHOP,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return log

    async def stop(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "signing-key.pem"
    path.write_bytes(generate_key("EdDSA").private_pem())
    return path


@pytest.fixture
def shop_env(key_file: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SHOP_SIGNING_KEY_FILE": str(key_file),
        "SHOP_HOOK_SECRET": "test-hook-secret",
        "PYTHONUNBUFFERED": "1",
    }


async def run_shop(
    tmp_path: Path, env: dict[str, str], database_url: str, store: str
) -> tuple[VerifyingReceiver, list[Delivery]]:
    """Migrate, set up, serve, POST both orders, run a worker until nothing is pending; the
    receiver and the stored deliveries (exactly the committed one) go back to the caller."""
    port = free_port()
    shop = Shop({**env, "SHOP_DATABASE_URL": database_url}, tmp_path)
    receiver = VerifyingReceiver(JWKSVerifier(f"http://127.0.0.1:{port}/.well-known/jwks.json"))
    app = web.Application()
    app.router.add_post("/hooks", receiver.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        await shop.manage("migrate", "--verbosity", "0")
        await shop.manage("shop_setup", f"{receiver.url}/hooks")
        server_log = await shop.start("runserver", "runserver", "--noreload", f"127.0.0.1:{port}")
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:

            async def serving() -> bool:
                try:
                    async with http.get(f"{base}/.well-known/jwks.json") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_until(serving, timeout=60, what=f"runserver\n{server_log.read_text()}")
            order = {"number": "1001", "total": "25.00"}
            async with http.post(f"{base}/orders/", json=order) as response:
                assert response.status == 201, await response.text()
                created = await response.json()
            assert len(created["deliveries"]) == 1
            declined = {"number": "1002", "total": "9.99"}
            async with http.post(f"{base}/orders/declined/", json=declined) as response:
                assert response.status == 402, await response.text()
            await check_receiving_view(http, base)

        worker_log = await shop.start("worker", "webhookkit_worker", "--poll", "0.2")
        worker = shop.processes[-1]
        await wait_until(
            lambda: "worker ready" in worker_log.read_text() or worker.returncode is not None,
            timeout=60,
            what="the worker to start",
        )
        assert worker.returncode is None, f"the worker exited:\n{worker_log.read_text()}"
        async with WebhookKit(store=store, retention=None) as reader:

            async def delivered() -> bool:
                pending = await reader.list_deliveries(DeliveryQuery(status=DeliveryStatus.PENDING))
                return bool(receiver.verified) and not pending

            try:
                await wait_until(delivered, timeout=60, what="the worker to deliver")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{worker_log.read_text()[-3000:]}") from None
            stored = await reader.list_deliveries()
        assert [d.id for d in stored] == created["deliveries"], "the rolled-back view left rows"
        assert [d.status for d in stored] == [DeliveryStatus.SUCCESS]
    finally:
        await shop.stop()
        await runner.cleanup()
    return receiver, stored


async def check_receiving_view(http: aiohttp.ClientSession, base: str) -> None:
    """``@verify_webhook``: a signed body reaches the view, a tampered one gets 401."""
    body = json.dumps({"order": {"number": "77"}}).encode()
    signed = {
        "Saleor-Signature": hmac_signature(body, "test-hook-secret"),
        "Saleor-Event": "order_created",
        "Content-Type": "application/json",
    }
    async with http.post(f"{base}/hooks/order-created/", data=body, headers=signed) as response:
        assert response.status == 200, await response.text()
        assert await response.json() == {"event": "order_created", "order": "77"}
    async with http.post(
        f"{base}/hooks/order-created/", data=body.replace(b"77", b"78"), headers=signed
    ) as response:
        assert response.status == 401
        assert "signature mismatch" in await response.text()


def check_delivery(receiver: VerifyingReceiver) -> None:
    assert receiver.rejected == []
    assert receiver.verified == [{"order": {"number": "1001", "total": "25.00"}}]
    assert receiver.headers[0]["Saleor-Event"] == "order_created"
    assert receiver.headers[0]["Saleor-Domain"] == "shop.example.com"


async def test_django_shop_on_postgresql(
    tmp_path: Path, shop_env: dict[str, str], pg_dsn: str
) -> None:
    import asyncpg

    receiver, _ = await run_shop(tmp_path, shop_env, pg_dsn, pg_dsn)
    check_delivery(receiver)
    conn = await asyncpg.connect(pg_dsn)
    try:
        numbers = [r["number"] for r in await conn.fetch("SELECT number FROM orders_order")]
    finally:
        await conn.close()
    assert numbers == ["1001"]


async def test_django_shop_on_sqlite(tmp_path: Path, shop_env: dict[str, str]) -> None:
    path = tmp_path / "shop.db"
    # No key configured: the store keeps one key set for the web process and the worker.
    env = {k: v for k, v in shop_env.items() if k != "SHOP_SIGNING_KEY_FILE"}
    receiver, _ = await run_shop(tmp_path, env, f"sqlite:///{path}", f"sqlite:///{path}")
    check_delivery(receiver)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT number FROM orders_order").fetchall() == [("1001",)]
