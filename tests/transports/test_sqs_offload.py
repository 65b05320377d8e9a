"""SQS with S3 offload on moto's server (it serves SQS and S3 on one endpoint): large bodies
arrive as the SQS Extended Client's pointer, and the S3 object holds the body."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aioboto3
import pytest

from transports.conftest import ServerHandle
from transports.helpers import outbound, subscribe
from webhookkit import ConfigurationError, DeliveryStatus, QueueError, WebhookKit
from webhookkit.testing import FakeClock
from webhookkit.transports import Transport
from webhookkit.transports._limits import SQS_MAX_MESSAGE_BYTES, check_body_size
from webhookkit.transports.sqs import (
    EXTENDED_PAYLOAD_SIZE,
    MAX_OFFLOAD_BYTES,
    POINTER_CLASS,
    S3Offload,
    SQSTransport,
)

KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ENCODED_SECRET = "wJalrXUtnFEMI%2FK7MDENG%2BbPxRfiCYEXAMPLEKEY"
REGION = "eu-west-1"


def make_kit(clock: FakeClock, *transports: Transport) -> WebhookKit:
    """The one place these tests build a kit."""
    return WebhookKit(domain="shop.example.com", clock=clock, transports=transports)


def sqs_url(queue: str) -> str:
    return f"awssqs://{KEY}:{ENCODED_SECRET}@sqs.{REGION}.amazonaws.com/123456789012/{queue}"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path_factory.mktemp("aws") / "none"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def endpoint(moto: ServerHandle) -> str:
    return moto.require().url


@pytest.fixture
async def aws(endpoint: str) -> AsyncIterator[tuple[Any, Any]]:
    """Plain SQS and S3 clients on moto, to set up and to read back as a receiver would."""
    session = aioboto3.Session()
    options: dict[str, Any] = {
        "region_name": REGION,
        "endpoint_url": endpoint,
        "aws_access_key_id": KEY,
        "aws_secret_access_key": SECRET,
    }
    async with session.client("sqs", **options) as sqs, session.client("s3", **options) as s3:
        yield sqs, s3


@pytest.fixture
async def bucket(aws: tuple[Any, Any]) -> str:
    name = f"webhookkit-bodies-{uuid.uuid4().hex[:10]}"
    await aws[1].create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return name


async def new_queue(sqs: Any) -> tuple[str, str]:
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


async def resolve(s3: Any, message: dict[str, Any]) -> bytes:
    """What the SQS Extended Client does on receipt: follow the pointer to the S3 object."""
    pointer_class, location = json.loads(message["Body"])
    assert pointer_class == POINTER_CLASS
    assert set(location) == {"s3BucketName", "s3Key"}
    obj = await s3.get_object(Bucket=location["s3BucketName"], Key=location["s3Key"])
    data: bytes = await obj["Body"].read()
    return data


def big_body(size: int = 400_000) -> bytes:
    return json.dumps({"order": {"id": 7, "note": "x" * size}}).encode()


async def test_large_body_goes_to_s3_and_the_queue_gets_the_extended_client_pointer(
    endpoint: str, aws: tuple[Any, Any], bucket: str
) -> None:
    sqs, s3 = aws
    url, queue_url = await new_queue(sqs)
    transport = SQSTransport(
        endpoint_url=endpoint, offload=S3Offload(bucket=bucket, prefix="webhooks/")
    )
    body = big_body()
    try:
        check_body_size(transport, url, body)  # no trigger-time refusal with offload on
        result = await transport.send(
            outbound(url, body=body, delivery_id="D123", signature="sig-value")
        )
    finally:
        await transport.aclose()
    assert result.ok
    [message] = await receive(sqs, queue_url)
    assert json.loads(message["Body"]) == [
        POINTER_CLASS,
        {"s3BucketName": bucket, "s3Key": "webhooks/D123"},
    ]
    attributes = message["MessageAttributes"]
    assert attributes[EXTENDED_PAYLOAD_SIZE] == {
        "DataType": "Number",
        "StringValue": str(len(body)),
    }
    # Saleor's attributes stay on the pointer message; the signature is the body's.
    assert attributes["EventType"]["StringValue"] == "order_created"
    assert attributes["Signature"]["StringValue"] == "sig-value"
    assert await resolve(s3, message) == body
    head = await s3.head_object(Bucket=bucket, Key="webhooks/D123")
    assert head["ContentType"] == "application/json"


async def test_small_bodies_stay_in_the_queue_unless_always(
    endpoint: str, aws: tuple[Any, Any], bucket: str
) -> None:
    sqs, s3 = aws
    url, queue_url = await new_queue(sqs)
    inline = SQSTransport(endpoint_url=endpoint, offload=S3Offload(bucket=bucket))
    always = SQSTransport(endpoint_url=endpoint, offload=S3Offload(bucket=bucket, always=True))
    try:
        await inline.send(outbound(url, body=b'{"n":1}', delivery_id="A"))
        await always.send(outbound(url, body=b'{"n":2}', delivery_id="B"))
    finally:
        await inline.aclose()
        await always.aclose()
    messages = {m["Body"]: m for m in await receive(sqs, queue_url)}
    assert '{"n":1}' in messages
    assert EXTENDED_PAYLOAD_SIZE not in messages['{"n":1}'].get("MessageAttributes", {})
    [pointer] = [m for body, m in messages.items() if body != '{"n":1}']
    assert await resolve(s3, pointer) == b'{"n":2}'
    listed = await s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed["Contents"]] == ["B"]


async def test_the_threshold_counts_body_and_attributes(
    endpoint: str, aws: tuple[Any, Any], bucket: str
) -> None:
    sqs, _ = aws
    url, queue_url = await new_queue(sqs)
    transport = SQSTransport(endpoint_url=endpoint, offload=S3Offload(bucket=bucket, threshold=500))
    probe = outbound(url, body=b"")
    room = 500 - transport.message_size(probe)
    try:
        await transport.send(outbound(url, body=b"a" * room, delivery_id="fits"))
        await transport.send(outbound(url, body=b"b" * (room + 1), delivery_id="over"))
    finally:
        await transport.aclose()
    bodies = sorted(m["Body"] for m in await receive(sqs, queue_url))
    assert bodies[1] == "a" * room
    assert json.loads(bodies[0])[1]["s3Key"] == "over"


async def test_a_delivery_through_the_kit_arrives_as_a_pointer_to_its_signed_body(
    endpoint: str, aws: tuple[Any, Any], bucket: str, clock: FakeClock
) -> None:
    sqs, s3 = aws
    url, queue_url = await new_queue(sqs)
    transport = SQSTransport(endpoint_url=endpoint, offload=S3Offload(bucket=bucket))
    async with make_kit(clock, transport) as kit:
        await subscribe(kit, url, secret_key="s3cret")
        payload = {"order": {"id": 7, "note": "x" * 400_000}}
        [delivery_id] = await kit.trigger("ORDER_CREATED", payload=payload)
        [delivery] = await kit.wait_for([delivery_id], timeout=30)
    assert delivery.status is DeliveryStatus.SUCCESS
    [message] = await receive(sqs, queue_url)
    body = await resolve(s3, message)
    assert json.loads(body) == payload
    signature = message["MessageAttributes"]["Signature"]["StringValue"]
    assert signature == hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert json.loads(message["Body"])[1]["s3Key"] == delivery_id  # one object per delivery


async def test_a_missing_bucket_is_a_retried_s3_error(endpoint: str, aws: tuple[Any, Any]) -> None:
    sqs, _ = aws
    url, queue_url = await new_queue(sqs)
    transport = SQSTransport(
        endpoint_url=endpoint, offload=S3Offload(bucket=f"missing-{uuid.uuid4().hex[:8]}")
    )
    try:
        with pytest.raises(QueueError) as caught:
            await transport.send(outbound(url, body=big_body()))
    finally:
        await transport.aclose()
    assert caught.value.service == "s3"
    assert caught.value.code == "NoSuchBucket"
    assert caught.value.retryable is True
    assert SECRET not in str(caught.value)
    assert await receive(sqs, queue_url) == []


def test_offload_settings_are_checked() -> None:
    for bad in (
        {"bucket": "B"},
        {"bucket": "ok-bucket", "threshold": 0},
        {"bucket": "ok-bucket", "threshold": 2_000_000},
        {"bucket": "ok-bucket", "prefix": "p" * 513},
    ):
        with pytest.raises(ConfigurationError) as caught:
            S3Offload(**bad)
        assert caught.value.field == "offload"
    with pytest.raises(ConfigurationError, match="must be an S3Offload"):
        SQSTransport(offload="bucket")  # type: ignore[arg-type]
    assert SQSTransport(offload=S3Offload(bucket="ok-bucket")).max_body_bytes == MAX_OFFLOAD_BYTES


# -- AWS's own SQS Extended Client reads what webhookkit writes (and writes the same shape) ------

EXTENDED_CLIENT = """
import hashlib, json, sys
import boto3
import sqs_extended_client  # patches boto3.Session: kept to this subprocess

queue_url, bucket = sys.argv[1:3]
sqs = boto3.Session().client("sqs")
sqs.large_payload_support = bucket
[message] = sqs.receive_message(
    QueueUrl=queue_url, MaxNumberOfMessages=1, MessageAttributeNames=["All"]
)["Messages"]
body = message["Body"].encode()
print(len(body), hashlib.sha256(body).hexdigest())
sqs.send_message(QueueUrl=queue_url, MessageBody="y" * 300_000)
"""


async def test_aws_sqs_extended_client_resolves_the_pointer_and_writes_the_same_shape(
    endpoint: str, aws: tuple[Any, Any], bucket: str
) -> None:
    sqs, _ = aws
    url, queue_url = await new_queue(sqs)
    transport = SQSTransport(endpoint_url=endpoint, offload=S3Offload(bucket=bucket))
    body = big_body()
    try:
        await transport.send(outbound(url, body=body, delivery_id="D42"))
    finally:
        await transport.aclose()
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": REGION,
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-W", "ignore", "-c", EXTENDED_CLIENT, queue_url, bucket],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(len(body)), hashlib.sha256(body).hexdigest()]
    [theirs] = await receive(sqs, queue_url)
    pointer_class, location = json.loads(theirs["Body"])
    assert pointer_class == POINTER_CLASS and set(location) == {"s3BucketName", "s3Key"}
    assert theirs["MessageAttributes"][EXTENDED_PAYLOAD_SIZE] == {
        "DataType": "Number",
        "StringValue": "300000",
    }
