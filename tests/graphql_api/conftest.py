"""The example host (examples/graphql_host.py) on a free loopback port, and GraphQL callers
for each kind of requestor: staff with and without MANAGE_APPS, apps by token, anonymous."""

from __future__ import annotations

import importlib.util
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from webhookkit import WebhookKit
from webhookkit.graphql import StaffUser

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "graphql_host.py"
ADMIN_KEY = "staff-admin-key-0123456789"
CLERK_KEY = "staff-clerk-key-0123456789"
ADMIN = StaffUser("1", "admin@example.com", frozenset({"MANAGE_APPS", "MANAGE_ORDERS"}))
CLERK = StaffUser("2", "clerk@example.com", frozenset({"MANAGE_ORDERS"}))


def load_example() -> ModuleType:
    """examples/graphql_host.py as a module (examples/ is not a package)."""
    name = "graphql_host_example"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


Call = Callable[..., Awaitable[dict[str, Any]]]


@dataclass
class Host:
    """The running example host: its URL, kit, and a caller per authorization header."""

    url: str
    kit: WebhookKit
    app: web.Application
    session: aiohttp.ClientSession

    @property
    def api_url(self) -> str:
        return f"{self.url}/graphql/"

    async def call(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.post(
            self.api_url, json={"query": query, "variables": variables or {}}, headers=headers
        ) as response:
            assert response.status == 200, await response.text()
            answer: dict[str, Any] = await response.json()
            return answer

    async def admin(self, query: str, **variables: Any) -> dict[str, Any]:
        return await self.call(query, variables, token=ADMIN_KEY)


async def start_host(stack: list[Callable[[], Awaitable[None]]], store: str | None = None) -> Host:
    example = load_example()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = example.create_app(
        api_url=f"{url}/graphql/",
        staff={ADMIN_KEY: ADMIN, CLERK_KEY: CLERK},
        allow_loopback=True,
        store=store,
    )
    runner = web.AppRunner(app)
    await runner.setup()
    stack.append(runner.cleanup)
    await web.TCPSite(runner, "127.0.0.1", port).start()
    session = aiohttp.ClientSession()
    stack.append(session.close)
    return Host(url=url, kit=app[example.KIT], app=app, session=session)


@pytest.fixture
async def host() -> AsyncIterator[Host]:
    cleanups: list[Callable[[], Awaitable[None]]] = []
    try:
        yield await start_host(cleanups)
    finally:
        for cleanup in reversed(cleanups):
            await cleanup()
