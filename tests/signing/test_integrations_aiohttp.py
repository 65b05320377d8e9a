"""aiohttp receivers: the kit delivers to a real loopback app that verifies with the kit's JWKS."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from conftest import LOOPBACK

from webhookkit import HTTPTransport, WebhookKit
from webhookkit.integrations import WebhookEvent
from webhookkit.integrations.aiohttp import (
    add_jwks_route,
    get_event,
    jwks_handler,
    verified,
    verify_middleware,
)
from webhookkit.signing import (
    HMACVerifier,
    JWKSVerifier,
    JWSSigner,
    Verifier,
    generate_key,
    hmac_signature,
)

Serve = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


def receiver_app(verifier: Verifier, events: list[WebhookEvent]) -> web.Application:
    @verified(verifier)
    async def order_created(request: web.Request, event: WebhookEvent) -> web.Response:
        events.append(event)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/webhooks/order-created", order_created)
    return app


async def test_kit_delivery_verified_by_decorated_handler_with_the_served_jwks(
    serve: Serve,
) -> None:
    async with WebhookKit(
        domain="shop.example.com", transports=[HTTPTransport(allow_addresses=LOOPBACK)]
    ) as kit:
        sender = web.Application()
        add_jwks_route(sender, kit)
        jwks_url = await serve(sender) + "/.well-known/jwks.json"
        events: list[WebhookEvent] = []
        url = await serve(receiver_app(JWKSVerifier(jwks_url), events))
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        await kit.webhooks.create(
            app, target_url=url + "/webhooks/order-created", events=["ORDER_CREATED"]
        )
        ids = await kit.trigger("ORDER_CREATED", payload={"order": {"id": "1"}})
        [delivery] = await kit.wait_for(ids, timeout=30)
        assert delivery.status.value == "success"
    [event] = events
    assert event.event == "order_created"
    assert event.domain == "shop.example.com"
    assert event.api_url == "https://shop.example.com/graphql/"
    assert event.payload == {"order": {"id": "1"}}
    assert event.body == b'{"order":{"id":"1"}}'


@pytest.mark.parametrize(
    ("headers", "body", "status", "reason"),
    [
        ({}, b"{}", 401, "malformed signature: Saleor-Signature header is missing"),
        ({"Saleor-Signature": "x"}, b"{}", 401, "malformed signature"),
        ({"Saleor-Signature": "forged"}, b"{}", 401, "malformed signature"),
        ("stranger", b"{}", 401, "unknown key"),
        ("tampered", b"{}", 401, "signature mismatch"),
        ("genuine-not-json", b"not json", 400, "not JSON"),
    ],
    ids=["missing", "junk", "forged", "stranger", "tampered", "not-json"],
)
async def test_failures_answer_with_a_short_reason(
    serve: Serve,
    headers: dict[str, str] | str,
    body: bytes,
    status: int,
    reason: str,
) -> None:
    signer = JWSSigner(generate_key("ES256"))
    events: list[WebhookEvent] = []
    url = await serve(receiver_app(JWKSVerifier(jwks=signer.jwks()), events))
    if headers == "stranger":
        headers = {"Saleor-Signature": JWSSigner(generate_key("ES256")).sign(body)}
    elif headers == "tampered":
        headers = {"Saleor-Signature": signer.sign(body + b" ")}
    elif headers == "genuine-not-json":
        headers = {"Saleor-Signature": signer.sign(body)}
    assert isinstance(headers, dict)
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/webhooks/order-created", data=body, headers=headers) as response,
    ):
        text = await response.text()
    assert (response.status, reason in text) == (status, True), text
    assert len(text) <= 300
    assert events == []


async def test_unreachable_jwks_answers_503_so_saleor_retries(serve: Serve) -> None:
    signer = JWSSigner(generate_key("RS256"))
    url = await serve(receiver_app(JWKSVerifier("http://127.0.0.1:1/.well-known/jwks.json"), []))
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url + "/webhooks/order-created",
            data=b"{}",
            headers={"Saleor-Signature": signer.sign(b"{}")},
        ) as response,
    ):
        assert response.status == 503
        assert "jwks unavailable" in await response.text()


async def test_middleware_verifies_only_its_paths(serve: Serve) -> None:
    seen: list[WebhookEvent] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append(get_event(request))
        return web.Response(text="ok")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="up")

    app = web.Application(middlewares=[verify_middleware(HMACVerifier("k"), paths=["/hooks"])])
    app.router.add_post("/hooks/a", hook)
    app.router.add_get("/hooks/a", health)
    app.router.add_post("/other", health)
    url = await serve(app)
    body = b'{"id":1}'
    async with aiohttp.ClientSession() as session:
        async with session.post(
            url + "/hooks/a",
            data=body,
            headers={
                "saleor-signature": hmac_signature(body, "k"),
                "Saleor-Event": "ORDER_CREATED",
            },
        ) as ok:
            assert ok.status == 200
        async with session.post(url + "/hooks/a", data=body) as refused:
            assert refused.status == 401
        async with session.get(url + "/hooks/a") as get:
            assert get.status == 200
        async with session.post(url + "/other", data=b"x") as other:
            assert other.status == 200
    [event] = seen
    assert (event.event, event.payload) == ("order_created", {"id": 1})


async def test_jwks_handler_serves_every_published_key_with_cache_control(serve: Serve) -> None:
    signer = JWSSigner(generate_key("RS256"))
    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", jwks_handler(signer.keys, max_age=120))
    url = await serve(app) + "/.well-known/jwks.json"
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            assert response.headers["Cache-Control"] == "public, max-age=120"
            assert response.content_type == "application/json"
            assert json.loads(await response.read()) == signer.jwks()
        new = generate_key("EdDSA")
        signer.keys.add(new)  # rotation step 1 shows at once
        async with session.get(url) as response:
            kids = [k["kid"] for k in (await response.json())["keys"]]
    assert kids == [signer.key.kid, new.kid]
