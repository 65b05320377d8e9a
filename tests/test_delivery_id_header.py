"""The opt-in delivery id header: Saleor's headers stay byte-exact by default; with
``HTTPTransport(delivery_id_header=...)`` every attempt of a delivery carries its id, the
same across retries (real aiohttp receivers, FakeClock for the retry schedule)."""

from __future__ import annotations

import hashlib
import hmac
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LOOPBACK, Receiver

from webhookkit import ConfigurationError, DeliveryStatus, WebhookKit
from webhookkit.testing import FakeClock
from webhookkit.transports import HTTPTransport, OutboundMessage
from webhookkit.transports.http import saleor_headers

HEADER = "X-Webhookkit-Delivery-Id"
ADDED_BY_AIOHTTP = {"host", "user-agent", "accept", "accept-encoding", "content-length"}


def make_kit(clock: FakeClock, delivery_id_header: str | None = None) -> WebhookKit:
    """The one place these tests build a kit."""
    transport = HTTPTransport(allow_addresses=LOOPBACK, delivery_id_header=delivery_id_header)
    return WebhookKit(domain="shop.example.com", clock=clock, transports=[transport])


async def subscribe(kit: WebhookKit, url: str) -> str:
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    webhook = await kit.webhooks.create(
        app,
        target_url=url,
        events=["ORDER_CREATED"],
        secret_key="k",
        custom_headers={"X-Tenant": "acme"},
    )
    return webhook.id


def saleors(body: bytes) -> list[tuple[str, str]]:
    signature = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    return [
        ("Content-Type", "application/json"),
        ("X-Saleor-Event", "order_created"),
        ("X-Saleor-Domain", "shop.example.com"),
        ("X-Saleor-Signature", signature),
        ("Saleor-Event", "order_created"),
        ("Saleor-Domain", "shop.example.com"),
        ("Saleor-Signature", signature),
        ("Saleor-Api-Url", "https://shop.example.com/graphql/"),
    ]


def ours(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k.lower() not in ADDED_BY_AIOHTTP]


async def test_by_default_the_headers_are_saleors_byte_for_byte(
    clock: FakeClock, receiver: Receiver
) -> None:
    async with make_kit(clock) as kit:
        await subscribe(kit, receiver.url)
        [delivery] = await kit.wait_for(
            await kit.trigger("ORDER_CREATED", payload={"n": 1}), timeout=10
        )
    assert delivery.status is DeliveryStatus.SUCCESS
    [request] = receiver.received
    assert ours(request.headers) == [*saleors(b'{"n":1}'), ("x-tenant", "acme")]
    assert request.header(HEADER) is None


async def test_the_opt_in_header_carries_the_delivery_id_stable_across_retries(
    clock: FakeClock, receiver: Receiver
) -> None:
    receiver.statuses = [500]  # then 200
    async with make_kit(clock, HEADER) as kit:
        await subscribe(kit, receiver.url)
        [delivery_id] = await kit.trigger("ORDER_CREATED", payload={"n": 1})
        await kit.wait_idle()
        pending = await kit.get_delivery(delivery_id)
        assert pending is not None and pending.status is DeliveryStatus.PENDING
        await clock.advance(10)  # Saleor's first retry delay
        [delivery] = await kit.wait_for([delivery_id], timeout=10)
        attempts = await kit.list_attempts(delivery_id)
    assert delivery.status is DeliveryStatus.SUCCESS
    assert [a.response_status_code for a in attempts] == [500, 200]
    first, second = receiver.received
    for request in (first, second):
        # Saleor's headers unchanged and in place; the id after them, custom headers last.
        assert ours(request.headers) == [
            *saleors(b'{"n":1}'),
            (HEADER, delivery_id),
            ("x-tenant", "acme"),
        ]
    # The attempt records keep it too (it is no secret).
    for attempt in attempts:
        assert (HEADER, delivery_id) in attempt.request_headers


async def test_each_delivery_has_its_own_id(clock: FakeClock, receiver: Receiver) -> None:
    async with make_kit(clock, HEADER) as kit:
        await subscribe(kit, receiver.url + "/a")
        await subscribe(kit, receiver.url + "/b")
        first = await kit.trigger("ORDER_CREATED", payload={"n": 1})
        second = await kit.trigger("ORDER_CREATED", payload={"n": 1})
        await kit.wait_for(first + second, timeout=10)
    seen = sorted(r.header(HEADER) or "" for r in receiver.received)
    assert seen == sorted(first + second)
    assert len(set(seen)) == 4


def message(**changes: object) -> OutboundMessage:
    fields: dict[str, object] = {
        "url": "https://erp.example.com/hook",
        "body": b"{}",
        "event": "order_created",
        "domain": "shop.example.com",
        "api_url": "https://shop.example.com/graphql/",
        "delivery_id": "D1",
    }
    fields.update(changes)
    return OutboundMessage(**fields)  # type: ignore[arg-type]


def test_the_messages_own_header_name_wins_and_no_id_means_no_header() -> None:
    assert ("X-Default", "D1") in saleor_headers(message(), "X-Default")
    own = saleor_headers(message(delivery_id_header="X-Mine"), "X-Default")
    assert ("X-Mine", "D1") in own and all(k != "X-Default" for k, _ in own)
    assert all(v != "D1" for _, v in saleor_headers(message()))
    assert all(k != "X-Default" for k, _ in saleor_headers(message(delivery_id=""), "X-Default"))


@pytest.mark.parametrize(
    "name", ["X Delivery", "X-Id:", "", "Content-Type", "Saleor-Delivery-Id", "x-saleor-id"]
)
def test_unusable_header_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        HTTPTransport(delivery_id_header=name)
    assert caught.value.field == "delivery_id_header"


# -- docs/idempotency.md ----------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[1] / "docs" / "idempotency.md"


def test_the_receiver_recipe_in_docs_idempotency_md_runs_and_prints_what_it_says() -> None:
    text = DOC.read_text()
    examples = re.findall(r"```python\n(.*?)```(?:\n\nIt prints:\n\n```\n(.*?)```)?", text, re.S)
    assert len(examples) >= 2  # the receiver recipe and the delivery-id example, at least
    for code, expected in examples:
        result = subprocess.run(
            [sys.executable, "-W", "error", "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{code}\n{result.stderr}"
        if expected:  # a block the page follows with what it prints
            assert result.stdout == expected
    assert "success [500, 200] 1" in examples[1][1]
