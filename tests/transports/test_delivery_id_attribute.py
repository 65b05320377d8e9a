"""The opt-in delivery id on queues: ``delivery_id_attribute`` on SQS (moto) and Pub/Sub (the
emulator) carries the delivery id, the same on every attempt; off by default."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aioboto3
import pytest

from transports.conftest import ServerHandle
from transports.helpers import outbound, subscribe
from transports.test_pubsub import make_topic, use_emulator
from webhookkit import ConfigurationError, DeliveryStatus, WebhookKit
from webhookkit.testing import FakeClock
from webhookkit.transports import Transport
from webhookkit.transports.pubsub import PubSubTransport
from webhookkit.transports.sqs import SQSTransport

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
async def sqs(moto: ServerHandle) -> AsyncIterator[Any]:
    async with aioboto3.Session().client(
        "sqs",
        region_name=REGION,
        endpoint_url=moto.require().url,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
    ) as client:
        yield client


async def receive(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    response = await sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return list(response.get("Messages", []))


async def test_sqs_carries_the_delivery_id_across_retries(
    moto: ServerHandle, sqs: Any, clock: FakeClock
) -> None:
    name = f"ids-{uuid.uuid4().hex[:12]}"
    transport = SQSTransport(endpoint_url=moto.require().url, delivery_id_attribute="DeliveryId")
    async with make_kit(clock, transport) as kit:
        await subscribe(kit, sqs_url(name))
        [delivery_id] = await kit.trigger("ORDER_CREATED", payload={"n": 1})
        await kit.wait_idle()  # the queue does not exist yet: a retried QueueError
        queue_url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
        await clock.advance(10)
        [delivery] = await kit.wait_for([delivery_id], timeout=30)
        attempts = await kit.list_attempts(delivery_id)
    assert delivery.status is DeliveryStatus.SUCCESS
    assert [a.error_kind for a in attempts] == ["QueueError", None]
    [message] = await receive(sqs, queue_url)
    assert message["MessageAttributes"]["DeliveryId"] == {
        "DataType": "String",
        "StringValue": delivery_id,
    }


async def test_sqs_sends_no_delivery_id_by_default(moto: ServerHandle, sqs: Any) -> None:
    name = f"ids-{uuid.uuid4().hex[:12]}"
    queue_url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
    transport = SQSTransport(endpoint_url=moto.require().url)
    try:
        await transport.send(outbound(sqs_url(name), delivery_id="D1"))
    finally:
        await transport.aclose()
    [message] = await receive(sqs, queue_url)
    assert set(message["MessageAttributes"]) == {
        "SaleorDomain",
        "SaleorApiUrl",
        "EventType",
        "Signature",
    }


async def test_pubsub_carries_the_delivery_id(
    pubsub_emulator: ServerHandle, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    host = use_emulator(pubsub_emulator, monkeypatch)
    topic = await make_topic(host)
    async with make_kit(clock, PubSubTransport(delivery_id_attribute="deliveryId")) as kit:
        await subscribe(kit, topic.url)
        [delivery_id] = await kit.trigger("ORDER_CREATED", payload={"n": 1})
        [delivery] = await kit.wait_for([delivery_id], timeout=30)
    assert delivery.status is DeliveryStatus.SUCCESS
    [message] = await topic.pull()
    assert message["attributes"]["deliveryId"] == delivery_id
    assert message["attributes"]["eventType"] == "order_created"


@pytest.mark.parametrize(
    "name", ["", "AWS.Id", "amazon.id", "a..b", ".id", "id.", "has space", "Signature"]
)
def test_unusable_sqs_attribute_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SQSTransport(delivery_id_attribute=name)
    assert caught.value.field == "delivery_id_attribute"


@pytest.mark.parametrize("name", ["", "googId", "eventType", "webhook-id", "x" * 257])
def test_unusable_pubsub_attribute_keys_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        PubSubTransport(delivery_id_attribute=name)
    assert caught.value.field == "delivery_id_attribute"
