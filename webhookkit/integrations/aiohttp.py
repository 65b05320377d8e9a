"""aiohttp receivers: a handler decorator and a middleware that verify, and the JWKS handler.

::

    verifier = JWKSVerifier.for_saleor("https://shop.example.com/graphql/")

    @verified(verifier)
    async def order_created(request: web.Request, event: WebhookEvent) -> web.Response:
        print(event.event, event.payload)
        return web.Response(text="ok")

    app.router.add_post("/webhooks/order-created", order_created)
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ..exceptions import SignatureError
from ..signing.verify import Verifier
from . import (
    DEFAULT_JWKS_MAX_AGE,
    EVENT_KEY,
    JWKS_PATH,
    JWKSSource,
    NotJSONError,
    WebhookEvent,
    failure,
    jwks_body,
    verify_request,
)

__all__ = ["add_jwks_route", "get_event", "jwks_handler", "verified", "verify_middleware"]

EventHandler = Callable[[web.Request, WebhookEvent], Awaitable[web.StreamResponse]]
_EVENT = web.RequestKey(EVENT_KEY, WebhookEvent) if hasattr(web, "RequestKey") else None


def jwks_handler(
    source: JWKSSource, *, max_age: int = DEFAULT_JWKS_MAX_AGE
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A GET handler answering the JWKS of ``source`` with ``Cache-Control: max-age``."""
    cache_control = f"public, max-age={max_age}"

    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            body=jwks_body(source),
            content_type="application/json",
            headers={"Cache-Control": cache_control},
        )

    return handler


def add_jwks_route(
    app: web.Application,
    source: JWKSSource,
    *,
    path: str = JWKS_PATH,
    max_age: int = DEFAULT_JWKS_MAX_AGE,
) -> None:
    """Serve the JWKS of ``source`` at ``path`` (default ``/.well-known/jwks.json``)."""
    app.router.add_get(path, jwks_handler(source, max_age=max_age))


async def _check(verifier: Verifier, request: web.Request) -> WebhookEvent | web.Response:
    body = await request.read()
    try:
        return await verify_request(verifier, body, request.headers)
    except (SignatureError, NotJSONError) as exc:
        status, text = failure(exc)
        return web.Response(status=status, text=text)


def verified(verifier: Verifier) -> Callable[[EventHandler], Handler]:
    """Decorate ``handler(request, event)``: it runs only for requests that verify; others
    get 401 (or 503/400, see :func:`webhookkit.integrations.failure`)."""

    def decorate(handler: EventHandler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            outcome = await _check(verifier, request)
            if isinstance(outcome, web.Response):
                return outcome
            return await handler(request, outcome)

        return wrapper

    return decorate


def verify_middleware(
    verifier: Verifier,
    *,
    paths: Iterable[str] | Callable[[web.Request], bool] = ("/",),
) -> Middleware:
    """Verify every request whose path starts with one of ``paths`` (or for which the
    predicate is true); handlers read the event with :func:`get_event`."""
    match: Callable[[web.Request], bool]
    if callable(paths):
        match = paths
    else:
        prefixes = tuple(paths)

        def match(request: web.Request) -> bool:
            return request.path.startswith(prefixes)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not match(request) or request.method in {"GET", "HEAD", "OPTIONS"}:
            return await handler(request)
        outcome = await _check(verifier, request)
        if isinstance(outcome, web.Response):
            return outcome
        _store(request, outcome)
        return await handler(request)

    return middleware


def _store(request: web.Request, event: WebhookEvent) -> None:
    if _EVENT is not None:
        request[_EVENT] = event
    else:  # pragma: no cover - aiohttp before RequestKey
        request[EVENT_KEY] = event


def get_event(request: web.Request) -> WebhookEvent:
    """The event :func:`verify_middleware` verified for this request; KeyError if none."""
    if _EVENT is not None:
        return request[_EVENT]
    return request[EVENT_KEY]  # type: ignore[no-any-return]  # pragma: no cover
