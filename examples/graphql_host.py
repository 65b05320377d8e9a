"""A small shop serving GraphQL with Saleor's webhook and app management API mounted.

The shop has its own schema (products, orders, ``orderCreate``) and adds webhookkit's
management API with one call, ``extend_schema(SHOP_SDL, kit)``. It serves:

- ``POST /graphql/``: the merged schema. Staff authenticate with ``Authorization: Bearer
  <staff key>`` (the shop's own scheme), apps with their webhookkit token;
- ``GET /.well-known/jwks.json``: the keys receivers verify JWS signatures with.

Run ``python examples/graphql_host.py`` for a demo on loopback (it creates an app and the
documents' webhook through the API, places an order, prints what happened and exits), or
``python examples/graphql_host.py --serve --port 8000`` to keep serving; the staff key is
printed at start. Tests import :func:`create_app`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from graphql import GraphQLError, GraphQLSchema, build_schema, graphql

from webhookkit import EventType, HTTPTransport, WebhookKit
from webhookkit.graphql import (
    Requestor,
    StaffUser,
    authenticate_app,
    bearer_token,
    extend_schema,
    to_global_id,
)
from webhookkit.payloads import SerializerPayloads
from webhookkit.payloads.graphql import GraphQLPayloads

SHOP_SDL = """
scalar DateTime

type Query {
  products: [Product!]!
  orders: [Order!]!
}

type Mutation {
  orderCreate(input: OrderCreateInput!): OrderCreate
}

input OrderLineInput {
  sku: String!
  quantity: Int!
}

input OrderCreateInput {
  email: String!
  channel: String = "default"
  lines: [OrderLineInput!]!
}

type OrderCreate {
  order: Order
}

type Product {
  id: ID!
  sku: String!
  name: String!
  price: Float!
}

type Channel {
  slug: String!
}

type OrderLine {
  sku: String!
  productName: String!
  quantity: Int!
}

type Order {
  id: ID!
  number: Int!
  email: String!
  channel: Channel!
  lines: [OrderLine!]!
  total: Float!
}

interface Event {
  issuedAt: DateTime
  version: String
  issuingPrincipal: IssuingPrincipal
  recipient: App
}

union IssuingPrincipal = App | User

type App {
  id: ID!
  name: String
}

type User {
  id: ID!
  email: String
}

type OrderCreated implements Event {
  issuedAt: DateTime
  version: String
  issuingPrincipal: IssuingPrincipal
  recipient: App
  order: Order
}

type AppInstalled implements Event {
  issuedAt: DateTime
  version: String
  issuingPrincipal: IssuingPrincipal
  recipient: App
  app: App
}

type Subscription {
  event: Event
  orderCreated(channels: [String!]): OrderCreated
}
"""

PRODUCTS = {
    "TSHIRT-M": {"sku": "TSHIRT-M", "name": "T-shirt (M)", "price": 19.5},
    "MUG": {"sku": "MUG", "name": "Mug", "price": 8.0},
}


@dataclass
class Shop:
    """The host's own data: products and the orders placed so far."""

    kit: WebhookKit
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def place_order(self, data: Mapping[str, Any], requestor: Requestor) -> dict[str, Any]:
        lines = []
        for line in data["lines"]:
            product = PRODUCTS.get(line["sku"])
            if product is None:
                raise GraphQLError(f"Unknown product: {line['sku']}")
            lines.append(
                {"sku": line["sku"], "productName": product["name"], "quantity": line["quantity"]}
            )
        number = len(self.orders) + 1
        order = {
            "id": to_global_id("Order", str(number)),
            "number": number,
            "email": data["email"],
            "channel": {"slug": data.get("channel") or "default"},
            "lines": lines,
            "total": sum(PRODUCTS[x["sku"]]["price"] * x["quantity"] for x in lines),
        }
        self.orders[str(number)] = order
        principal = (
            {
                "__typename": "User",
                "id": to_global_id("User", requestor.id),
                "email": requestor.email,
            }
            if isinstance(requestor, StaffUser)
            else requestor
        )
        await self.kit.trigger("ORDER_CREATED", subject=order, requestor=principal)
        return order

    def load_object(self, type_name: str, pk: str) -> Any:
        """What ``webhookDryRun``/``webhookTrigger`` ``objectId`` values name."""
        return self.orders.get(pk) if type_name == "Order" else None


def _order(order: Any, _event: EventType) -> Any:
    return {"order": order}


KIT = web.AppKey("kit", WebhookKit)
SHOP = web.AppKey("shop", Shop)


def build_kit(
    *, domain: str, api_url: str, allow_loopback: bool = False, store: str | None = None
) -> WebhookKit:
    """The shop's kit; its HTTP transport may reach loopback receivers (for tests, demos)."""
    return WebhookKit(
        domain=domain,
        api_url=api_url,
        store=store,
        transports=[HTTPTransport(allow_addresses=["127.0.0.1/32"] if allow_loopback else ())],
        # Webhooks without a subscription query (the documents' example) get the serializer's
        # body; those with one get their query's result.
        payloads=GraphQLPayloads(SHOP_SDL, fallback=SerializerPayloads({"order_created": _order})),
    )


def build_schema_for(shop: Shop) -> GraphQLSchema:
    """The shop's schema with its resolvers, then webhookkit's management API merged in."""
    schema = build_schema(SHOP_SDL)
    query, mutation = schema.query_type, schema.mutation_type
    assert query is not None and mutation is not None
    query.fields["products"].resolve = lambda _root, _info: list(PRODUCTS.values())
    query.fields["orders"].resolve = lambda _root, _info: list(shop.orders.values())

    async def order_create(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        return {"order": await shop.place_order(input, info.context["requestor"])}

    mutation.fields["orderCreate"].resolve = order_create
    return extend_schema(schema, shop.kit, load_object=shop.load_object)


async def _requestor(
    kit: WebhookKit, staff: Mapping[str, StaffUser], authorization: str | None
) -> Requestor:
    token = bearer_token(authorization)
    if token is None:
        return None
    user = staff.get(token)
    if user is not None:
        return user
    return await authenticate_app(kit, authorization)


def create_app(
    *,
    api_url: str,
    domain: str | None = None,
    staff: Mapping[str, StaffUser] | None = None,
    allow_loopback: bool = False,
    store: str | None = None,
) -> web.Application:
    """The shop as an aiohttp application; the kit starts and stops with it.

    ``api_url`` is the public URL of ``/graphql/`` (sent as ``Saleor-Api-Url``); ``staff``
    maps staff keys to users. ``app[KIT]`` and ``app[SHOP]`` are there for tests.
    """
    host = domain or urlsplit(api_url).netloc
    kit = build_kit(domain=host, api_url=api_url, allow_loopback=allow_loopback, store=store)
    shop = Shop(kit)
    schema = build_schema_for(shop)
    staff_keys = dict(staff or {})

    async def graphql_view(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"errors": [{"message": "Invalid JSON body."}]}, status=400)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return web.json_response({"errors": [{"message": "Missing query."}]}, status=400)
        requestor = await _requestor(kit, staff_keys, request.headers.get("Authorization"))
        result = await graphql(
            schema,
            body["query"],
            variable_values=body.get("variables"),
            operation_name=body.get("operationName"),
            context_value={"requestor": requestor, "request": request},
        )
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [e.formatted for e in result.errors]
        return web.json_response(answer)

    async def jwks_view(request: web.Request) -> web.Response:
        return web.json_response(kit.jwks())

    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        async with kit:
            yield

    app = web.Application()
    app[KIT] = kit
    app[SHOP] = shop
    app.router.add_post("/graphql/", graphql_view)
    app.router.add_get("/.well-known/jwks.json", jwks_view)
    app.cleanup_ctx.append(lifespan)
    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the demo ------------------------------------------------------------------------------------

WEBHOOK_CREATE = """
mutation ($app: ID, $url: String) {
  webhookCreate(input: {
    name: "New orders notification"
    targetUrl: $url
    events: [ORDER_CREATED]
    app: $app
    isActive: true
    secretKey: "secret-key"
  }) {
    webhook { id name isActive }
    webhookErrors { field code message }
  }
}
"""


async def demo() -> None:
    """Create an app and the documents' webhook over HTTP, place an order, show the delivery."""
    received: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append({"event": request.headers["Saleor-Event"], "body": await request.json()})
        return web.Response(text="ok")

    receiver = web.Application()
    receiver.router.add_post("/hooks", receive)
    receiver_runner = web.AppRunner(receiver)
    await receiver_runner.setup()
    receiver_port = free_port()
    await web.TCPSite(receiver_runner, "127.0.0.1", receiver_port).start()

    port = free_port()
    staff_key = secrets.token_urlsafe(16)
    staff = StaffUser("1", "admin@example.com", frozenset({"MANAGE_APPS", "MANAGE_ORDERS"}))
    app = create_app(
        api_url=f"http://127.0.0.1:{port}/graphql/",
        staff={staff_key: staff},
        allow_loopback=True,
    )
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}/graphql/"
    try:
        async with aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {staff_key}"}
        ) as session:

            async def call(query: str, **variables: Any) -> dict[str, Any]:
                async with session.post(url, json={"query": query, "variables": variables}) as r:
                    answer: dict[str, Any] = await r.json()
                    return answer

            created = await call(
                'mutation { appCreate(input: {name: "Order processing", '
                "permissions: [MANAGE_ORDERS]}) { app { id } errors { code } } }"
            )
            app_id = created["data"]["appCreate"]["app"]["id"]
            hook = await call(
                WEBHOOK_CREATE, app=app_id, url=f"http://127.0.0.1:{receiver_port}/hooks"
            )
            print(json.dumps(hook["data"], indent=2))
            await call(
                'mutation { orderCreate(input: {email: "buyer@example.com", '
                'lines: [{sku: "MUG", quantity: 2}]}) { order { id number } } }'
            )
            kit = app[KIT]
            await kit.wait_idle()
            for _ in range(100):
                if received:
                    break
                await asyncio.sleep(0.05)
            print("delivered:", json.dumps(received))
    finally:
        await runner.cleanup()
        await receiver_runner.cleanup()
    if not received:
        sys.exit("no delivery arrived")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help="keep serving instead of the demo")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-url", help="public URL of /graphql/ (default: from host/port)")
    args = parser.parse_args(argv)
    if not args.serve:
        asyncio.run(demo())
        return
    staff_key = secrets.token_urlsafe(16)
    staff = StaffUser("1", "admin@example.com", frozenset({"MANAGE_APPS", "MANAGE_ORDERS"}))
    print(f"staff key: {staff_key}", flush=True)
    api_url = args.api_url or f"http://{args.host}:{args.port}/graphql/"
    web.run_app(
        create_app(api_url=api_url, staff={staff_key: staff}), host=args.host, port=args.port
    )


if __name__ == "__main__":
    main()
