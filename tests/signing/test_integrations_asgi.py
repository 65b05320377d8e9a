"""ASGI receivers: the middleware in a bare ASGI app and in FastAPI, driven through the ASGI
protocol itself (scope, receive, send), the way a server calls them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI, Request

from webhookkit.integrations import WebhookEvent
from webhookkit.integrations.asgi import (
    JWKSApp,
    JWKSMiddleware,
    VerifyMiddleware,
    event_from_scope,
)
from webhookkit.signing import (
    HMACVerifier,
    JWKSVerifier,
    JWSSigner,
    StandardWebhooksSigner,
    StandardWebhooksVerifier,
    generate_key,
    hmac_signature,
    new_secret,
)

Message = MutableMapping[str, Any]
App = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[Message]],
        Callable[[Message], Awaitable[None]],
    ],
    Awaitable[None],
]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


async def call(
    app: App,
    method: str,
    path: str,
    headers: Sequence[tuple[str, str]] = (),
    chunks: list[bytes] | None = None,
) -> Answer:
    """One HTTP request through the ASGI interface; ``chunks`` arrive as separate messages."""
    pending: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks or [b""]) - 1}
        for i, chunk in enumerate(chunks or [b""])
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body)


BODY = b'{"order":{"id":"1"}}'


def fastapi_app(verifier: Any, signer: JWSSigner | None = None) -> FastAPI:
    app = FastAPI()
    app.add_middleware(VerifyMiddleware, verifier=verifier, paths=["/webhooks"])
    if signer is not None:
        app.add_middleware(JWKSMiddleware, source=signer.keys)

    @app.post("/webhooks/order-created")
    async def order_created(request: Request) -> dict[str, Any]:
        event: WebhookEvent = request.state.webhook_event
        raw = await request.body()  # the body is replayed to the app
        return {"event": event.event, "payload": event.payload, "same": raw == event.body}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"ok": "yes"}

    return app


async def test_fastapi_receiver_gets_the_verified_event() -> None:
    signer = JWSSigner(generate_key("RS256"))
    app = fastapi_app(JWKSVerifier(jwks=signer.jwks()), signer)
    answer = await call(
        app,
        "POST",
        "/webhooks/order-created",
        [
            ("Saleor-Signature", signer.sign(BODY)),
            ("Saleor-Event", "order_created"),
            ("Saleor-Domain", "shop.example.com"),
        ],
        [BODY[:5], BODY[5:]],
    )
    assert answer.status == 200, answer.body
    assert json.loads(answer.body) == {
        "event": "order_created",
        "payload": {"order": {"id": "1"}},
        "same": True,
    }


async def test_fastapi_receiver_rejects_forgeries_with_401() -> None:
    signer = JWSSigner(generate_key("RS256"))
    app = fastapi_app(JWKSVerifier(jwks=signer.jwks()))
    answer = await call(
        app,
        "POST",
        "/webhooks/order-created",
        [("Saleor-Signature", signer.sign(BODY + b"!"))],
        [BODY],
    )
    assert answer.status == 401
    assert answer.body.startswith(b"signature mismatch")
    assert (await call(app, "GET", "/health")).status == 200


async def test_fastapi_serves_the_jwks_with_cache_control() -> None:
    signer = JWSSigner(generate_key("ES256"))
    app = fastapi_app(HMACVerifier("k"), signer)
    answer = await call(app, "GET", "/.well-known/jwks.json")
    assert answer.status == 200
    assert answer.headers["cache-control"] == "public, max-age=300"
    assert answer.headers["content-type"] == "application/json"
    assert json.loads(answer.body) == signer.jwks()
    head = await call(app, "HEAD", "/.well-known/jwks.json")
    assert (head.status, head.body) == (200, b"")
    assert (await call(app, "POST", "/.well-known/jwks.json")).status == 405


async def bare_app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    """A framework-free ASGI app that echoes the verified event."""
    event = event_from_scope(scope)
    message = await receive()
    payload = json.dumps(
        {"event": event.event, "id": event.webhook_id, "replayed": message["body"] == event.body}
    ).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": payload})


async def test_bare_asgi_app_with_standard_webhooks() -> None:
    secret = new_secret()
    signer = StandardWebhooksSigner(secret)
    now = 1_700_000_000
    app = VerifyMiddleware(bare_app, StandardWebhooksVerifier(secret, now=lambda: now))
    headers = [*signer.headers("msg_9", now, BODY), ("Saleor-Event", "ORDER_CREATED")]
    answer = await call(app, "POST", "/", headers, [BODY])
    assert answer.status == 200
    assert json.loads(answer.body) == {"event": "order_created", "id": "msg_9", "replayed": True}
    stale = list(signer.headers("msg_9", now - 3600, BODY))
    answer = await call(app, "POST", "/", stale, [BODY])
    assert (answer.status, answer.body[:22]) == (401, b"timestamp out of range")


@pytest.mark.parametrize(
    ("headers", "chunks", "status", "reason"),
    [
        (
            [("Saleor-Signature", "a" * 64), ("saleor-signature", "b" * 64)],
            [b"{}"],
            401,
            b"more than once",
        ),
        ([("Saleor-Signature", hmac_signature(b"nope", "k"))], [b"nope"], 400, b"not JSON"),
        ([], [b"x" * 600, b"x" * 600], 413, b"too large"),
    ],
    ids=["duplicate-signature", "not-json", "too-large"],
)
async def test_bare_asgi_refusals(
    headers: list[tuple[str, str]], chunks: list[bytes], status: int, reason: bytes
) -> None:
    app = VerifyMiddleware(bare_app, HMACVerifier("k"), max_body=1000)
    answer = await call(app, "POST", "/hook", headers, chunks)
    assert answer.status == status
    assert reason in answer.body


async def test_jwks_app_alone() -> None:
    signer = JWSSigner(generate_key("EdDSA"))
    answer = await call(JWKSApp(lambda: signer.jwks(), max_age=10), "GET", "/")
    assert answer.headers["cache-control"] == "public, max-age=10"
    assert json.loads(answer.body)["keys"][0]["kid"] == signer.key.kid
