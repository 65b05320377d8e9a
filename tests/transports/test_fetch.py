"""Requests other than deliveries: ``guarded_request`` through an HTTPTransport's guarded
session, and ``http_get`` (the JWKS fetch), against real loopback servers."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import Received, Receiver

from transports.conftest import ReceiverFactory
from transports.servers import free_port
from webhookkit.exceptions import (
    BlockedAddressError,
    ConfigurationError,
    ConnectError,
    TLSError,
    TransportError,
)
from webhookkit.transports.base import Timeouts
from webhookkit.transports.fetch import HTTPResponse, guarded_request, http_get
from webhookkit.transports.http import HTTPTransport

LOOPBACK = ["127.0.0.1/32"]


async def test_guarded_get_returns_status_headers_and_body(receiver: Receiver) -> None:
    def handler(request: web.Request, record: Received) -> web.Response:
        return web.Response(status=200, body=b'{"name":"app"}', headers={"X-Manifest": "1"})

    receiver.handler = handler
    transport = HTTPTransport(allow_addresses=LOOPBACK)
    try:
        answer = await guarded_request(transport, "GET", f"{receiver.url}/manifest")
    finally:
        await transport.aclose()
    assert isinstance(answer, HTTPResponse)
    assert (answer.status, answer.body) == (200, b'{"name":"app"}')
    assert answer.header("x-manifest") == "1"
    assert receiver.received[0].method == "GET"
    assert receiver.received[0].path == "/manifest"


async def test_guarded_post_sends_body_and_headers_and_returns_any_status(
    receiver: Receiver,
) -> None:
    receiver.statuses = [400]
    receiver.body = "bad token"
    transport = HTTPTransport(allow_addresses=LOOPBACK)
    try:
        answer = await guarded_request(
            transport,
            "POST",
            f"{receiver.url}/register",
            body=b'{"auth_token":"t"}',
            headers=[("Content-Type", "application/json"), ("X-Saleor-Domain", "shop")],
            timeouts=Timeouts(connect=1, total=5),
        )
    finally:
        await transport.aclose()
    assert answer.status == 400
    assert answer.body == b"bad token"
    seen = receiver.received[0]
    assert seen.method == "POST"
    assert seen.body == b'{"auth_token":"t"}'
    assert seen.header("X-Saleor-Domain") == "shop"


async def test_guarded_request_refuses_loopback_without_allow(receiver: Receiver) -> None:
    transport = HTTPTransport()
    try:
        with pytest.raises(BlockedAddressError):
            await guarded_request(transport, "GET", f"{receiver.url}/manifest")
        with pytest.raises(BlockedAddressError):
            await transport.request("GET", f"http://localhost:{free_port()}/manifest")
    finally:
        await transport.aclose()
    assert receiver.received == []


async def test_guarded_request_never_follows_redirects(receiver: Receiver) -> None:
    def handler(request: web.Request, record: Received) -> web.Response:
        if request.path == "/start":
            return web.Response(status=302, headers={"Location": "/elsewhere"})
        return web.Response(text="followed")

    receiver.handler = handler
    transport = HTTPTransport(allow_addresses=LOOPBACK)
    try:
        answer = await transport.request("GET", f"{receiver.url}/start")
    finally:
        await transport.aclose()
    assert answer.status == 302
    assert answer.header("Location") == "/elsewhere"
    assert [r.path for r in receiver.received] == ["/start"]


async def test_guarded_request_refuses_an_answer_over_the_limit(receiver: Receiver) -> None:
    receiver.body = "x" * 5000
    transport = HTTPTransport(allow_addresses=LOOPBACK)
    try:
        with pytest.raises(TransportError, match="larger than 4096 bytes"):
            await transport.request("GET", f"{receiver.url}/big", limit=4096)
        whole = await transport.request("GET", f"{receiver.url}/big", limit=5000)
    finally:
        await transport.aclose()
    assert len(whole.body) == 5000


async def test_guarded_request_verifies_tls(
    server_factory: ReceiverFactory, server_ssl: ssl.SSLContext, ca_file: Path
) -> None:
    receiver = await server_factory(server_ssl)
    untrusting = HTTPTransport(allow_addresses=LOOPBACK)
    trusting = HTTPTransport(allow_addresses=LOOPBACK, ca_bundle=ca_file)
    try:
        with pytest.raises(TLSError):
            await untrusting.request("GET", f"{receiver.url}/manifest")
        answer = await trusting.request("GET", f"{receiver.url}/manifest")
    finally:
        await untrusting.aclose()
        await trusting.aclose()
    assert answer.status == 200
    assert len(receiver.received) == 1


async def test_guarded_request_connection_refused_is_a_connect_error() -> None:
    transport = HTTPTransport(allow_addresses=LOOPBACK)
    try:
        with pytest.raises(ConnectError):
            await transport.request("GET", f"http://127.0.0.1:{free_port()}/")
    finally:
        await transport.aclose()


async def test_http_get_returns_the_body_of_a_200(receiver: Receiver) -> None:
    receiver.body = '{"keys":[]}'
    assert await http_get(f"{receiver.url}/jwks", timeout=5, limit=1000) == b'{"keys":[]}'


async def test_http_get_refuses_other_statuses_and_large_bodies(receiver: Receiver) -> None:
    receiver.statuses = [404, 503]
    with pytest.raises(TransportError, match="HTTP 404") as final:
        await http_get(f"{receiver.url}/jwks", timeout=5, limit=1000)
    assert final.value.retryable is False
    with pytest.raises(TransportError, match="HTTP 503") as transient:
        await http_get(f"{receiver.url}/jwks", timeout=5, limit=1000)
    assert transient.value.retryable is True
    receiver.body = "y" * 2000
    with pytest.raises(TransportError, match="larger than 1000 bytes"):
        await http_get(f"{receiver.url}/jwks", timeout=5, limit=1000)


async def test_http_get_connection_refused_is_a_connect_error() -> None:
    with pytest.raises(ConnectError):
        await http_get(f"http://127.0.0.1:{free_port()}/jwks", timeout=5, limit=1000)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"method": "GET\r\nX: 1"}, "method"),
        ({"method": "get"}, "method"),
        ({"method": 42}, "method"),
        ({"headers": [("X-A", "1\r\nX-B: 2")]}, "headers"),
        ({"headers": [("X A", "1")]}, "headers"),
        ({"headers": [("X-A", "caf\u00e9")]}, "headers"),
        ({"headers": ["X-A: 1"]}, "headers"),
        ({"headers": "X-A: 1"}, "headers"),
        ({"headers": [("X-A", 1)]}, "headers"),
        ({"limit": -1}, "limit"),
        ({"limit": 1.5}, "limit"),
        ({"body": "text"}, "body"),
        ({"timeouts": 5}, "timeouts"),
        ({"url": 42}, "url"),
    ],
)
async def test_guarded_request_refuses_bad_arguments_before_sending(
    receiver: Receiver, arguments: dict[str, Any], field: str
) -> None:
    call: dict[str, Any] = {"method": "POST", "url": f"{receiver.url}/x", **arguments}
    transport = HTTPTransport(allow_addresses=LOOPBACK)
    try:
        with pytest.raises(ConfigurationError, match=f"{field}:") as caught:
            await transport.request(call.pop("method"), call.pop("url"), **call)
    finally:
        await transport.aclose()
    assert caught.value.field == field
    assert receiver.received == []
