"""webhookkit's refusals come back as Saleor's error entries, with the input's ``field`` and
Saleor's ``code``; nothing is stored when one is given."""

from __future__ import annotations

import json
from typing import Any

import pytest

from webhookkit.graphql import to_global_id

from .conftest import Host

CREATE = """
mutation ($input: WebhookCreateInput!) {
  webhookCreate(input: $input) { webhook { id } errors { field code message } }
}
"""


async def refusal(host: Host, **input: Any) -> list[dict[str, Any]]:
    app = await host.kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    answer = await host.admin(CREATE, input={"app": to_global_id("App", app.id), **input})
    assert "errors" not in answer, answer
    payload = answer["data"]["webhookCreate"]
    assert payload["webhook"] is None
    assert await host.kit.webhooks.list() == []
    errors: list[dict[str, Any]] = payload["errors"]
    return errors


CHANNELS = json.dumps([f"c{i}" for i in range(501)])  # at most 500
ORDER = "subscription { event { ... on OrderCreated { order { id } } } }"


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("subscription { event {", "SYNTAX"),
        ("subscription { event { ... on OrderCreated { nope } } }", "GRAPHQL_ERROR"),
        ("query { products { id } }", "MISSING_SUBSCRIPTION"),
        (f"subscription {{ orderCreated(channels: {CHANNELS}) {{ issuedAt }} }}", "INVALID"),
        (
            "subscription { ...F } fragment F on Subscription { event { issuedAt } }",
            "UNABLE_TO_PARSE",
        ),
        ("subscription { event { issuedAt } }", "MISSING_EVENT"),
    ],
)
async def test_subscription_query_codes(host: Host, query: str, code: str) -> None:
    errors = await refusal(host, targetUrl="https://erp.example.com/h", query=query)
    assert [(e["field"], e["code"]) for e in errors] == [("query", code)]
    assert errors[0]["message"]


@pytest.mark.parametrize(
    ("url", "needle"),
    [("ftp://erp.example.com/h", "scheme 'ftp'"), ("https://", "no host"), ("not a url", "")],
)
async def test_target_url(host: Host, url: str, needle: str) -> None:
    errors = await refusal(host, targetUrl=url, asyncEvents=["ORDER_CREATED"])
    assert [(e["field"], e["code"]) for e in errors] == [("targetUrl", "INVALID")]
    assert needle in errors[0]["message"]


@pytest.mark.parametrize(
    "headers",
    [
        json.dumps({"Content-Type": "text/plain"}),  # only X-*, Authorization*, BrokerProperties
        json.dumps({f"X-{i}": "v" for i in range(6)}),  # at most 5
        json.dumps({"X-Long": "v" * 1000}),  # 998 characters per header
        "{not json",
        json.dumps(["X-A", "b"]),
    ],
)
async def test_custom_headers(host: Host, headers: str) -> None:
    errors = await refusal(
        host,
        targetUrl="https://erp.example.com/h",
        asyncEvents=["ORDER_CREATED"],
        customHeaders=headers,
    )
    assert [(e["field"], e["code"]) for e in errors] == [
        ("customHeaders", "INVALID_CUSTOM_HEADERS")
    ]


async def test_notify_user_must_be_alone(host: Host) -> None:
    errors = await refusal(
        host, targetUrl="https://erp.example.com/h", events=["NOTIFY_USER", "ORDER_CREATED"]
    )
    assert [(e["field"], e["code"]) for e in errors] == [("events", "INVALID")]
    assert "NOTIFY_USER" in errors[0]["message"]


async def test_unknown_event_is_refused_by_the_enum(host: Host) -> None:
    answer = await host.admin(
        CREATE, input={"targetUrl": "https://erp.example.com/h", "asyncEvents": ["ORDER_MADE"]}
    )
    assert answer["data"] is None
    assert "WebhookEventTypeAsyncEnum" in answer["errors"][0]["message"]
    # A sync event is not an async one.
    answer = await host.admin(
        CREATE,
        input={
            "targetUrl": "https://erp.example.com/h",
            "asyncEvents": ["CHECKOUT_CALCULATE_TAXES"],
        },
    )
    assert answer["data"] is None


async def test_app_argument(host: Host) -> None:
    inactive = await host.kit.apps.create("off", is_active=False)
    for app, code, message in [
        (to_global_id("App", inactive.id), "NOT_FOUND", "App doesn't exist or is disabled"),
        (to_global_id("App", "nope"), "NOT_FOUND", "App doesn't exist or is disabled"),
        ("not-an-id", "GRAPHQL_ERROR", "Couldn't resolve id: not-an-id."),
        (to_global_id("Webhook", inactive.id), "GRAPHQL_ERROR", "Invalid ID"),
    ]:
        answer = await host.admin(CREATE, input={"targetUrl": "https://e.example.com", "app": app})
        errors = answer["data"]["webhookCreate"]["errors"]
        assert [(e["field"], e["code"]) for e in errors] == [("app", code)], app
        assert errors[0]["message"].startswith(message)
    answer = await host.admin(CREATE, input={"targetUrl": "https://e.example.com"})
    assert answer["data"]["webhookCreate"]["errors"] == [
        {"field": "app", "code": "INVALID", "message": "Missing token or app"}
    ]


async def test_update_needs_id_or_identifier_and_keeps_events_unless_replaced(
    host: Host,
) -> None:
    app = await host.kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    webhook = await host.kit.webhooks.create(
        app, target_url="https://e.example.com", events=["ORDER_UPDATED"]
    )
    update = """mutation ($id: ID, $input: WebhookUpdateInput!) { webhookUpdate(id: $id,
      input: $input) { webhook { asyncEvents { eventType } subscriptionQuery }
      errors { field code message } } }"""
    answer = await host.admin(update, input={"name": "x"})
    assert answer["data"]["webhookUpdate"]["errors"][0]["code"] == "GRAPHQL_ERROR"
    gid = to_global_id("Webhook", webhook.id)
    answer = await host.admin(update, id=gid, input={"asyncEvents": []})
    assert answer["data"]["webhookUpdate"]["webhook"]["asyncEvents"] == [
        {"eventType": "ORDER_UPDATED"}
    ]  # an empty list never clears the events
    answer = await host.admin(update, id=gid, input={"query": ORDER})
    assert answer["data"]["webhookUpdate"]["webhook"]["asyncEvents"] == [
        {"eventType": "ORDER_CREATED"}
    ]  # a new query with no events: its inferred events
    answer = await host.admin(update, id=gid, input={"query": "subscription {"})
    assert answer["data"]["webhookUpdate"]["errors"][0]["code"] == "SYNTAX"
    stored = await host.kit.webhooks.get(webhook.id)
    assert stored.subscribed_events == frozenset({"order_created"})


async def test_dry_run_payload_and_refusals(host: Host) -> None:
    from .conftest import CLERK_KEY, load_example

    shop = host.app[load_example().SHOP]
    order = await shop.place_order(
        {"email": "a@example.com", "lines": [{"sku": "MUG", "quantity": 1}]}, None
    )
    dry = """mutation ($obj: ID!, $q: String!) { webhookDryRun(objectId: $obj, query: $q)
      { payload errors { field code message } } }"""
    answer = await host.admin(dry, obj=order["id"], q=ORDER)
    payload = answer["data"]["webhookDryRun"]
    assert payload["errors"] == []
    assert json.loads(payload["payload"]) == {"order": {"id": order["id"]}}
    missing = await host.admin(dry, obj=to_global_id("Order", "999"), q=ORDER)
    assert missing["data"]["webhookDryRun"]["errors"][0]["code"] == "NOT_FOUND"
    bad = await host.admin(dry, obj=order["id"], q="subscription { event { issuedAt } }")
    assert bad["data"]["webhookDryRun"]["errors"][0]["code"] == "MISSING_EVENT"
    ok = await host.call(dry, {"obj": order["id"], "q": ORDER}, token=CLERK_KEY)
    assert ok["data"]["webhookDryRun"]["errors"] == []
