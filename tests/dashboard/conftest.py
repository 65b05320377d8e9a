"""Fixtures for the dashboard tests: one kit helper, a host with the dashboard mounted on a
real aiohttp server, and the same dashboard as an ASGI app inside FastAPI."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiohttp import web
from fastapi import FastAPI

import webhookkit
from webhookkit import HTTPTransport, RetryPolicy, WebhookKit
from webhookkit.clock import Clock
from webhookkit.dashboard import Dashboard, DashboardRequest
from webhookkit.delivery.isolation import IsolationConfig
from webhookkit.payloads.graphql import GraphQLPayloads

#: A small Saleor-shaped host schema: Subscription.event returns the Event interface.
SCHEMA = """
scalar DateTime
type Query { shop: String }
interface Event { issuedAt: DateTime version: String }
type Order { id: ID! number: Int! total: Float email: String }
type OrderCreated implements Event { issuedAt: DateTime version: String order: Order }
type OrderUpdated implements Event { issuedAt: DateTime version: String order: Order }
type Subscription { event: Event }
"""

ORDERS: dict[str, dict[str, Any]] = {
    "42": {"id": "42", "number": 1042, "total": 99.5, "email": "<b>buyer</b>@example.com"},
    "43": {"id": "43", "number": 1043, "total": 10.0, "email": "other@example.com"},
}

#: Requests carry their permissions in this header (the tests' stand-in for a login).
PERMISSIONS_HEADER = "x-test-permissions"
ADMIN = {PERMISSIONS_HEADER: "MANAGE_APPS"}


def make_kit(
    *, clock: Clock | None = None, attempts: int = 1, isolation: IsolationConfig | None = None
) -> WebhookKit:
    """The one place the dashboard tests build a kit (the constructor is being reshaped)."""
    options: dict[str, Any] = {}
    if isolation is not None:
        # The grouped constructor takes it in DeliveryConfig; the flat one as a keyword.
        delivery_config = getattr(webhookkit, "DeliveryConfig", None)
        if delivery_config is not None:
            options["delivery"] = delivery_config(isolation=isolation)
        else:
            options["isolation"] = isolation
    return WebhookKit(
        domain="shop.example.com",
        retry=RetryPolicy.saleor(attempts),
        clock=clock,
        transports=[HTTPTransport(allow_addresses=["127.0.0.1/32"])],
        payloads=GraphQLPayloads(SCHEMA),
        **options,
    )


def permissions_from_header(request: DashboardRequest) -> Collection[str]:
    raw = request.headers.get(PERMISSIONS_HEADER, "")
    return {p.strip() for p in raw.split(",") if p.strip()}


async def load_order(object_id: str) -> dict[str, Any] | None:
    return ORDERS.get(object_id)


def make_dashboard(kit: WebhookKit, page_size: int = 50) -> Dashboard:
    return Dashboard(
        kit,
        authorize=permissions_from_header,
        object_loader=load_order,
        secret="tests-only-csrf-secret",
        page_size=page_size,
    )


CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "no CSRF field in the page"
    return found.group(1)


@dataclass
class Host:
    """A running host: ``base`` is the dashboard's URL (ends with ``/webhooks``)."""

    kit: WebhookKit
    dashboard: Dashboard
    base: str
    client: httpx.AsyncClient


@pytest.fixture
async def kit() -> AsyncIterator[WebhookKit]:
    async with make_kit() as kit:
        yield kit


async def start_aiohttp_host(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@asynccontextmanager
async def serve(kind: str, kit: WebhookKit, page_size: int = 50) -> AsyncIterator[Host]:
    """The dashboard mounted at /webhooks: ``aiohttp`` as a sub-app of a real server on
    loopback, ``asgi`` as an ASGI app in FastAPI reached through httpx's ASGI transport."""
    dashboard = make_dashboard(kit, page_size)
    if kind == "aiohttp":
        app = web.Application()
        app.add_subapp("/webhooks/", dashboard.aiohttp_app())
        runner, url = await start_aiohttp_host(app)
        try:
            async with httpx.AsyncClient(base_url=url) as client:
                yield Host(kit, dashboard, url + "/webhooks", client)
        finally:
            await runner.cleanup()
    else:
        fastapi = FastAPI()
        fastapi.mount("/webhooks", dashboard.asgi_app())
        transport = httpx.ASGITransport(app=fastapi)
        async with httpx.AsyncClient(transport=transport, base_url="http://host.test") as client:
            yield Host(kit, dashboard, "http://host.test/webhooks", client)


@pytest.fixture
async def aiohttp_host(kit: WebhookKit) -> AsyncIterator[Host]:
    async with serve("aiohttp", kit) as served:
        yield served


@pytest.fixture(params=["aiohttp", "asgi"])
async def host(request: pytest.FixtureRequest, kit: WebhookKit) -> AsyncIterator[Host]:
    """Each test using it runs against both adapters."""
    async with serve(request.param, kit) as served:
        yield served


class Browser:
    """A form-filling client: keeps the session cookie and the page's CSRF token."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.token = ""

    async def get(self, path: str, status: int = 200) -> str:
        response = await self.host.client.get(self.host.base + path, headers=ADMIN)
        assert response.status_code == status, response.text
        if CSRF_RE.search(response.text):
            self.token = csrf_of(response.text)
        return response.text

    async def post(self, path: str, data: dict[str, Any], status: int = 303) -> httpx.Response:
        if not self.token:
            await self.get("/apps")
        response = await self.host.client.post(
            self.host.base + path, headers=ADMIN, data={"csrf_token": self.token, **data}
        )
        assert response.status_code == status, response.text
        return response
