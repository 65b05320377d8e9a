"""The SQS transport against moto's standalone server, started once for the session."""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aioboto3
import pytest

from transports.conftest import ServerHandle
from transports.helpers import outbound, subscribe
from transports.servers import free_port
from webhookkit import (
    ConnectError,
    DeliveryStatus,
    HTTPTransport,
    InvalidURLError,
    QueueError,
    Secret,
    WebhookKit,
)
from webhookkit.testing import FakeClock
from webhookkit.transports.sqs import SQSTransport, parse_sqs_url

KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ENCODED_SECRET = "wJalrXUtnFEMI%2FK7MDENG%2BbPxRfiCYEXAMPLEKEY"
ACCOUNT = "123456789012"
REGION = "eu-west-1"


def sqs_url(queue: str, *, credentials: bool = True, region: str = REGION) -> str:
    userinfo = f"{KEY}:{ENCODED_SECRET}@" if credentials else ""
    return f"awssqs://{userinfo}sqs.{region}.amazonaws.com/{ACCOUNT}/{queue}"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No credentials, profiles, endpoints or instance metadata from the machine."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path_factory.mktemp("aws") / "none"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def endpoint(moto: ServerHandle) -> str:
    return moto.require().url


@pytest.fixture
async def sqs(endpoint: str) -> AsyncIterator[Any]:
    """A plain boto client on moto, to create queues and read messages back."""
    session = aioboto3.Session()
    async with session.client(
        "sqs",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
    ) as client:
        yield client


@pytest.fixture
async def sqs_kit(endpoint: str, clock: FakeClock) -> AsyncIterator[WebhookKit]:
    async with WebhookKit(
        domain="shop.example.com",
        clock=clock,
        transports=[HTTPTransport(), SQSTransport(endpoint_url=endpoint)],
    ) as kit:
        yield kit


def queue_name(fifo: bool = False) -> str:
    return f"orders-{uuid.uuid4().hex[:12]}" + (".fifo" if fifo else "")


async def create_queue(sqs: Any, name: str, **attributes: str) -> str:
    response = await sqs.create_queue(QueueName=name, Attributes=attributes)
    return str(response["QueueUrl"])


async def receive(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    response = await sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
        WaitTimeSeconds=0,
    )
    return list(response.get("Messages", []))


# -- URL grammar ------------------------------------------------------------------------------


def test_url_grammar_gives_queue_url_region_and_decoded_credentials() -> None:
    target = parse_sqs_url(sqs_url("orders.fifo"))
    assert target.queue_url == f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/orders.fifo"
    assert target.region == REGION
    assert target.access_key_id == KEY
    assert target.secret_access_key == Secret(SECRET)
    assert target.fifo
    assert KEY not in repr(target) and SECRET not in repr(target)


def test_region_defaults_to_us_east_1_and_credentials_to_the_default_chain() -> None:
    target = parse_sqs_url(f"awssqs://queue.example.com:4566/{ACCOUNT}/orders")
    assert target.region == "us-east-1"
    assert target.queue_url == f"https://queue.example.com:4566/{ACCOUNT}/orders"
    assert not target.has_credentials and not target.fifo


BAD_URLS = [
    (f"awssqs://{KEY}@sqs.{REGION}.amazonaws.com/{ACCOUNT}/q", "access key id and a secret"),
    (f"awssqs://:{ENCODED_SECRET}@sqs.{REGION}.amazonaws.com/{ACCOUNT}/q", "access key id and"),
    (f"awssqs://{KEY}:@sqs.{REGION}.amazonaws.com/{ACCOUNT}/q", "access key id and a secret"),
    (f"awssqs://AK-IA!:{ENCODED_SECRET}@sqs.{REGION}.amazonaws.com/{ACCOUNT}/q", "access key id"),
    (f"awssqs://{KEY}:{ENCODED_SECRET}@sqs.{REGION}.amazonaws.com/q", "/<account_id>/<queue>"),
    (f"awssqs://{KEY}:{ENCODED_SECRET}@sqs.{REGION}.amazonaws.com/12/q", "12 digits"),
    (f"awssqs://{KEY}:{ENCODED_SECRET}@sqs.{REGION}.amazonaws.com/{ACCOUNT}/a%20b", "queue name"),
    (f"awssqs://{KEY}:{ENCODED_SECRET}@sqs.{REGION}.amazonaws.com/{ACCOUNT}/q?x=1", "query"),
    (f"awssqs://{KEY}:{ENCODED_SECRET}@sqs.EU_WEST.amazonaws.com/{ACCOUNT}/q", "region"),
    (f"awssqs://{KEY}:{ENCODED_SECRET}@/{ACCOUNT}/q", "host"),
]


@pytest.mark.parametrize(("url", "problem"), BAD_URLS)
async def test_bad_urls_are_refused_when_the_webhook_is_created(
    kit: WebhookKit, url: str, problem: str
) -> None:
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    with pytest.raises(InvalidURLError) as caught:
        await kit.webhooks.create(app, target_url=url, events=["ORDER_CREATED"])
    message = str(caught.value)
    assert caught.value.field == "target_url"
    assert problem in message
    assert ENCODED_SECRET not in message and SECRET not in message
    assert await kit.webhooks.list() == []


# -- delivery through moto -------------------------------------------------------------------


async def test_standard_queue_receives_body_and_saleor_attributes(
    sqs_kit: WebhookKit, sqs: Any
) -> None:
    name = queue_name()
    queue_url = await create_queue(sqs, name)
    await subscribe(sqs_kit, sqs_url(name), secret_key="s3cret")
    [delivery_id] = await sqs_kit.trigger("ORDER_CREATED", payload={"order": {"id": 7}})
    [delivery] = await sqs_kit.wait_for([delivery_id], timeout=30)
    assert delivery.status is DeliveryStatus.SUCCESS
    [message] = await receive(sqs, queue_url)
    body = b'{"order":{"id":7}}'
    assert message["Body"] == body.decode()
    attributes = {
        k: (v["DataType"], v["StringValue"]) for k, v in message["MessageAttributes"].items()
    }
    assert attributes == {
        "SaleorDomain": ("String", "shop.example.com"),
        "SaleorApiUrl": ("String", "https://shop.example.com/graphql/"),
        "EventType": ("String", "order_created"),
        "Signature": ("String", hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()),
    }
    assert "MessageGroupId" not in message.get("Attributes", {})


async def test_fifo_queue_groups_by_domain_with_content_based_dedup(
    sqs_kit: WebhookKit, sqs: Any
) -> None:
    name = queue_name(fifo=True)
    queue_url = await create_queue(sqs, name, FifoQueue="true", ContentBasedDeduplication="true")
    await subscribe(sqs_kit, sqs_url(name))
    ids = await sqs_kit.trigger("ORDER_CREATED", payload={"n": 1})
    ids += await sqs_kit.trigger("ORDER_CREATED", payload={"n": 2})
    deliveries = await sqs_kit.wait_for(ids, timeout=30)
    assert [d.status for d in deliveries] == [DeliveryStatus.SUCCESS] * 2
    messages = await receive(sqs, queue_url)
    assert sorted(m["Body"] for m in messages) == ['{"n":1}', '{"n":2}']
    for message in messages:
        assert message["Attributes"]["MessageGroupId"] == "shop.example.com"
        assert message["MessageAttributes"]["EventType"]["StringValue"] == "order_created"


async def test_fifo_group_follows_the_ordering_key_when_set(endpoint: str, sqs: Any) -> None:
    name = queue_name(fifo=True)
    queue_url = await create_queue(sqs, name, FifoQueue="true", ContentBasedDeduplication="true")
    transport = SQSTransport(endpoint_url=endpoint)
    try:
        result = await transport.send(outbound(sqs_url(name), ordering_key="order-42"))
    finally:
        await transport.aclose()
    assert result.ok and result.message_id
    [message] = await receive(sqs, queue_url)
    assert message["Attributes"]["MessageGroupId"] == "order-42"


async def test_dedup_by_delivery_works_without_content_based_dedup(endpoint: str, sqs: Any) -> None:
    name = queue_name(fifo=True)
    queue_url = await create_queue(sqs, name, FifoQueue="true")
    transport = SQSTransport(endpoint_url=endpoint, dedup_by_delivery=True)
    try:
        # The same body twice, as two deliveries: both kept. A retry of one: dropped by SQS.
        for delivery_id in ("d-1", "d-2", "d-1"):
            assert (await transport.send(outbound(sqs_url(name), delivery_id=delivery_id))).ok
    finally:
        await transport.aclose()
    messages = await receive(sqs, queue_url)
    assert sorted(m["Attributes"]["MessageDeduplicationId"] for m in messages) == ["d-1", "d-2"]


async def test_missing_queue_is_retried_until_it_exists(
    sqs_kit: WebhookKit, sqs: Any, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="webhookkit")
    name = queue_name()
    await subscribe(sqs_kit, sqs_url(name))
    [delivery_id] = await sqs_kit.trigger("ORDER_CREATED", payload={"id": 1})
    await sqs_kit.wait_idle()
    [first] = await sqs_kit.list_attempts(delivery_id)
    assert first.error_kind == QueueError.__name__
    assert "NonExistentQueue" in (first.error or "")
    assert first.retryable is True
    delivery = await sqs_kit.get_delivery(delivery_id)
    assert delivery is not None and delivery.status is DeliveryStatus.PENDING
    queue_url = await create_queue(sqs, name)
    await clock.advance(10)
    await sqs_kit.wait_idle()
    delivery = await sqs_kit.get_delivery(delivery_id)
    assert delivery is not None and delivery.status is DeliveryStatus.SUCCESS
    assert len(await receive(sqs, queue_url)) == 1
    # Credentials appear nowhere: not in records, not in logs, not in reprs.
    seen = " ".join(
        [repr(a) for a in await sqs_kit.list_attempts(delivery_id)]
        + [repr(delivery), caplog.text, repr(await sqs_kit.webhooks.list())]
        + [repr(t) for t in sqs_kit.router.mounted.values()]
    )
    for secret in (KEY, SECRET, ENCODED_SECRET):
        assert secret not in seen


async def test_default_credential_chain_is_used_without_userinfo(
    sqs_kit: WebhookKit, sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIADEFAULTCHAIN0001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-environment")
    name = queue_name()
    queue_url = await create_queue(sqs, name)
    await subscribe(sqs_kit, sqs_url(name, credentials=False))
    ids = await sqs_kit.trigger("ORDER_CREATED", payload={"id": 1})
    [delivery] = await sqs_kit.wait_for(ids, timeout=30)
    assert delivery.status is DeliveryStatus.SUCCESS
    assert len(await receive(sqs, queue_url)) == 1


async def test_no_credentials_anywhere_is_a_retryable_queue_error(endpoint: str) -> None:
    transport = SQSTransport(endpoint_url=endpoint)
    try:
        with pytest.raises(QueueError) as caught:
            await transport.send(outbound(sqs_url(queue_name(), credentials=False)))
    finally:
        await transport.aclose()
    assert caught.value.retryable is True
    assert caught.value.service == "sqs"
    assert "credentials" in str(caught.value)


async def test_one_client_per_credentials_region_and_endpoint(endpoint: str, sqs: Any) -> None:
    name = queue_name()
    await create_queue(sqs, name)
    transport = SQSTransport(endpoint_url=endpoint)
    try:
        first = await transport.client(parse_sqs_url(sqs_url(name)))
        assert (await transport.send(outbound(sqs_url(name)))).ok
        assert (await transport.send(outbound(sqs_url(name)))).ok
        assert await transport.client(parse_sqs_url(sqs_url(name))) is first
        other_region = await transport.client(parse_sqs_url(sqs_url(name, region="us-west-2")))
        assert other_region is not first
        assert transport.client_count == 2
        assert KEY not in repr(transport)
    finally:
        await transport.aclose()
    assert transport.client_count == 0


async def test_unreachable_endpoint_is_a_retryable_connect_error() -> None:
    transport = SQSTransport(endpoint_url=f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(ConnectError) as caught:
            await transport.send(outbound(sqs_url(queue_name())))
    finally:
        await transport.aclose()
    assert caught.value.retryable is True
    assert SECRET not in str(caught.value) and KEY not in str(caught.value)


async def test_standard_webhooks_profile_travels_as_message_attributes(
    endpoint: str, sqs: Any
) -> None:
    from standardwebhooks import Webhook as Verifier

    from webhookkit.signing import new_secret

    name = queue_name()
    queue_url = await create_queue(sqs, name)
    secret = new_secret()
    # The real clock: the reference verifier checks webhook-timestamp against now.
    async with WebhookKit(
        domain="shop.example.com", transports=[HTTPTransport(), SQSTransport(endpoint_url=endpoint)]
    ) as kit:
        await subscribe(kit, sqs_url(name), secret_key=secret, signing_profile="standard-webhooks")
        [delivery_id] = await kit.trigger("ORDER_CREATED", payload={"n": 1})
        await kit.wait_for([delivery_id], timeout=30)
    [message] = await receive(sqs, queue_url)
    headers = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert headers["webhook-id"] == delivery_id
    assert "Signature" not in headers
    # The reference library verifies what arrived through the queue.
    Verifier(secret.reveal()).verify(message["Body"], headers)
