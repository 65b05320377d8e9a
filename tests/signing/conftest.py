"""Fixtures for signing tests: a JWKS served over loopback by webhookkit's own handler, and the
Node conformance runner (Saleor's app SDK and jose verify what webhookkit signs)."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from webhookkit.integrations.aiohttp import add_jwks_route
from webhookkit.signing import KeySet

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


@dataclass
class JWKSServer:
    """webhookkit's aiohttp JWKS handler on a free loopback port; ``hits`` counts fetches."""

    keys: KeySet
    url: str = ""
    hits: int = 0
    status: int | None = None  # force an error status when set
    body: bytes | None = None  # force a body when set
    served: list[bytes] = field(default_factory=list)


@pytest.fixture
async def jwks_server() -> AsyncIterator[JWKSServer]:
    server = JWKSServer(keys=KeySet.generate())
    app = web.Application()

    @web.middleware
    async def count(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        server.hits += 1
        if server.status is not None:
            return web.Response(status=server.status, text="down")
        if server.body is not None:
            return web.Response(body=server.body, content_type="application/json")
        return await handler(request)

    app.middlewares.append(count)
    add_jwks_route(app, lambda: server.keys.jwks(), max_age=60)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
    yield server
    await runner.cleanup()


NodeRunner = Callable[[list[dict[str, Any]]], Awaitable[dict[str, dict[str, Any]]]]


def jws_case(name: str, jwks_url: str, signature: str, body: bytes) -> dict[str, Any]:
    return {
        "name": name,
        "checks": ["saleorSdk", "joseFlattened"],
        "jwksUrl": jwks_url,
        "signature": signature,
        "bodyB64": base64.b64encode(body).decode(),
    }


@pytest.fixture
def node_verify() -> NodeRunner:
    """Run tests/node/verify.mjs on a list of cases; returns results by case name."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the conformance tests need Node 18+ and npm")
    if not (NODE_DIR / "node_modules" / "@saleor" / "app-sdk").is_dir():
        pytest.fail(
            "tests/node/node_modules is missing: run `npm ci` in tests/node "
            "(scripts/test.sh does this) to install @saleor/app-sdk and jose"
        )

    async def run(cases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        # Async subprocess: the JWKS server the script fetches from runs on this same loop.
        process = await asyncio.create_subprocess_exec(
            node,
            str(NODE_DIR / "verify.mjs"),
            cwd=NODE_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(
            process.communicate(json.dumps({"cases": cases}).encode()), timeout=60
        )
        assert process.returncode == 0, stderr.decode(errors="replace")
        results = json.loads(stdout)["results"]
        return {r["name"]: r for r in results}

    return run
