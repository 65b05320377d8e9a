"""Body size limits per transport: SQS on moto (256 KiB with the attributes), Pub/Sub on the
emulator (10 MB), HTTP on a loopback receiver (the host's max_body_bytes). An over-limit body
is a PayloadTooLargeError, never sent and never retried."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aioboto3
import pytest
from aiohttp import web
from conftest import LOOPBACK, Receiver

from transports.conftest import ServerHandle
from transports.helpers import outbound, subscribe
from transports.test_pubsub import make_topic, use_emulator
from webhookkit import ConfigurationError, DeliveryStatus, PayloadTooLargeError, WebhookKit
from webhookkit.testing import FakeClock
from webhookkit.transports import HTTPTransport, Transport
from webhookkit.transports._limits import (
    PUBSUB_MAX_MESSAGE_BYTES,
    SQS_MAX_MESSAGE_BYTES,
    check_body_size,
    sqs_attributes_size,
)
from webhookkit.transports.pubsub import PubSubTransport
from webhookkit.transports.sqs import DEFAULT_ATTRIBUTE_RESERVE, SQSTransport

KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ENCODED_SECRET = "wJalrXUtnFEMI%2FK7MDENG%2BbPxRfiCYEXAMPLEKEY"
REGION = "eu-west-1"


def make_kit(clock: FakeClock, *transports: Transport) -> WebhookKit:
    """The one place these tests build a kit."""
    return WebhookKit(domain="shop.example.com", clock=clock, transports=transports)


def sqs_url(queue: str) -> str:
    return f"awssqs://{KEY}:{ENCODED_SECRET}@sqs.{REGION}.amazonaws.com/123456789012/{queue}"


def json_body(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    return b'{"x":"' + b"a" * (size - 8) + b'"}'


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path_factory.mktemp("aws") / "none"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
async def sqs(moto: ServerHandle) -> AsyncIterator[Any]:
    async with aioboto3.Session().client(
        "sqs",
        region_name=REGION,
        endpoint_url=moto.require().url,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
    ) as client:
        yield client


async def new_queue(sqs: Any) -> tuple[str, str]:
    """A queue whose MaximumMessageSize is SQS's classic 256 KiB: its webhook URL and its URL."""
    name = f"big-{uuid.uuid4().hex[:12]}"
    response = await sqs.create_queue(
        QueueName=name, Attributes={"MaximumMessageSize": str(SQS_MAX_MESSAGE_BYTES)}
    )
    return sqs_url(name), str(response["QueueUrl"])


async def receive(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    response = await sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return list(response.get("Messages", []))


# -- the limits -------------------------------------------------------------------------------


def test_each_transport_declares_its_limit() -> None:
    assert Transport.max_body_bytes is None
    assert HTTPTransport().max_body_bytes is None
    assert HTTPTransport(max_body_bytes=1000).max_body_bytes == 1000
    assert SQSTransport().max_body_bytes == SQS_MAX_MESSAGE_BYTES - DEFAULT_ATTRIBUTE_RESERVE
    assert SQSTransport(max_message_bytes=1_048_576, attribute_reserve=0).max_body_bytes == (
        1_048_576
    )
    assert PubSubTransport().max_body_bytes == PUBSUB_MAX_MESSAGE_BYTES == 10_000_000


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: HTTPTransport(max_body_bytes=0), "max_body_bytes"),
        (lambda: SQSTransport(max_message_bytes=1_048_577), "max_message_bytes"),
        (lambda: SQSTransport(max_message_bytes=1000, attribute_reserve=1000), "attribute_reserve"),
        (lambda: PubSubTransport(max_message_bytes=10_000_001), "max_message_bytes"),
        (lambda: PubSubTransport(max_message_bytes=True), "max_message_bytes"),
    ],
)
def test_impossible_limits_are_refused(build: Any, field: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build()
    assert caught.value.field == field


def test_check_body_size_is_silent_up_to_the_limit_and_typed_past_it() -> None:
    transport = HTTPTransport(max_body_bytes=100)
    check_body_size(transport, "https://erp.example.com/hook", json_body(100))
    check_body_size(HTTPTransport(), "https://erp.example.com/hook", json_body(10_000_000))
    with pytest.raises(PayloadTooLargeError) as caught:
        check_body_size(transport, "https://user:pw@erp.example.com/hook", json_body(101))
    error = caught.value
    assert (error.size, error.limit, error.retryable) == (101, 100, False)
    assert "101 bytes" in str(error) and "100-byte limit of HTTPTransport" in str(error)
    assert "pw" not in str(error)  # the URL is redacted


# -- SQS on moto ------------------------------------------------------------------------------


async def test_sqs_counts_the_attributes_as_aws_does(moto: ServerHandle, sqs: Any) -> None:
    url, queue_url = await new_queue(sqs)
    transport = SQSTransport(endpoint_url=moto.require().url)
    try:
        probe = outbound(url, body=b"{}")
        overhead = sqs_attributes_size(transport.attributes(probe))
        assert overhead == transport.message_size(probe) - 2 > 0
        fits = outbound(url, body=json_body(SQS_MAX_MESSAGE_BYTES - overhead))
        assert transport.message_size(fits) == SQS_MAX_MESSAGE_BYTES
        assert (await transport.send(fits)).ok
        one_more = outbound(url, body=json_body(SQS_MAX_MESSAGE_BYTES - overhead + 1))
        with pytest.raises(PayloadTooLargeError) as caught:
            await transport.send(one_more)
    finally:
        await transport.aclose()
    assert caught.value.size == SQS_MAX_MESSAGE_BYTES + 1
    assert caught.value.limit == SQS_MAX_MESSAGE_BYTES
    assert "S3Offload" in str(caught.value)  # says how to send it anyway
    [message] = await receive(sqs, queue_url)
    assert message["Body"].encode() == fits.body


async def test_sqs_body_over_the_limit_fails_at_trigger_time_check(
    moto: ServerHandle, sqs: Any
) -> None:
    url, queue_url = await new_queue(sqs)
    transport = SQSTransport(endpoint_url=moto.require().url)
    limit = transport.max_body_bytes
    assert limit is not None
    check_body_size(transport, url, json_body(limit))
    with pytest.raises(PayloadTooLargeError) as caught:
        check_body_size(transport, url, json_body(300_000))
    assert (caught.value.size, caught.value.limit) == (300_000, limit)
    assert SECRET not in str(caught.value) and KEY not in str(caught.value)
    await transport.aclose()
    assert await receive(sqs, queue_url) == []


async def test_sqs_over_limit_delivery_is_a_final_failure_not_a_retry_loop(
    moto: ServerHandle, sqs: Any, clock: FakeClock
) -> None:
    url, queue_url = await new_queue(sqs)
    async with make_kit(clock, SQSTransport(endpoint_url=moto.require().url)) as kit:
        await subscribe(kit, url)
        [delivery_id] = await kit.trigger("ORDER_CREATED", payload={"x": "a" * 300_000})
        [delivery] = await kit.wait_for([delivery_id], timeout=30)
        await clock.advance(3600)
        await kit.wait_idle()
        attempts = await kit.list_attempts(delivery_id)
    assert delivery.status is DeliveryStatus.FAILED
    [attempt] = attempts
    assert attempt.error_kind == "PayloadTooLargeError"
    assert attempt.retryable is False
    assert await receive(sqs, queue_url) == []


# -- Pub/Sub on the emulator ------------------------------------------------------------------


async def test_pubsub_refuses_bodies_over_its_limit(
    pubsub_emulator: ServerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = use_emulator(pubsub_emulator, monkeypatch)
    topic = await make_topic(host)
    small = PubSubTransport(max_message_bytes=1000)
    default = PubSubTransport()
    try:
        assert (await small.send(outbound(topic.url, body=json_body(1000)))).ok
        with pytest.raises(PayloadTooLargeError) as caught:
            await small.send(outbound(topic.url, body=json_body(1001)))
        assert (caught.value.size, caught.value.limit) == (1001, 1000)
        check_body_size(default, topic.url, json_body(PUBSUB_MAX_MESSAGE_BYTES))
        over = json_body(PUBSUB_MAX_MESSAGE_BYTES + 1)
        with pytest.raises(PayloadTooLargeError):
            check_body_size(default, topic.url, over)
        with pytest.raises(PayloadTooLargeError):
            await default.send(outbound(topic.url, body=over))
    finally:
        await small.aclose()
        await default.aclose()
    [message] = await topic.pull()  # only the one that fitted was published
    assert base64.b64decode(message["data"]) == json_body(1000)


# -- HTTP on a loopback receiver --------------------------------------------------------------


async def test_http_limit_is_the_hosts(receiver: Receiver) -> None:
    transport = HTTPTransport(allow_addresses=LOOPBACK, max_body_bytes=100)
    try:
        assert (await transport.send(outbound(receiver.url, body=json_body(100)))).ok
        with pytest.raises(PayloadTooLargeError) as caught:
            await transport.send(outbound(receiver.url + "/big", body=json_body(101)))
    finally:
        await transport.aclose()
    assert caught.value.retryable is False
    assert [r.body for r in receiver.received] == [json_body(100)]


async def test_http_has_no_limit_by_default_and_streams_big_bodies() -> None:
    received: list[tuple[bytes, str | None, str | None, str | None]] = []

    async def handle(request: web.Request) -> web.Response:
        h = request.headers
        body = await request.read()
        received.append(
            (body, h.get("Content-Length"), h.get("Content-Type"), h.get("Transfer-Encoding"))
        )
        return web.Response(text="ok")

    app = web.Application(client_max_size=16 * 1024 * 1024)  # aiohttp's default is 1 MiB
    app.router.add_post("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    transport = HTTPTransport(allow_addresses=LOOPBACK)
    sizes = (1_000_000, 1_048_576, 1_048_577, 5_000_000)
    try:
        for size in sizes:  # filterwarnings=error: aiohttp's big-bytes ResourceWarning fails
            assert (await transport.send(outbound(url, body=json_body(size)))).ok
    finally:
        await transport.aclose()
        await runner.cleanup()
    assert received == [(json_body(n), str(n), "application/json", None) for n in sizes]


# -- docs/payload-limits.md -------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "payload-limits.md"


def test_the_examples_in_docs_payload_limits_md_print_what_the_page_says() -> None:
    text = DOC.read_text()
    examples = re.findall(r"```python\n(.*?)```(?:\n\nIt prints:\n\n```\n(.*?)```)?", text, re.S)
    assert len(examples) == 3
    for code, expected in examples:
        result = subprocess.run(
            [sys.executable, "-W", "error", "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{code}\n{result.stderr}"
        assert result.stdout == expected
