"""The pytest plugin as a host uses it: fixtures from the ``pytest11`` entry point, and host
test files run by pytest in a subprocess under pytest-asyncio and under anyio."""

from __future__ import annotations

import pytest

from webhookkit import DeliveryStatus, WebhookKit
from webhookkit.testing import (
    FakeClock,
    MemoryTransport,
    RecordingReceiver,
    assert_delivered,
    run_retries,
)

pytest_plugins = ["pytester"]

ORDER = {"order": {"id": "42"}}


async def _shop(kit: WebhookKit, url: str) -> list[str]:
    app = await kit.apps.create("ERP", permissions=["MANAGE_ORDERS"])
    await kit.webhooks.create(app, target_url=url, events=["ORDER_CREATED"])
    return await kit.trigger("ORDER_CREATED", payload=ORDER)


async def test_the_kit_fixture_sends_into_the_memory_transport(
    webhook_kit: WebhookKit, memory_transport: MemoryTransport
) -> None:
    await _shop(webhook_kit, "https://erp.example.com/hooks")
    await webhook_kit.wait_idle()
    [message] = assert_delivered(
        webhook_kit, "ORDER_CREATED", to="https://erp.example.com/hooks", json=ORDER
    )
    assert message is memory_transport.sent[0]
    assert_delivered(memory_transport, "order_created", to="/hooks", body=b'{"order":{"id":"42"}}')
    with pytest.raises(AssertionError, match="matched 0; sent:\n  order_created -> https://erp"):
        assert_delivered(webhook_kit, "ORDER_CREATED", json={"order": {"id": "43"}})
    with pytest.raises(AssertionError, match="matched 0"):
        assert_delivered(webhook_kit, "ORDER_PAID")
    with pytest.raises(AssertionError, match="2 time"):
        assert_delivered(webhook_kit, "ORDER_CREATED", count=2)


@pytest.mark.webhookkit(statuses=[500, 503, 502])  # Saleor retries 5xx: 10 s, 20 s, 40 s
async def test_run_retries_runs_the_schedule_to_the_end(
    webhook_kit: WebhookKit, memory_transport: MemoryTransport, webhook_clock: FakeClock
) -> None:
    [delivery_id] = await _shop(webhook_kit, "https://erp.example.com/hooks")
    moved = await run_retries(webhook_kit, webhook_clock)
    assert moved == 10 + 20 + 40
    delivery = await webhook_kit.get_delivery(delivery_id)
    assert delivery is not None and delivery.status is DeliveryStatus.SUCCESS
    assert len(assert_delivered(memory_transport, "ORDER_CREATED", count=4)) == 4
    assert await run_retries(webhook_kit, webhook_clock) == 0  # nothing left to run


@pytest.mark.webhookkit(deliver_to="receiver", domain="erp-tests.example.com")
async def test_the_marker_sends_over_http_to_the_receiver(
    webhook_kit: WebhookKit, webhook_receiver: RecordingReceiver
) -> None:
    assert webhook_receiver.url.startswith("http://127.0.0.1:")
    await _shop(webhook_kit, webhook_receiver.url + "/hooks")
    [request] = await webhook_receiver.wait_for(1)
    assert request.header("Saleor-Domain") == "erp-tests.example.com"
    assert request.json() == ORDER
    assert_delivered(webhook_receiver, "ORDER_CREATED", to="/hooks", json=ORDER)
    with pytest.raises(TypeError, match="no MemoryTransport"):
        assert_delivered(webhook_kit, "ORDER_CREATED")


HOST_TEST = """
import pytest
{marks}
from webhookkit.testing import assert_delivered, run_retries

{mark}
@pytest.mark.webhookkit(statuses=[500])
async def test_order_goes_out_after_retries(webhook_kit, webhook_clock):
    app = await webhook_kit.apps.create("ERP", permissions=["MANAGE_ORDERS"])
    url = "https://erp.test/h"
    await webhook_kit.webhooks.create(app, target_url=url, events=["ORDER_CREATED"])
    await webhook_kit.trigger("ORDER_CREATED", payload={{"id": 1}})
    assert await run_retries(webhook_kit, webhook_clock) == 10
    assert_delivered(webhook_kit, "ORDER_CREATED", to=url, json={{"id": 1}}, count=2)

{mark}
async def test_receiver_records(webhook_receiver):
    import aiohttp
    async with aiohttp.ClientSession() as session:
        headers = {{"Saleor-Event": "order_paid"}}
        await session.post(webhook_receiver.url + "/x", data=b"{{}}", headers=headers)
    assert_delivered(webhook_receiver, "ORDER_PAID", to="/x", json={{}})
"""

ANYIO = """
@pytest.fixture
def anyio_backend():
    return "asyncio"
"""


SCOPE = "asyncio_default_fixture_loop_scope=function"


@pytest.mark.parametrize(
    ("marks", "mark", "args"),
    [
        ("", "", ["-o", "asyncio_mode=auto", "-o", SCOPE]),
        (ANYIO, "@pytest.mark.anyio", ["-p", "no:asyncio"]),
        (ANYIO, "@pytest.mark.anyio", ["-o", "asyncio_mode=strict", "-o", SCOPE]),
    ],
    ids=["pytest-asyncio-auto", "anyio-alone", "anyio-beside-strict-pytest-asyncio"],
)
def test_a_host_suite_gets_the_fixtures_from_the_entry_point(
    pytester: pytest.Pytester, marks: str, mark: str, args: list[str]
) -> None:
    pytester.makepyfile(test_host=HOST_TEST.format(marks=marks, mark=mark))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error", *args)
    result.assert_outcomes(passed=2)
