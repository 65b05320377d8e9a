"""The FastAPI example shop (examples/fastapi_shop) under uvicorn on a real PostgreSQL.

An endpoint writes an order through SQLAlchemy's AsyncSession (asyncpg driver) and queues
ORDER_CREATED in the same transaction; the web process sends it to a loopback receiver that
verifies the JWS against the JWKS the shop serves. The endpoint that fails after writing
rolls back, and nothing of it is stored or sent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web
from engine.procs import wait_until

from integrations.test_django_example import VerifyingReceiver, free_port
from webhookkit import DeliveryQuery, DeliveryStatus, WebhookKit
from webhookkit.signing import JWKSVerifier, generate_key

SHOP = Path(__file__).resolve().parents[2] / "examples" / "fastapi_shop"


async def test_fastapi_shop_delivers_only_what_commits(tmp_path: Path, pg_dsn: str) -> None:
    key_file = tmp_path / "signing-key.pem"
    key_file.write_bytes(generate_key("EdDSA").private_pem())
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    receiver = VerifyingReceiver(JWKSVerifier(f"{base}/.well-known/jwks.json"))
    hooks = web.Application()
    hooks.router.add_post("/hooks", receiver.handle)
    runner = web.AppRunner(hooks, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    env = {
        **os.environ,
        "SHOP_DATABASE_URL": pg_dsn,
        "SHOP_WEBHOOK_URL": f"{receiver.url}/hooks",
        "SHOP_SIGNING_KEY_FILE": str(key_file),
        "SHOP_ALLOW": "127.0.0.1/32",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "uvicorn.log"
    with log.open("wb") as out:
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "uvicorn",
            "orders_api:app",
            "--app-dir",
            str(SHOP),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        async with aiohttp.ClientSession() as http:

            async def serving() -> bool:
                if server.returncode is not None:
                    raise AssertionError(f"uvicorn exited:\n{log.read_text()}")
                try:
                    async with http.get(f"{base}/.well-known/jwks.json") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_until(serving, timeout=60, what="uvicorn to serve the shop")
            order = {"number": "2001", "total": "12.50"}
            async with http.post(f"{base}/orders", json=order) as response:
                assert response.status == 201, await response.text()
                created = await response.json()
            assert len(created["deliveries"]) == 1
            declined = {"number": "2002", "total": "3.00"}
            async with http.post(f"{base}/orders/declined", json=declined) as response:
                assert response.status == 402, await response.text()

        async with WebhookKit(store=pg_dsn, retention=None) as reader:

            async def delivered() -> bool:
                pending = await reader.list_deliveries(DeliveryQuery(status=DeliveryStatus.PENDING))
                return bool(receiver.verified) and not pending

            await wait_until(delivered, timeout=60, what="the shop to send ORDER_CREATED")
            stored = await reader.list_deliveries()
        server.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once the lifespan (and the kit) shut down cleanly.
        assert await asyncio.wait_for(server.wait(), 60) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in log.read_text()
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
        await runner.cleanup()

    assert [d.id for d in stored] == created["deliveries"], "the rolled-back endpoint left rows"
    assert [d.status for d in stored] == [DeliveryStatus.SUCCESS]
    assert receiver.rejected == []
    assert receiver.verified == [{"order": {"number": "2001", "total": "12.50"}}]
    assert receiver.headers[0]["Saleor-Domain"] == "shop.example.com"
    conn = await asyncpg.connect(pg_dsn)
    try:
        numbers = [r["number"] for r in await conn.fetch("SELECT number FROM shop_orders")]
    finally:
        await conn.close()
    assert numbers == ["2001"]
