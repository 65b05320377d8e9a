"""A FastAPI shop with the webhookkit dashboard mounted at /webhooks (an ASGI mount).

Staff log in with a password (the host's own login; the dashboard only asks the
``authorize`` callable which permissions the request carries). ``POST /orders`` places an
order, which triggers ORDER_CREATED; ``/receiver`` stands in for the app receiving it.

    python examples/dashboard_fastapi.py           # a scripted walk through it, then exit
    python examples/dashboard_fastapi.py --serve   # keep serving on http://127.0.0.1:8000/
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import sys
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from webhookkit import HTTPTransport, WebhookKit
from webhookkit.dashboard import Dashboard, DashboardRequest
from webhookkit.payloads.graphql import GraphQLPayloads

SCHEMA = """
scalar DateTime
type Query { shop: String }
interface Event { issuedAt: DateTime }
type Order { id: ID! number: Int! total: Float }
type OrderCreated implements Event { issuedAt: DateTime order: Order }
type Subscription { event: Event }
"""
QUERY = """subscription {
  event {
    ... on OrderCreated {
      order { id number total }
    }
  }
}"""
PASSWORD = os.environ.get("DASHBOARD_PASSWORD") or secrets.token_urlsafe(12)
STAFF_COOKIE = "staff"

# Loopback is allowed so the demo's own /receiver can get the webhooks.
kit = WebhookKit(
    domain="shop.example.com",
    transports=[HTTPTransport(allow_addresses=["127.0.0.1/32"])],
    payloads=GraphQLPayloads(SCHEMA),
)
orders: dict[str, dict[str, Any]] = {}
staff_sessions: set[str] = set()
received: list[bytes] = []


def authorize(request: DashboardRequest) -> Collection[str]:
    """The dashboard's question: what may this request do? Staff may manage apps."""
    return {"MANAGE_APPS"} if request.cookies.get(STAFF_COOKIE, "") in staff_sessions else set()


def load_order(object_id: str) -> dict[str, Any] | None:
    """The dashboard's dry run renders a subscription query for one of these."""
    return orders.get(object_id)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with kit:
        yield


app = FastAPI(lifespan=lifespan)
app.mount("/webhooks", Dashboard(kit, authorize=authorize, object_loader=load_order).asgi_app())


@app.get("/", response_class=HTMLResponse)
async def home() -> str:
    return (
        '<!doctype html><title>Shop</title><h1>Shop</h1><form method="post" action="/login">'
        '<input type="password" name="password"><button>Staff login</button></form>'
        '<form method="post" action="/orders"><button>Place an order</button></form>'
        f'<p>{len(orders)} orders. <a href="/webhooks/">Webhooks dashboard</a></p>'
    )


@app.post("/login")
async def login(request: Request) -> Response:
    form = dict(parse_qsl((await request.body()).decode()))
    if not secrets.compare_digest(form.get("password", ""), PASSWORD):
        return Response("wrong password", status_code=403)
    session = secrets.token_urlsafe(32)
    staff_sessions.add(session)
    response = RedirectResponse("/webhooks/", status_code=303)
    response.set_cookie(STAFF_COOKIE, session, httponly=True, samesite="strict")
    return response


@app.post("/orders")
async def place_order(request: Request) -> Response:
    if request.cookies.get(STAFF_COOKIE, "") not in staff_sessions:
        return Response("log in first", status_code=403)
    order_id = str(len(orders) + 1)
    orders[order_id] = order = {"id": order_id, "number": 1000 + len(orders), "total": 42.5}
    await kit.trigger("ORDER_CREATED", subject=order)
    return RedirectResponse("/", status_code=303)


@app.post("/receiver")
async def receiver(request: Request) -> Response:
    received.append(await request.body())
    return Response("thanks")


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert found, "no form on the page"
    return found.group(1)


async def walk(base: str) -> None:
    """What a staff member does: log in, create an app and a webhook, place an order."""
    # unsafe=True: keep cookies for a bare IP address such as 127.0.0.1.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(base + "/login", data={"password": PASSWORD}) as r:
            assert r.status == 200 and r.url.path == "/webhooks/apps", r.status
            token = csrf(await r.text())
        form = {"csrf_token": token, "name": "ERP", "full_access": "on", "is_active": "on"}
        async with http.post(base + "/webhooks/apps", data=form) as r:
            app_id = r.url.path.rsplit("/", 1)[1]
        form = {
            "csrf_token": token,
            "app_id": app_id,
            "name": "orders to ERP",
            "target_url": base + "/receiver",
            "subscription_query": QUERY,
            "is_active": "on",
        }
        async with http.post(base + "/webhooks/webhooks/new", data=form) as r:
            assert r.status == 200, await r.text()
        async with http.post(base + "/orders") as r:
            assert r.status == 200
        await kit.wait_for([d.id for d in await kit.list_deliveries()], timeout=30)
        async with http.get(base + "/webhooks/deliveries") as r:
            log = await r.text()
    print("dashboard at", base + "/webhooks/")
    print("deliveries listed:", log.count('class="delivery success"'), "successful")
    print("receiver got:", received[0].decode())
    assert log.count('class="delivery success"') == 1


async def main(serve: bool) -> None:
    config = uvicorn.Config(app, host="127.0.0.1", port=8000 if serve else 0, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    if serve:
        print(f"shop on {base}/  (staff password: {PASSWORD})")
        await task
        return
    try:
        await walk(base)
    finally:
        server.should_exit = True
        await task


if __name__ == "__main__":
    asyncio.run(main("--serve" in sys.argv))
