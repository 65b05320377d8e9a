"""The ASGI adapter: mount with Starlette/FastAPI ``app.mount("/webhooks", ...)``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

from ._core import Dashboard, DashboardRequest, DashboardResponse

__all__ = ["ASGIDashboard"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: The largest form body read; the dashboard's forms are a few kilobytes.
MAX_BODY = 1024 * 1024


def parse_cookies(header: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


def parse_form(content_type: str, body: bytes) -> tuple[tuple[str, str], ...]:
    """URL-encoded form fields (the only encoding the dashboard's forms use)."""
    if content_type.split(";", 1)[0].strip().lower() != "application/x-www-form-urlencoded":
        return ()
    text = body.decode("utf-8", "replace")
    return tuple(parse_qsl(text, keep_blank_values=True, max_num_fields=2000))


class ASGIDashboard:
    """An ASGI application serving a :class:`Dashboard` below its mount point."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                await _send(send, DashboardResponse(413, b"Request body too large"))
                return
            if not message.get("more_body", False):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        root = scope.get("root_path", "") or ""
        path = scope["path"]
        # Starlette's Mount keeps the full path and puts the prefix in root_path.
        if root and path.startswith(root):
            path = path[len(root) :]
        request = DashboardRequest(
            method=scope["method"].upper(),
            path=path or "/",
            query=tuple(
                parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            ),
            form=parse_form(headers.get("content-type", ""), bytes(body)),
            cookies=parse_cookies(headers.get("cookie", "")),
            headers=headers,
            root=root.rstrip("/"),
            secure=scope.get("scheme") == "https",
            native=scope,
        )
        await _send(send, await self.dashboard.handle(request))


async def _send(send: Send, response: DashboardResponse) -> None:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
