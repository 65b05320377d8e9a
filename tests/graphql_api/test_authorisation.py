"""Who may call each mutation, as in Saleor: staff with MANAGE_APPS manage everything, staff
without it nothing; an app manages only its own webhooks (another app's are invisible to it);
anonymous callers get the PermissionDenied error. A refusal is never a server error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import Receiver

from webhookkit.graphql import to_global_id

from .conftest import ADMIN_KEY, CLERK_KEY, Host, free_port, load_example

ORDER_QUERY = "subscription { event { ... on OrderCreated { order { id number } } } }"
ROLES = ("admin", "clerk", "owner", "other", "anonymous")


@dataclass
class World:
    """Fresh objects for one caller: app A (owner of the webhook), app B, an order, a
    finished delivery, and the token of each app."""

    app_a: str
    app_b: str
    token_a: str
    token_b: str
    token_a_id: str
    webhook: str
    order: str
    delivery: str
    manifest_url: str

    def token(self, role: str) -> str | None:
        return {
            "admin": ADMIN_KEY,
            "clerk": CLERK_KEY,
            "owner": self.token_a,
            "other": self.token_b,
        }.get(role)


async def make_world(host: Host, receiver: Receiver) -> World:
    kit = host.kit
    a = await kit.apps.create("A", permissions=["MANAGE_ORDERS"])
    b = await kit.apps.create("B", permissions=["MANAGE_ORDERS"])
    token_a = await kit.apps.create_token(a.id)
    token_b = await kit.apps.create_token(b.id)
    webhook = await kit.webhooks.create(
        a, target_url=f"{receiver.url}/a", subscription_query=ORDER_QUERY
    )
    shop = host.app[load_example().SHOP]
    order = await shop.place_order({"email": "x@example.com", "lines": []}, None)
    found = [d for d in await kit.list_deliveries() if d.webhook_id == webhook.id]
    done = await kit.wait_for([found[0].id], timeout=60)
    assert done[0].is_final
    return World(
        app_a=to_global_id("App", a.id),
        app_b=to_global_id("App", b.id),
        token_a=token_a.raw.reveal(),
        token_b=token_b.raw.reveal(),
        token_a_id=to_global_id("AppToken", token_a.token.id),
        webhook=to_global_id("Webhook", webhook.id),
        order=order["id"],
        delivery=to_global_id("EventDelivery", found[0].id),
        manifest_url=f"http://127.0.0.1:{free_port()}/api/manifest",  # nothing listens
    )


Case = tuple[str, str, Callable[[World, str], dict[str, Any]]]

CASES: dict[str, tuple[str, Callable[[World, str], dict[str, Any]]]] = {
    "webhookCreate": (
        """mutation ($app: ID, $url: String) { webhookCreate(input: {targetUrl: $url,
        asyncEvents: [ORDER_CREATED], app: $app}) { webhook { id app { id } }
        errors { field code message } } }""",
        lambda w, url: {"app": w.app_a, "url": url},
    ),
    "webhookUpdate": (
        """mutation ($id: ID) { webhookUpdate(id: $id, input: {isActive: false})
        { webhook { id isActive } errors { field code message } } }""",
        lambda w, url: {"id": w.webhook},
    ),
    "webhookDelete": (
        """mutation ($id: ID) { webhookDelete(id: $id) { webhook { id }
        errors { field code message } } }""",
        lambda w, url: {"id": w.webhook},
    ),
    "webhookDryRun": (
        """mutation ($obj: ID!, $q: String!) { webhookDryRun(objectId: $obj, query: $q)
        { payload errors { field code message } } }""",
        lambda w, url: {"obj": w.order, "q": ORDER_QUERY},
    ),
    "webhookTrigger": (
        """mutation ($obj: ID!, $hook: ID!) { webhookTrigger(objectId: $obj, webhookId: $hook)
        { delivery { id status } errors { field code message } } }""",
        lambda w, url: {"obj": w.order, "hook": w.webhook},
    ),
    "eventDeliveryRetry": (
        """mutation ($id: ID!) { eventDeliveryRetry(id: $id) { delivery { id status }
        errors { field code message } } }""",
        lambda w, url: {"id": w.delivery},
    ),
    "appCreate": (
        """mutation { appCreate(input: {name: "new", permissions: [MANAGE_ORDERS]})
        { authToken app { id } errors { field code message } } }""",
        lambda w, url: {},
    ),
    "appUpdate": (
        """mutation ($id: ID!) { appUpdate(id: $id, input: {name: "renamed"})
        { app { id name } errors { field code message } } }""",
        lambda w, url: {"id": w.app_a},
    ),
    "appDelete": (
        """mutation ($id: ID!) { appDelete(id: $id) { app { id }
        errors { field code message } } }""",
        lambda w, url: {"id": w.app_a},
    ),
    "appActivate": (
        """mutation ($id: ID!) { appActivate(id: $id) { app { id isActive }
        errors { field code message } } }""",
        lambda w, url: {"id": w.app_a},
    ),
    "appDeactivate": (
        """mutation ($id: ID!) { appDeactivate(id: $id) { app { id isActive }
        errors { field code message } } }""",
        lambda w, url: {"id": w.app_a},
    ),
    "appTokenCreate": (
        """mutation ($app: ID!) { appTokenCreate(input: {app: $app, name: "ci"})
        { authToken appToken { id name } errors { field code message } } }""",
        lambda w, url: {"app": w.app_a},
    ),
    "appTokenDelete": (
        """mutation ($id: ID!) { appTokenDelete(id: $id) { appToken { id }
        errors { field code message } } }""",
        lambda w, url: {"id": w.token_a_id},
    ),
    "appTokenVerify": (
        """mutation ($t: String!) { appTokenVerify(token: $t) { valid
        errors { field code message } } }""",
        lambda w, url: {"t": w.token_a},
    ),
    "appInstall": (
        """mutation ($url: String!) { appInstall(input: {appName: "x", manifestUrl: $url,
        permissions: [MANAGE_ORDERS]}) { appInstallation { status message }
        errors { field code message } } }""",
        lambda w, url: {"url": w.manifest_url},
    ),
    "appFetchManifest": (
        """mutation ($url: String!) { appFetchManifest(manifestUrl: $url)
        { manifest { name } errors { field code message } } }""",
        lambda w, url: {"url": w.manifest_url},
    ),
}

OK, DENIED, HIDDEN = "ok", "denied", "hidden"
STAFF_ONLY = {"admin": OK, "clerk": OK, "owner": DENIED, "other": DENIED, "anonymous": DENIED}
MANAGE_APPS = {"admin": OK, "clerk": DENIED, "owner": DENIED, "other": DENIED, "anonymous": DENIED}
OWN_WEBHOOK = {"admin": OK, "clerk": DENIED, "owner": OK, "other": HIDDEN, "anonymous": DENIED}

#: mutation -> role -> outcome.
TABLE: dict[str, dict[str, str]] = {
    # An app always creates its own webhook; the ``app`` argument is ignored for it.
    "webhookCreate": {**OWN_WEBHOOK, "other": OK},
    "webhookUpdate": OWN_WEBHOOK,
    "webhookDelete": OWN_WEBHOOK,
    "webhookDryRun": STAFF_ONLY,
    "webhookTrigger": STAFF_ONLY,
    "eventDeliveryRetry": MANAGE_APPS,
    "appCreate": MANAGE_APPS,
    "appUpdate": MANAGE_APPS,
    "appDelete": MANAGE_APPS,
    "appActivate": MANAGE_APPS,
    "appDeactivate": MANAGE_APPS,
    "appTokenCreate": MANAGE_APPS,
    "appTokenDelete": MANAGE_APPS,
    "appTokenVerify": dict.fromkeys(ROLES, OK),
    "appInstall": MANAGE_APPS,
    "appFetchManifest": MANAGE_APPS,
}


def outcome(answer: dict[str, Any], name: str) -> str:
    if answer.get("errors"):
        codes = {e["extensions"]["exception"]["code"] for e in answer["errors"]}
        assert codes == {"PermissionDenied"}, answer
        assert answer["data"][name] is None
        return DENIED
    payload = answer["data"][name]
    codes = {e["code"] for e in payload["errors"]}
    if codes == {"NOT_FOUND"}:
        return HIDDEN
    # Nothing listens at the manifest URL: a permitted installation records the failure.
    if name == "appFetchManifest":
        assert codes == {"MANIFEST_URL_CANT_CONNECT"}, payload
        return OK
    assert not codes, payload
    return OK


def test_the_table_covers_every_mutation() -> None:
    example = load_example()
    schema = example.build_schema_for(
        example.Shop(example.build_kit(domain="x", api_url="http://x/"))
    )
    assert schema.mutation_type is not None
    ours = set(schema.mutation_type.fields) - {"orderCreate"}
    assert ours == set(TABLE) == set(CASES)
    assert all(set(row) == set(ROLES) for row in TABLE.values())


@pytest.mark.parametrize("name", sorted(TABLE))
async def test_authorisation(host: Host, receiver: Receiver, name: str) -> None:
    query, variables = CASES[name]
    seen: dict[str, str] = {}
    for role in ROLES:
        world = await make_world(host, receiver)
        answer = await host.call(
            query, variables(world, f"{receiver.url}/{role}"), token=world.token(role)
        )
        seen[role] = outcome(answer, name)
        if name == "webhookCreate" and seen[role] == OK:
            owner = answer["data"][name]["webhook"]["app"]["id"]
            assert owner == (world.app_b if role == "other" else world.app_a)
        if name == "appTokenVerify":
            assert answer["data"][name]["valid"] is True
        if name == "appInstall" and seen[role] == OK:
            installation = answer["data"][name]["appInstallation"]
            assert installation["status"] == "FAILED"
            assert "connect" in installation["message"]
    assert seen == TABLE[name]


async def test_staff_cannot_grant_permissions_it_lacks_nor_manage_apps(host: Host) -> None:
    answer = await host.admin(
        'mutation { appCreate(input: {name: "x", permissions: [MANAGE_ORDERS, MANAGE_USERS]})'
        " { app { id } errors { field code message permissions } } }"
    )
    assert answer["data"]["appCreate"] == {
        "app": None,
        "errors": [
            {
                "field": "permissions",
                "code": "OUT_OF_SCOPE_PERMISSION",
                "message": "You can't add permission that you don't have.",
                "permissions": ["MANAGE_USERS"],
            }
        ],
    }
    answer = await host.admin(
        'mutation { appCreate(input: {name: "x", permissions: [MANAGE_APPS]})'
        " { app { id } errors { field code permissions } } }"
    )
    assert answer["data"]["appCreate"]["errors"] == [
        {"field": "permissions", "code": "INVALID_PERMISSION", "permissions": ["MANAGE_APPS"]}
    ]
    assert await host.kit.apps.list() == []


async def test_queries_follow_the_same_rules(host: Host, receiver: Receiver) -> None:
    world = await make_world(host, receiver)
    query = "query ($id: ID!) { webhook(id: $id) { id } }"
    assert (await host.call(query, {"id": world.webhook}, token=world.token_a))["data"][
        "webhook"
    ] == {"id": world.webhook}
    assert (await host.call(query, {"id": world.webhook}, token=world.token_b))["data"][
        "webhook"
    ] is None
    anonymous = await host.call(query, {"id": world.webhook})
    assert anonymous["errors"][0]["extensions"]["exception"]["code"] == "PermissionDenied"
    apps = "{ apps(first: 10) { totalCount edges { node { name } } } }"
    listed = await host.admin(apps)
    assert listed["data"]["apps"]["totalCount"] == 2
    clerk = await host.call(apps, token=CLERK_KEY)
    assert clerk["errors"][0]["extensions"]["exception"]["code"] == "PermissionDenied"
    # An app reads itself with ``app`` and no id (what the app SDK asks at registration).
    me = await host.call("{ app { id name tokens { authToken } } }", token=world.token_a)
    assert me["data"]["app"]["id"] == world.app_a
    assert me["data"]["app"]["tokens"] == [{"authToken": world.token_a[-4:]}]
