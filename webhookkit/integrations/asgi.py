"""Pure ASGI receivers (Starlette, FastAPI, any ASGI server): verifying middleware and JWKS.

::

    app = FastAPI()
    app.add_middleware(VerifyMiddleware, verifier=verifier, paths=["/webhooks"])

    @app.post("/webhooks/order-created")
    async def order_created(request: Request) -> dict[str, str]:
        event = request.state.webhook_event      # a webhookkit WebhookEvent
        return {"ok": event.event}

The middleware reads the body once, verifies it, answers 401 with a short reason on failure,
and otherwise calls the app with the event in ``scope["state"]["webhook_event"]`` (Starlette's
``request.state.webhook_event``) and the same body replayed to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from multidict import CIMultiDict

from ..exceptions import MalformedSignatureError, SignatureError
from ..signing.verify import Verifier
from . import (
    DEFAULT_JWKS_MAX_AGE,
    EVENT_KEY,
    JWKS_PATH,
    MAX_BODY_BYTES,
    JWKSSource,
    NotJSONError,
    WebhookEvent,
    failure,
    jwks_body,
    verify_request,
)

__all__ = ["JWKSApp", "JWKSMiddleware", "VerifyMiddleware", "event_from_scope"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Headers that must appear at most once: two values would let a proxy and the verifier
#: disagree about which one counts.
_SINGLE = frozenset(
    {
        "saleor-signature",
        "x-saleor-signature",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode("ascii")), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _text(send: Send, status: int, text: str) -> None:
    await _respond(
        send, status, text.encode("utf-8"), [(b"content-type", b"text/plain; charset=utf-8")]
    )


class JWKSApp:
    """An ASGI app answering GET and HEAD with the JWKS of ``source`` and ``Cache-Control``."""

    def __init__(self, source: JWKSSource, *, max_age: int = DEFAULT_JWKS_MAX_AGE) -> None:
        self._source = source
        self._cache_control = f"public, max-age={max_age}".encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            return
        method = scope.get("method", "GET")
        if method not in {"GET", "HEAD"}:
            await _respond(send, 405, b"", [(b"allow", b"GET, HEAD")])
            return
        body = jwks_body(self._source)
        headers = [(b"content-type", b"application/json"), (b"cache-control", self._cache_control)]
        if method == "HEAD":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode("ascii")), *headers],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await _respond(send, 200, body, headers)


class JWKSMiddleware:
    """Serve the JWKS at ``path`` (default ``/.well-known/jwks.json``), pass the rest on."""

    def __init__(
        self,
        app: ASGIApp,
        source: JWKSSource,
        *,
        path: str = JWKS_PATH,
        max_age: int = DEFAULT_JWKS_MAX_AGE,
    ) -> None:
        self._app = app
        self._path = path
        self._jwks = JWKSApp(source, max_age=max_age)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http" and scope.get("path") == self._path:
            await self._jwks(scope, receive, send)
        else:
            await self._app(scope, receive, send)


class VerifyMiddleware:
    """Verify requests under ``paths`` (prefixes) with ``verifier`` before the app sees them.

    GET, HEAD and OPTIONS pass unverified. Bodies over ``max_body`` bytes get 413.
    """

    def __init__(
        self,
        app: ASGIApp,
        verifier: Verifier,
        *,
        paths: Iterable[str] = ("/",),
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self._app = app
        self._verifier = verifier
        self._prefixes = tuple(paths)
        self._max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope.get("type") != "http"
            or scope.get("method") in {"GET", "HEAD", "OPTIONS"}
            or not str(scope.get("path", "")).startswith(self._prefixes)
        ):
            await self._app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away; nobody is left to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                await _text(send, 413, f"payload too large: over {self._max_body} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            headers = _headers(scope)
            event = await verify_request(self._verifier, body, headers)
        except (SignatureError, NotJSONError) as exc:
            status, text = failure(exc)
            await _text(send, status, text)
            return
        state = dict(scope.get("state") or {})
        state[EVENT_KEY] = event
        inner_scope = {**scope, "state": state}
        await self._app(inner_scope, _replay(body, receive), send)


def _headers(scope: Scope) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for raw_name, raw_value in scope.get("headers", ()):
        name = bytes(raw_name).decode("latin-1")
        if name.lower() in _SINGLE and name in headers:
            raise MalformedSignatureError(f"{name} header given more than once")
        headers.add(name, bytes(raw_value).decode("latin-1"))
    return headers


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: disconnects and the like, as they come

    return replay


def event_from_scope(scope: Scope) -> WebhookEvent:
    """The event :class:`VerifyMiddleware` verified for this request; KeyError if none."""
    event = (scope.get("state") or {})[EVENT_KEY]
    assert isinstance(event, WebhookEvent)
    return event
