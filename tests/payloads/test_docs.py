"""The example in docs/payloads.md produces exactly the body the page shows."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from webhookkit import WebhookKit
from webhookkit.testing import MemoryTransport

from .conftest import KitFactory

PAGE = Path(__file__).parents[2] / "docs" / "payloads.md"
BLOCK = re.compile(r"<!-- example:(\w+) -->\n```\w+\n(.*?)\n```", re.DOTALL)


def examples() -> dict[str, str]:
    return dict(BLOCK.findall(PAGE.read_text("utf-8")))


async def test_the_documented_example_produces_the_documented_body(make_kit: KitFactory) -> None:
    blocks = examples()
    assert set(blocks) == {"schema", "query", "subject", "body"}
    names: dict[str, Any] = {}
    exec(blocks["subject"], names)
    order, staff = names["order"], names["staff"]
    expected = json.loads(blocks["body"])
    wire = json.dumps(expected, separators=(",", ":")).encode()

    transport = MemoryTransport()
    kit: WebhookKit = make_kit(schema=blocks["schema"], transports=[transport])
    await kit.start()
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    webhook = await kit.webhooks.create(
        app, target_url="memory://erp/webhooks", subscription_query=blocks["query"]
    )
    assert webhook.subscribed_events == {"order_created"}
    ids = await kit.trigger("ORDER_CREATED", subject=order, requestor=staff)
    await kit.wait_for(ids, timeout=10)
    [message] = transport.sent
    assert message.body == wire
    assert await kit.dry_run(blocks["query"], subject=order, requestor=staff, app=app) == wire
