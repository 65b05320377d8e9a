"""The HTTP(S) transport against real loopback aiohttp servers (plain, TLS and mutual TLS)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
from pathlib import Path

import pytest
from aiohttp import web
from conftest import Received, Receiver

from transports.conftest import ReceiverFactory
from transports.helpers import outbound
from transports.servers import free_port
from webhookkit import (
    AttemptStatus,
    ConfigurationError,
    ConnectError,
    DeliveryStatus,
    DeliveryTimeoutError,
    InvalidHeaderError,
    InvalidURLError,
    Timeouts,
    TLSError,
    WebhookKit,
)
from webhookkit.testing import FakeClock
from webhookkit.transports.http import DEFAULT_USER_AGENT, HTTPTransport, saleor_headers

LOOPBACK = ["127.0.0.1/32"]


async def make_webhook(kit: WebhookKit, url: str, **kwargs: object) -> str:
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    webhook = await kit.webhooks.create(
        app,
        target_url=url,
        events=["ORDER_CREATED"],
        **kwargs,  # type: ignore[arg-type]
    )
    return webhook.id


async def deliver_once(kit: WebhookKit) -> str:
    """Trigger ORDER_CREATED, let the first attempt run; the delivery id."""
    [delivery_id] = await kit.trigger("ORDER_CREATED", payload={"id": 1})
    await kit.wait_idle()
    return delivery_id


async def test_headers_and_body_arrive_byte_for_byte_in_saleor_order(
    kit: WebhookKit, receiver: Receiver
) -> None:
    await make_webhook(
        kit,
        receiver.url + "/hook",
        secret_key="s3cret",
        custom_headers={"X-Tenant": "acme", "X-Saleor-Domain": "custom.example.com"},
    )
    delivery_id = await deliver_once(kit)
    delivery = await kit.get_delivery(delivery_id)
    assert delivery is not None and delivery.status is DeliveryStatus.SUCCESS
    [request] = receiver.received
    body = b'{"id":1}'
    signature = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    host = receiver.url.removeprefix("http://")
    # Saleor's block in Saleor's order; a custom header overrides in place and keeps its case.
    assert request.headers == [
        ("Host", host),
        ("User-Agent", DEFAULT_USER_AGENT),
        ("Content-Type", "application/json"),
        ("X-Saleor-Event", "order_created"),
        ("x-saleor-domain", "custom.example.com"),
        ("X-Saleor-Signature", signature),
        ("Saleor-Event", "order_created"),
        ("Saleor-Domain", "shop.example.com"),
        ("Saleor-Signature", signature),
        ("Saleor-Api-Url", "https://shop.example.com/graphql/"),
        ("x-tenant", "acme"),
        ("Accept", "*/*"),
        ("Accept-Encoding", "gzip, deflate"),
        ("Content-Length", str(len(body))),
    ]
    assert request.method == "POST"
    assert request.path == "/hook"
    assert request.body == body


async def test_redirect_is_not_followed_and_not_retried(
    kit: WebhookKit, receiver: Receiver
) -> None:
    def redirect(request: web.Request, record: Received) -> web.Response:
        if request.path == "/hook":
            return web.Response(status=307, headers={"Location": "/elsewhere"})
        return web.Response(text="should never be reached")

    receiver.handler = redirect
    await make_webhook(kit, receiver.url + "/hook")
    delivery_id = await deliver_once(kit)
    delivery = await kit.get_delivery(delivery_id)
    assert delivery is not None and delivery.status is DeliveryStatus.FAILED
    [attempt] = await kit.list_attempts(delivery_id)
    assert attempt.response_status_code == 307
    assert attempt.retryable is False
    assert [r.path for r in receiver.received] == ["/hook"]


async def test_slow_server_times_out_and_is_retried(kit: WebhookKit, receiver: Receiver) -> None:
    receiver.delay = 5.0
    await make_webhook(kit, receiver.url + "/slow", timeouts=Timeouts(connect=0.2, total=0.3))
    delivery_id = await deliver_once(kit)
    [attempt] = await kit.list_attempts(delivery_id)
    assert attempt.error_kind == DeliveryTimeoutError.__name__
    assert "0.3 s" in (attempt.error or "")
    assert attempt.retryable is True
    delivery = await kit.get_delivery(delivery_id)
    assert delivery is not None and delivery.status is DeliveryStatus.PENDING


async def test_503_is_retried_until_success(
    kit: WebhookKit, clock: FakeClock, receiver: Receiver
) -> None:
    receiver.statuses = [503]
    await make_webhook(kit, receiver.url + "/hook")
    delivery_id = await deliver_once(kit)
    await clock.advance(10)
    await kit.wait_idle()
    delivery = await kit.get_delivery(delivery_id)
    assert delivery is not None and delivery.status is DeliveryStatus.SUCCESS
    first, second = await kit.list_attempts(delivery_id)
    assert (first.response_status_code, first.retryable) == (503, True)
    assert (second.response_status_code, second.status) == (200, AttemptStatus.SUCCESS)
    assert len(receiver.received) == 2


async def test_404_is_not_retried(kit: WebhookKit, clock: FakeClock, receiver: Receiver) -> None:
    receiver.statuses = [404]
    await make_webhook(kit, receiver.url + "/hook")
    delivery_id = await deliver_once(kit)
    await clock.advance(3600)
    await kit.wait_idle()
    delivery = await kit.get_delivery(delivery_id)
    assert delivery is not None and delivery.status is DeliveryStatus.FAILED
    [attempt] = await kit.list_attempts(delivery_id)
    assert (attempt.response_status_code, attempt.retryable) == (404, False)
    assert len(receiver.received) == 1


async def test_refused_connection_is_a_retryable_connect_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/down"  # nobody listens there
    transport = HTTPTransport(allow_addresses=LOOPBACK)
    try:
        with pytest.raises(ConnectError) as caught:
            await transport.send(outbound(url))
    finally:
        await transport.aclose()
    assert caught.value.retryable is True
    assert url.removesuffix("/down") in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)


async def test_attempt_record_redacts_secrets_and_cuts_the_body(
    kit: WebhookKit, receiver: Receiver
) -> None:
    def answer(request: web.Request, record: Received) -> web.Response:
        return web.Response(
            status=500,
            text="é" * 3000,
            headers={"X-Trace": "r-1", "Set-Cookie": "session=abc"},
        )

    receiver.handler = answer
    await make_webhook(
        kit,
        receiver.url + "/hook",
        secret_key="s3cret",
        custom_headers={"Authorization": "Bearer top-secret", "Authorization-Extra": "also"},
    )
    delivery_id = await deliver_once(kit)
    [attempt] = await kit.list_attempts(delivery_id)
    request_headers = dict(attempt.request_headers)
    assert request_headers["Saleor-Signature"] == "[secret]"
    assert request_headers["X-Saleor-Signature"] == "[secret]"
    assert request_headers["authorization"] == "[secret]"
    assert request_headers["authorization-extra"] == "[secret]"
    assert request_headers["Saleor-Event"] == "order_created"
    response_headers = dict(attempt.response_headers)
    assert response_headers["X-Trace"] == "r-1"
    assert response_headers["Set-Cookie"] == "[secret]"
    assert attempt.response_excerpt == "é" * 1024 + "..."
    assert "top-secret" not in repr(attempt)
    # The receiver got the real values.
    assert receiver.received[0].header("authorization") == "Bearer top-secret"


@pytest.mark.parametrize(
    ("content_type", "body", "excerpt"),
    [
        ("text/plain; charset=latin-1", "caf\xe9".encode("latin-1"), "caf\xe9"),
        ("text/plain; charset=no-such-charset", b"ok", "ok"),
        ("application/octet-stream", b"\xff\xfe", "\ufffd\ufffd"),
    ],
)
async def test_response_excerpt_decodes_any_answer(
    receiver: Receiver, content_type: str, body: bytes, excerpt: str
) -> None:
    receiver.handler = lambda request, record: web.Response(
        body=body, headers={"Content-Type": content_type}
    )
    transport = HTTPTransport(allow_addresses=LOOPBACK)
    try:
        result = await transport.send(outbound(receiver.url + "/hook"))
    finally:
        await transport.aclose()
    assert result.ok
    assert result.response_excerpt == excerpt


async def test_azure_service_bus_headers_are_sent_last(kit: WebhookKit, receiver: Receiver) -> None:
    broker = '{"Label":"M1","TimeToLive":60,"SessionId":"orders"}'
    sas = "SharedAccessSignature sr=https%3A%2F%2Fns.servicebus.windows.net&sig=abc&se=1&skn=send"
    await make_webhook(
        kit,
        receiver.url + "/queue/messages",
        custom_headers={"Authorization": sas, "BrokerProperties": broker},
    )
    delivery_id = await deliver_once(kit)
    delivery = await kit.get_delivery(delivery_id)
    assert delivery is not None and delivery.status is DeliveryStatus.SUCCESS
    [request] = receiver.received
    names = [k for k, _ in request.headers]
    api_url = names.index("Saleor-Api-Url")
    assert names[api_url + 1 : api_url + 3] == ["authorization", "brokerproperties"]
    assert request.header("authorization") == sas
    assert request.header("brokerproperties") == broker
    assert request.header("content-type") == "application/json"
    [attempt] = await kit.list_attempts(delivery_id)
    assert dict(attempt.request_headers)["brokerproperties"] == broker
    assert dict(attempt.request_headers)["authorization"] == "[secret]"


async def test_content_type_cannot_be_overridden(kit: WebhookKit) -> None:
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    with pytest.raises(InvalidHeaderError):
        await kit.webhooks.create(
            app,
            target_url="https://example.com/hook",
            events=["ORDER_CREATED"],
            custom_headers={"Content-Type": "text/plain"},
        )
    # Even a message built by hand keeps Saleor's Content-Type.
    headers = saleor_headers(
        outbound("https://example.com", custom_headers=(("content-type", "text/plain"),))
    )
    assert [v for k, v in headers if k.lower() == "content-type"] == ["application/json"]


async def test_unknown_scheme_is_refused_when_the_webhook_is_created(kit: WebhookKit) -> None:
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    with pytest.raises(InvalidURLError) as caught:
        await kit.webhooks.create(app, target_url="ftp://example.com/x", events=["ORDER_CREATED"])
    assert isinstance(caught.value, ConfigurationError)
    assert "ftp" in str(caught.value)


async def test_one_session_keeps_connections_alive(receiver: Receiver) -> None:
    peers: list[object] = []

    def remember_peer(request: web.Request, record: Received) -> web.Response:
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peername"))
        return web.Response(text="ok")

    receiver.handler = remember_peer
    transport = HTTPTransport(allow_addresses=LOOPBACK)
    try:
        for _ in range(3):
            assert (await transport.send(outbound(receiver.url + "/hook"))).ok
    finally:
        await transport.aclose()
    assert len(peers) == 3
    assert len(set(map(str, peers))) == 1  # one connection, reused


async def test_connections_per_host_are_limited(receiver: Receiver) -> None:
    active = 0
    highest = 0
    release = asyncio.Event()

    async def hold(request: web.Request, record: Received) -> web.Response:
        nonlocal active, highest
        active += 1
        highest = max(highest, active)
        if len(receiver.received) >= 2:
            release.set()
        await release.wait()
        active -= 1
        return web.Response(text="ok")

    receiver.handler = hold
    transport = HTTPTransport(allow_addresses=LOOPBACK, limit_per_host=2)
    try:
        results = await asyncio.gather(
            *(transport.send(outbound(receiver.url + f"/{i}")) for i in range(6))
        )
    finally:
        await transport.aclose()
    assert all(r.ok for r in results)
    assert len(receiver.received) == 6
    assert highest == 2


# -- TLS ------------------------------------------------------------------------------------


async def test_tls_with_the_trusted_ca_succeeds(
    server_factory: ReceiverFactory, server_ssl: ssl.SSLContext, ca_file: Path, clock: FakeClock
) -> None:
    receiver = await server_factory(server_ssl)
    async with WebhookKit(
        domain="shop.example.com",
        clock=clock,
        transports=[HTTPTransport(allow_addresses=LOOPBACK, ca_bundle=ca_file)],
    ) as kit:
        await make_webhook(kit, receiver.url + "/tls")
        delivery_id = await deliver_once(kit)
        delivery = await kit.get_delivery(delivery_id)
    assert delivery is not None and delivery.status is DeliveryStatus.SUCCESS
    assert receiver.received[0].body == b'{"id":1}'


@pytest.mark.parametrize("trust", ["system", "other-ca"])
async def test_tls_with_an_unknown_ca_fails(
    server_factory: ReceiverFactory,
    server_ssl: ssl.SSLContext,
    other_ca_file: Path,
    clock: FakeClock,
    trust: str,
) -> None:
    receiver = await server_factory(server_ssl)
    bundle = other_ca_file if trust == "other-ca" else None
    async with WebhookKit(
        domain="shop.example.com",
        clock=clock,
        transports=[HTTPTransport(allow_addresses=LOOPBACK, ca_bundle=bundle)],
    ) as kit:
        await make_webhook(kit, receiver.url + "/tls")
        delivery_id = await deliver_once(kit)
        [attempt] = await kit.list_attempts(delivery_id)
    assert attempt.status is AttemptStatus.FAILED
    assert attempt.error_kind == TLSError.__name__
    assert "certificate" in (attempt.error or "").lower()
    assert receiver.received == []


async def test_mutual_tls_presents_the_client_certificate(
    server_factory: ReceiverFactory,
    server_mtls: ssl.SSLContext,
    ca_file: Path,
    client_cert_file: Path,
) -> None:
    receiver = await server_factory(server_mtls)
    with_cert = HTTPTransport(
        allow_addresses=LOOPBACK, ca_bundle=ca_file, client_cert=client_cert_file
    )
    without_cert = HTTPTransport(allow_addresses=LOOPBACK, ca_bundle=ca_file)
    try:
        result = await with_cert.send(outbound(receiver.url + "/mtls"))
        assert result.ok and result.status_code == 200
        with pytest.raises(ConnectError):
            await without_cert.send(outbound(receiver.url + "/mtls"))
    finally:
        await with_cert.aclose()
        await without_cert.aclose()
    assert [r.path for r in receiver.received] == ["/mtls"]


def test_tls_options_are_checked_when_built(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        HTTPTransport(ca_bundle=tmp_path / "missing.pem")
    assert caught.value.field == "ca_bundle"
    key_file = tmp_path / "client.pem"
    key_file.write_text("-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigurationError) as caught:
        HTTPTransport(client_cert=key_file)
    assert caught.value.field == "client_cert"
    assert "not-a-key" not in str(caught.value)
    with pytest.raises(ConfigurationError):
        HTTPTransport(ssl_context=ssl.create_default_context(), ca_bundle=key_file)
