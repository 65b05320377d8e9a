"""webhookTrigger and eventDeliveryRetry really send; secrets never come back out."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import Receiver

from webhookkit.graphql import to_global_id

from .conftest import Host, load_example

ORDER_QUERY = "subscription { event { ... on OrderCreated { order { id number } } } }"


async def test_trigger_sends_to_the_one_webhook_and_retry_sends_again(
    host: Host, receiver: Receiver
) -> None:
    kit = host.kit
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    named = await kit.webhooks.create(
        app, target_url=f"{receiver.url}/named", subscription_query=ORDER_QUERY
    )
    await kit.webhooks.create(
        app, target_url=f"{receiver.url}/other", subscription_query=ORDER_QUERY
    )
    shop = host.app[load_example().SHOP]
    order = await shop.place_order({"email": "a@example.com", "lines": []}, None)
    await kit.wait_for([d.id for d in await kit.list_deliveries()], timeout=60)
    receiver.received.clear()

    answer = await host.admin(
        """mutation ($obj: ID!, $hook: ID!) { webhookTrigger(objectId: $obj, webhookId: $hook)
           { delivery { id status eventType } errors { field code message } } }""",
        obj=order["id"],
        hook=to_global_id("Webhook", named.id),
    )
    payload = answer["data"]["webhookTrigger"]
    assert payload["errors"] == []
    assert payload["delivery"]["status"] == "PENDING"
    assert payload["delivery"]["eventType"] == "ORDER_CREATED"
    delivery_pk = payload["delivery"]["id"]
    [done] = await kit.wait_for(
        [
            d.id
            for d in await kit.list_deliveries()
            if to_global_id("EventDelivery", d.id) == delivery_pk
        ],
        timeout=60,
    )
    assert done.status.value == "success"
    assert [r.path for r in receiver.received] == ["/named"]
    assert json.loads(receiver.received[0].body) == {"order": {"id": order["id"], "number": 1}}

    retried = await host.admin(
        """mutation ($id: ID!) { eventDeliveryRetry(id: $id) { delivery { id status }
           errors { field code message } } }""",
        id=delivery_pk,
    )
    assert retried["data"]["eventDeliveryRetry"]["errors"] == []
    assert retried["data"]["eventDeliveryRetry"]["delivery"]["status"] == "PENDING"
    await kit.wait_for([done.id], timeout=60)
    assert [r.path for r in receiver.received] == ["/named", "/named"]
    assert len(await kit.list_attempts(done.id)) == 2

    no_query = await kit.webhooks.create(app, target_url=receiver.url, events=["ORDER_CREATED"])
    refused = await host.admin(
        """mutation ($obj: ID!, $hook: ID!) { webhookTrigger(objectId: $obj, webhookId: $hook)
           { delivery { id } errors { field code } } }""",
        obj=order["id"],
        hook=to_global_id("Webhook", no_query.id),
    )
    assert refused["data"]["webhookTrigger"] == {
        "delivery": None,
        "errors": [{"field": "webhookId", "code": "MISSING_QUERY"}],
    }


async def test_secrets_are_shown_once(host: Host, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    created = await host.admin(
        """mutation { appCreate(input: {name: "erp", permissions: [MANAGE_ORDERS]})
           { authToken app { id } } }"""
    )
    token = created["data"]["appCreate"]["authToken"]
    app_id = created["data"]["appCreate"]["app"]["id"]
    assert await host.kit.apps.authenticate(token) is not None
    made = await host.admin(
        """mutation ($app: ID!) { appTokenCreate(input: {app: $app, name: "ci"})
           { authToken appToken { name authToken } } }""",
        app=app_id,
    )
    second = made["data"]["appTokenCreate"]
    assert second["appToken"] == {"name": "ci", "authToken": second["authToken"][-4:]}
    hook = await host.admin(
        """mutation ($app: ID, $h: JSONString) { webhookCreate(input: {app: $app,
             targetUrl: "https://erp.example.com/h", events: [ORDER_CREATED],
             secretKey: "hush-hush", customHeaders: $h})
           { webhook { id secretKey customHeaders } errors { code } } }""",
        app=app_id,
        h=json.dumps(
            {
                "Authorization": "Bearer upstream-secret",
                "Authorization-Backup": "other-secret",
                "X-Tenant": "shop-1",
            }
        ),
    )
    webhook = hook["data"]["webhookCreate"]["webhook"]
    assert webhook["secretKey"] is None
    assert json.loads(webhook["customHeaders"]) == {
        "authorization": "[secret]",
        "authorization-backup": "[secret]",
        "x-tenant": "shop-1",
    }
    read = await host.admin(
        "query ($id: ID) { app(id: $id) { tokens { name authToken } } }", id=app_id
    )
    shown = json.dumps(read) + json.dumps(hook)
    for secret in (token, second["authToken"], "hush-hush", "upstream-secret", "other-secret"):
        assert secret not in shown
        assert secret not in caplog.text
    assert sorted(t["authToken"] for t in read["data"]["app"]["tokens"]) == sorted(
        [token[-4:], second["authToken"][-4:]]
    )
