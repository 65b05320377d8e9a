"""The Pub/Sub transport against Google's real emulator, started once for the session.

If the emulator is not installed these tests FAIL (never skip) with the install command.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gcloud.aio.pubsub import PublisherClient, SubscriberClient

from transports.conftest import ServerHandle
from transports.helpers import outbound, subscribe
from transports.servers import ServerUnavailableError, free_port, start_pubsub_emulator
from webhookkit import ConnectError, DeliveryStatus, InvalidURLError, QueueError, WebhookKit
from webhookkit.testing import FakeClock
from webhookkit.transports.pubsub import PubSubTransport, parse_pubsub_url

PROJECT = "webhookkit-test"


def use_emulator(emulator: ServerHandle, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point Pub/Sub clients at the emulator; fails the test if it is not installed."""
    host = emulator.require().hostport
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", host)
    return host


@dataclass
class Topic:
    name: str
    subscription: str
    api_root: str

    @property
    def url(self) -> str:
        # The host is ignored by Saleor's grammar; any host works.
        return f"gcpubsub://pubsub.googleapis.com/projects/{PROJECT}/topics/{self.name}"

    async def pull(self) -> list[dict[str, Any]]:
        """Pull with the REST API, which shows every field (``orderingKey`` too)."""
        url = f"{self.api_root}/projects/{PROJECT}/subscriptions/{self.subscription}:pull"
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json={"maxMessages": 10}) as response,
        ):
            response.raise_for_status()
            data = await response.json()
        return [m["message"] for m in data.get("receivedMessages", [])]


async def make_topic(host: str, *, ordering: bool = False) -> Topic:
    api_root = f"http://{host}/v1"
    suffix = uuid.uuid4().hex[:10]
    topic = Topic(f"orders-{suffix}", f"sub-{suffix}", api_root)
    async with (
        PublisherClient(api_root=api_root) as publisher,
        SubscriberClient(api_root=api_root) as subscriber,
    ):
        await publisher.create_topic(f"projects/{PROJECT}/topics/{topic.name}")
        await subscriber.create_subscription(
            f"projects/{PROJECT}/subscriptions/{topic.subscription}",
            f"projects/{PROJECT}/topics/{topic.name}",
            body={"enableMessageOrdering": ordering},
        )
    return topic


# -- URL grammar ------------------------------------------------------------------------------


def test_url_grammar_ignores_the_host() -> None:
    for host in ("pubsub.googleapis.com", "anything.example", ""):
        target = parse_pubsub_url(f"gcpubsub://{host}/projects/my-project/topics/orders")
        assert target.topic_path == "projects/my-project/topics/orders"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("gcpubsub://h/projects/my-project/orders", "/projects/<project>/topics/<topic>"),
        ("gcpubsub://h/projects/my-project/topics/", "/projects/<project>/topics/<topic>"),
        ("gcpubsub://h/projects/My_Project/topics/orders", "project id"),
        ("gcpubsub://h/projects/my-project/topics/1orders", "topic"),
        ("gcpubsub://h/projects/my-project/topics/goog-orders", "topic"),
        ("gcpubsub://u:p@h/projects/my-project/topics/orders", "credentials"),
        ("gcpubsub://h/projects/my-project/topics/orders?x=1", "query"),
    ],
)
async def test_bad_urls_are_refused_when_the_webhook_is_created(
    kit: WebhookKit, url: str, problem: str
) -> None:
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    with pytest.raises(InvalidURLError) as caught:
        await kit.webhooks.create(app, target_url=url, events=["ORDER_CREATED"])
    assert caught.value.field == "target_url"
    assert problem in str(caught.value)
    assert "u:p@" not in str(caught.value)


# -- the emulator ------------------------------------------------------------------------------


def test_missing_emulator_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(ServerUnavailableError) as caught:
        start_pubsub_emulator(binary=tmp_path / "cloud-pubsub-emulator")
    assert "apt-get install google-cloud-cli-pubsub-emulator" in str(caught.value)


async def test_delivery_publishes_body_and_saleor_attributes(
    pubsub_emulator: ServerHandle, monkeypatch: pytest.MonkeyPatch, kit: WebhookKit
) -> None:
    host = use_emulator(pubsub_emulator, monkeypatch)
    topic = await make_topic(host)
    await subscribe(kit, topic.url, secret_key="s3cret")
    ids = await kit.trigger("ORDER_CREATED", payload={"order": {"id": 7}})
    [delivery] = await kit.wait_for(ids, timeout=30)
    assert delivery.status is DeliveryStatus.SUCCESS
    [message] = await topic.pull()
    body = b'{"order":{"id":7}}'
    assert base64.b64decode(message["data"]) == body
    [attempt] = await kit.list_attempts(delivery.id)
    assert attempt.error is None
    assert message["attributes"] == {
        "saleorDomain": "shop.example.com",
        "saleorApiUrl": "https://shop.example.com/graphql/",
        "eventType": "order_created",
        "signature": hmac.new(b"s3cret", body, hashlib.sha256).hexdigest(),
    }
    assert "orderingKey" not in message


async def test_ordering_key_is_sent_when_set(
    pubsub_emulator: ServerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = use_emulator(pubsub_emulator, monkeypatch)
    topic = await make_topic(host, ordering=True)
    transport = PubSubTransport()
    try:
        for n in range(3):
            result = await transport.send(
                outbound(topic.url, body=b'{"n":%d}' % n, ordering_key="order-42")
            )
            assert result.ok and result.message_id
    finally:
        await transport.aclose()
    messages = await topic.pull()
    assert [base64.b64decode(m["data"]) for m in messages] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert {m["orderingKey"] for m in messages} == {"order-42"}


async def test_one_publisher_is_reused(
    pubsub_emulator: ServerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = use_emulator(pubsub_emulator, monkeypatch)
    topic = await make_topic(host)
    transport = PubSubTransport()
    try:
        await transport.send(outbound(topic.url))
        publisher = transport.publisher()
        await transport.send(outbound(topic.url))
        assert transport.publisher() is publisher
    finally:
        await transport.aclose()
    assert len(await topic.pull()) == 2


async def test_missing_topic_is_a_retried_queue_error(
    pubsub_emulator: ServerHandle, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    host = use_emulator(pubsub_emulator, monkeypatch)
    async with WebhookKit(domain="shop.example.com", clock=clock) as kit:
        topic_url = f"gcpubsub://x/projects/{PROJECT}/topics/missing-{uuid.uuid4().hex[:8]}"
        await subscribe(kit, topic_url)
        [delivery_id] = await kit.trigger("ORDER_CREATED", payload={"id": 1})
        await kit.wait_idle()
        [attempt] = await kit.list_attempts(delivery_id)
        delivery = await kit.get_delivery(delivery_id)
    assert attempt.error_kind == QueueError.__name__
    assert "404" in (attempt.error or "")
    assert attempt.retryable is True
    assert delivery is not None and delivery.status is DeliveryStatus.PENDING
    assert host  # the emulator answered; the topic is what was missing


async def test_unreachable_endpoint_is_a_retryable_connect_error() -> None:
    transport = PubSubTransport(api_root=f"http://127.0.0.1:{free_port()}/v1")
    try:
        with pytest.raises(ConnectError) as caught:
            await transport.send(outbound(f"gcpubsub://x/projects/{PROJECT}/topics/orders"))
    finally:
        await transport.aclose()
    assert caught.value.retryable is True


async def test_standard_webhooks_profile_travels_as_attributes(
    pubsub_emulator: ServerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    from standardwebhooks import Webhook as Verifier

    from webhookkit.signing import new_secret

    host = use_emulator(pubsub_emulator, monkeypatch)
    topic = await make_topic(host)
    secret = new_secret()
    # The real clock: the reference verifier checks webhook-timestamp against now.
    async with WebhookKit(domain="shop.example.com") as kit:
        await subscribe(kit, topic.url, secret_key=secret, signing_profile="standard-webhooks")
        [delivery_id] = await kit.trigger("ORDER_CREATED", payload={"n": 1})
        await kit.wait_for([delivery_id], timeout=30)
    [message] = await topic.pull()
    attributes = message["attributes"]
    assert attributes["webhook-id"] == delivery_id
    assert "signature" not in attributes
    Verifier(secret.reveal()).verify(base64.b64decode(message["data"]).decode(), attributes)
