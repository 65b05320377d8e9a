"""An aiohttp shop with the webhookkit dashboard mounted at /webhooks/.

Staff log in with a password (the host's own login; the dashboard only asks the
``authorize`` callable which permissions the request carries). The shop page places orders,
which trigger ORDER_CREATED; ``/receiver`` stands in for an app receiving the webhooks.

    python examples/dashboard_aiohttp.py           # a scripted walk through it, then exit
    python examples/dashboard_aiohttp.py --serve   # keep serving on http://127.0.0.1:8080/
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import secrets
import sys
from collections.abc import Collection
from typing import Any

import aiohttp
from aiohttp import web

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


class Shop:
    """The host application: orders, a staff login and the kit."""

    def __init__(self) -> None:
        # Loopback is allowed so the demo's own /receiver can get the webhooks.
        self.kit = WebhookKit(
            domain="shop.example.com",
            transports=[HTTPTransport(allow_addresses=["127.0.0.1/32"])],
            payloads=GraphQLPayloads(SCHEMA),
        )
        self.orders: dict[str, dict[str, Any]] = {}
        self.staff_sessions: set[str] = set()
        self.received: list[bytes] = []
        self.fail_receiver = False

    def authorize(self, request: DashboardRequest) -> Collection[str]:
        """The dashboard's question: what may this request do? Staff may manage apps."""
        session = request.cookies.get(STAFF_COOKIE, "")
        return {"MANAGE_APPS"} if session in self.staff_sessions else set()

    def load_order(self, object_id: str) -> dict[str, Any] | None:
        """The dashboard's dry run renders a subscription query for one of these."""
        return self.orders.get(object_id)

    async def home(self, request: web.Request) -> web.Response:
        rows = "".join(f"<li>order {html.escape(i)}</li>" for i in self.orders)
        return web.Response(
            content_type="text/html",
            text=(
                "<!doctype html><title>Shop</title><h1>Shop</h1>"
                '<form method="post" action="/login"><input type="password" name="password">'
                "<button>Staff login</button></form>"
                '<form method="post" action="/orders"><button id="place-order">Place an order'
                f"</button></form><ul>{rows}</ul>"
                '<p><a href="/webhooks/">Webhooks dashboard</a></p>'
            ),
        )

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        if not secrets.compare_digest(str(form.get("password", "")), PASSWORD):
            raise web.HTTPForbidden(text="wrong password")
        session = secrets.token_urlsafe(32)
        self.staff_sessions.add(session)
        response = web.HTTPSeeOther("/webhooks/")
        response.set_cookie(STAFF_COOKIE, session, httponly=True, samesite="Strict")
        raise response

    async def place_order(self, request: web.Request) -> web.Response:
        if request.cookies.get(STAFF_COOKIE, "") not in self.staff_sessions:
            raise web.HTTPForbidden(text="log in first")
        order_id = str(len(self.orders) + 1)
        order = {"id": order_id, "number": 1000 + len(self.orders), "total": 42.5}
        self.orders[order_id] = order
        await self.kit.trigger("ORDER_CREATED", subject=order)
        raise web.HTTPSeeOther("/")

    async def receiver(self, request: web.Request) -> web.Response:
        self.received.append(await request.read())
        return web.Response(status=500 if self.fail_receiver else 200, text="thanks")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.home)
        app.router.add_post("/login", self.login)
        app.router.add_post("/orders", self.place_order)
        app.router.add_post("/receiver", self.receiver)
        dashboard = Dashboard(self.kit, authorize=self.authorize, object_loader=self.load_order)
        app.add_subapp("/webhooks/", dashboard.aiohttp_app())

        async def kit_lifecycle(app: web.Application) -> Any:
            async with self.kit:
                yield

        app.cleanup_ctx.append(kit_lifecycle)
        return app


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert found, "no form on the page"
    return found.group(1)


async def walk(shop: Shop, base: str) -> None:
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
            "secret_key": "erp-shared-secret",
            "is_active": "on",
        }
        async with http.post(base + "/webhooks/webhooks/new", data=form) as r:
            assert r.status == 200, await r.text()
        async with http.post(base + "/orders") as r:
            assert r.status == 200
        await shop.kit.wait_for([d.id for d in await shop.kit.list_deliveries()], timeout=30)
        async with http.get(base + "/webhooks/deliveries") as r:
            log = await r.text()
    print("dashboard at", base + "/webhooks/")
    print("deliveries listed:", log.count('class="delivery success"'), "successful")
    print("receiver got:", shop.received[0].decode())
    assert log.count('class="delivery success"') == 1


async def main(serve: bool) -> None:
    shop = Shop()
    runner = web.AppRunner(shop.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 8080 if serve else 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        if serve:
            print(f"shop on {base}/  (staff password: {PASSWORD})")
            await asyncio.Event().wait()
        else:
            await walk(shop, base)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main("--serve" in sys.argv))
