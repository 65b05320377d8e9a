"""The documents' own webhookCreate / webhookUpdate / webhookDelete, over HTTP against the
example host, answering with Saleor's shapes; deliveries follow what the mutations did."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json

from conftest import Receiver

from webhookkit.graphql import from_global_id

from .conftest import Host

APP_CREATE = """
mutation {
  appCreate(input: {name: "Order processing", permissions: [MANAGE_ORDERS]}) {
    authToken
    app { id name isActive permissions { code name } }
    errors { field code message }
  }
}
"""

# The document's example, with the target URL a variable (the test's receiver).
WEBHOOK_CREATE = """
mutation ($app: ID, $url: String) {
  webhookCreate(
    input: {
      name: "New orders notification"
      targetUrl: $url
      events: [ORDER_CREATED]
      app: $app
      isActive: true
      secretKey: "secret-key"
    }
  ) {
    webhook {
      id
      name
      targetUrl
      isActive
      events { eventType }
      asyncEvents { eventType name }
      syncEvents { eventType }
      app { id name }
      secretKey
    }
    webhookErrors { field code message }
    errors { field code message }
  }
}
"""

WEBHOOK_DEACTIVATE = """
mutation ($id: ID) {
  webhookUpdate(id: $id, input: { isActive: false }) {
    webhook { id isActive }
    webhookErrors { field code message }
  }
}
"""

WEBHOOK_DELETE = """
mutation ($id: ID) {
  webhookDelete(id: $id) {
    webhook { id }
    webhookErrors { field code message }
  }
}
"""

ORDER = """
mutation { orderCreate(input: {email: "buyer@example.com", lines: [{sku: "MUG", quantity: 2}]})
  { order { id number } } }
"""


async def create_app(host: Host) -> dict[str, object]:
    answer = await host.admin(APP_CREATE)
    assert "errors" not in answer, answer
    payload = answer["data"]["appCreate"]
    assert payload["errors"] == []
    return dict(payload)


async def wait_for_delivery(receiver: Receiver, count: int) -> None:
    for _ in range(200):
        if len(receiver.received) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {count} deliveries, got {len(receiver.received)}")


async def test_webhook_create_update_delete_as_in_the_documents(
    host: Host, receiver: Receiver
) -> None:
    created = await create_app(host)
    app = created["app"]
    assert isinstance(app, dict)
    assert from_global_id(str(app["id"]))[0] == "App"
    assert app["permissions"] == [{"code": "MANAGE_ORDERS", "name": "Manage orders."}]

    answer = await host.admin(WEBHOOK_CREATE, app=app["id"], url=f"{receiver.url}/orders")
    assert "errors" not in answer, answer
    payload = answer["data"]["webhookCreate"]
    assert payload["webhookErrors"] == [] and payload["errors"] == []
    webhook = payload["webhook"]
    type_name, pk = from_global_id(webhook["id"])
    assert type_name == "Webhook"
    assert webhook["id"] == base64.b64encode(f"Webhook:{pk}".encode()).decode()
    assert webhook == {
        "id": webhook["id"],
        "name": "New orders notification",
        "targetUrl": f"{receiver.url}/orders",
        "isActive": True,
        "events": [{"eventType": "ORDER_CREATED"}],
        "asyncEvents": [{"eventType": "ORDER_CREATED", "name": "Order created"}],
        "syncEvents": [],
        "app": {"id": app["id"], "name": "Order processing"},
        "secretKey": None,  # never shown again
    }
    stored = await host.kit.webhooks.get(pk)
    assert stored.events == frozenset({"order_created"})
    assert stored.secret_key is not None and stored.secret_key.reveal() == "secret-key"

    # An order placed on the host reaches the webhook, signed with the secret key (HMAC).
    placed = await host.admin(ORDER)
    assert placed["data"]["orderCreate"]["order"]["number"] == 1
    await wait_for_delivery(receiver, 1)
    first = receiver.received[0]
    assert first.header("Saleor-Event") == "order_created"
    expected = hmac.new(b"secret-key", first.body, hashlib.sha256).hexdigest()
    assert first.header("Saleor-Signature") == expected
    assert json.loads(first.body)["order"]["email"] == "buyer@example.com"

    # The deactivating webhookUpdate: the next order is not sent.
    answer = await host.admin(WEBHOOK_DEACTIVATE, id=webhook["id"])
    assert answer["data"]["webhookUpdate"] == {
        "webhook": {"id": webhook["id"], "isActive": False},
        "webhookErrors": [],
    }
    await host.admin(ORDER)
    await host.kit.wait_idle()
    assert len(receiver.received) == 1
    deliveries = await host.kit.list_deliveries()
    assert len(deliveries) == 1  # the inactive webhook got no delivery at all

    answer = await host.admin(WEBHOOK_DELETE, id=webhook["id"])
    assert answer["data"]["webhookDelete"] == {
        "webhook": {"id": webhook["id"]},
        "webhookErrors": [],
    }
    assert await host.kit.store.get_webhook(pk) is None
    answer = await host.admin(WEBHOOK_DELETE, id=webhook["id"])
    assert answer["data"]["webhookDelete"]["webhook"] is None
    assert answer["data"]["webhookDelete"]["webhookErrors"] == [
        {
            "field": "id",
            "code": "NOT_FOUND",
            "message": f"Couldn't resolve to a node: {webhook['id']}",
        }
    ]


async def test_app_token_manages_its_own_webhook_without_the_app_argument(
    host: Host, receiver: Receiver
) -> None:
    created = await create_app(host)
    token = str(created["authToken"])
    query = """
    mutation ($url: String) {
      webhookCreate(input: {name: "mine", targetUrl: $url, asyncEvents: [ORDER_CREATED]}) {
        webhook { id app { id } asyncEvents { eventType } }
        errors { field code message }
      }
    }
    """
    answer = await host.call(query, {"url": receiver.url}, token=token)
    payload = answer["data"]["webhookCreate"]
    assert payload["errors"] == []
    assert payload["webhook"]["app"]["id"] == created["app"]["id"]  # type: ignore[index]
    me = await host.call("{ app { id name webhooks { id } } }", token=token)
    assert me["data"]["app"]["id"] == created["app"]["id"]  # type: ignore[index]
    assert me["data"]["app"]["webhooks"] == [{"id": payload["webhook"]["id"]}]


async def test_event_deliveries_and_attempts_are_relay_connections(
    host: Host, receiver: Receiver
) -> None:
    created = await create_app(host)
    app = created["app"]
    assert isinstance(app, dict)
    made = await host.admin(WEBHOOK_CREATE, app=app["id"], url=receiver.url)
    webhook_id = made["data"]["webhookCreate"]["webhook"]["id"]
    for _ in range(3):
        await host.admin(ORDER)
    await wait_for_delivery(receiver, 3)
    await host.kit.wait_idle()
    query = """
    query ($id: ID!, $after: String) {
      webhook(id: $id) {
        eventDeliveries(first: 2, after: $after) {
          totalCount
          pageInfo { hasNextPage hasPreviousPage endCursor }
          edges { node { id status eventType payload
            attempts(first: 5) { edges { node { status responseStatusCode } } } } }
        }
      }
    }
    """
    page = (await host.admin(query, id=webhook_id))["data"]["webhook"]["eventDeliveries"]
    assert page["totalCount"] == 3
    assert page["pageInfo"]["hasNextPage"] is True
    assert len(page["edges"]) == 2
    node = page["edges"][0]["node"]
    assert node["status"] == "SUCCESS" and node["eventType"] == "ORDER_CREATED"
    assert json.loads(node["payload"])["order"]["number"] == 3  # newest first
    assert node["attempts"]["edges"] == [{"node": {"status": "SUCCESS", "responseStatusCode": 200}}]
    rest = await host.admin(query, id=webhook_id, after=page["pageInfo"]["endCursor"])
    last = rest["data"]["webhook"]["eventDeliveries"]
    assert len(last["edges"]) == 1 and last["pageInfo"]["hasNextPage"] is False
    # Saleor's rule: a connection needs `first` or `last`.
    unpaged = await host.admin(
        "query ($id: ID!) { webhook(id: $id) { eventDeliveries { totalCount } } }", id=webhook_id
    )
    assert "You must provide a `first` or `last`" in unpaged["errors"][0]["message"]
