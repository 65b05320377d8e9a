"""``listen``: a local receiver that verifies and pretty-prints each webhook, optionally
forwarding it to your own endpoint."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from ..exceptions import ConfigurationError, SignatureError
from ..signing import HMACVerifier, JWKSVerifier, StandardWebhooksVerifier, Verifier
from ..transports.http import record_headers
from .worker import stop_signals

__all__ = ["register"]

# Not copied to the forwarded request: aiohttp sets them for the new connection.
_HOP_BY_HOP = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"}
)


def _verifier(args: argparse.Namespace) -> tuple[Verifier | None, str]:
    chosen = [x for x in (args.secret, args.jwks_url, args.standard_secret) if x]
    if len(chosen) > 1:
        raise ConfigurationError(
            "listen: give at most one of --secret, --jwks-url and --standard-secret",
            field="secret",
        )
    if args.secret:
        return HMACVerifier(args.secret), "HMAC"
    if args.jwks_url:
        return JWKSVerifier(args.jwks_url), "JWS"
    if args.standard_secret:
        return StandardWebhooksVerifier(args.standard_secret), "Standard Webhooks"
    return None, ""


def _event_of(headers: Mapping[str, str]) -> str:
    return headers.get("Saleor-Event") or headers.get("X-Saleor-Event") or "(no Saleor-Event)"


def _pretty_body(body: bytes) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", "replace")


class _Listener:
    def __init__(self, args: argparse.Namespace) -> None:
        self.verifier, self.scheme = _verifier(args)
        self.forward_to: str | None = args.forward_to
        self.session: aiohttp.ClientSession | None = None
        self.count = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = request.headers
        self.count += 1
        if self.verifier is None:
            verdict, status = "not verified (no --secret, --jwks-url or --standard-secret)", 200
        else:
            try:
                await self.verifier.verify(body, headers)
            except SignatureError as exc:
                verdict, status = f"NOT VERIFIED: {exc}", 401
            else:
                verdict, status = f"verified ({self.scheme})", 200
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        lines = [f"[{stamp}] {request.method} {request.path_qs}  {_event_of(headers)}  {verdict}"]
        lines += [f"  {name}: {value}" for name, value in record_headers(headers.items())]
        lines += ["  " + line for line in _pretty_body(body).splitlines()]
        answer = web.Response(status=status, text="ok" if status == 200 else verdict)
        if self.forward_to is not None and status == 200:
            answer = await self._forward(body, headers, lines)
        print("\n".join(lines), flush=True)
        return answer

    async def _forward(
        self, body: bytes, headers: Mapping[str, str], lines: list[str]
    ) -> web.Response:
        assert self.forward_to is not None
        if self.session is None:
            self.session = aiohttp.ClientSession(trust_env=False)
        send = [(k, v) for k, v in headers.items() if k.lower() not in _HOP_BY_HOP]
        try:
            async with self.session.post(
                self.forward_to,
                data=body,
                headers=send,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=20),
            ) as response:
                text = await response.text(errors="replace")
                lines.append(f"  forwarded to {self.forward_to}: {response.status}")
                return web.Response(status=response.status, text=text)
        except (aiohttp.ClientError, TimeoutError) as exc:
            lines.append(f"  forward to {self.forward_to} failed: {exc or type(exc).__name__}")
            return web.Response(status=502, text="forward failed")

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()


async def _listen(args: argparse.Namespace) -> int:
    listener = _Listener(args)
    stop = stop_signals()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", listener.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in str(host) else host
        print(f"listening on http://{shown}:{port}/  (Ctrl-C to stop)", flush=True)
        await stop.wait()
    finally:
        await listener.aclose()
        await runner.cleanup()
    print(f"received {listener.count} webhook(s)", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    return asyncio.run(_listen(args))


def register(sub: Any) -> None:
    listen = sub.add_parser(
        "listen",
        help="receive webhooks locally, verify and print them",
        description=(
            "Run a local receiver: print each webhook (event, headers with secrets redacted, "
            "JSON body) and whether its signature verifies. Answers 200, or 401 with the "
            "reason when verification fails; with --forward-to, the forward target's answer."
        ),
    )
    listen.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    listen.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free)")
    listen.add_argument("--secret", help="verify HMAC signatures with this secret key")
    listen.add_argument("--jwks-url", metavar="URL", help="verify JWS signatures with this JWKS")
    listen.add_argument("--standard-secret", metavar="WHSEC", help="verify Standard Webhooks")
    listen.add_argument("--forward-to", metavar="URL", help="also POST each verified webhook here")
    listen.set_defaults(func=_run)
