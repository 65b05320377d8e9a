"""The management API merges into host schemas of other shapes: roots with other names, a
host field of the same name, host types it extends, host events in the generated enums."""

from __future__ import annotations

import pytest
from graphql import build_schema, graphql

from webhookkit import WebhookKit
from webhookkit.events import EventRegistry
from webhookkit.exceptions import ConfigurationError
from webhookkit.graphql import StaffUser, extend_schema, to_global_id

STAFF = StaffUser("1", "a@example.com", frozenset({"MANAGE_APPS", "MANAGE_ORDERS"}))


async def test_roots_with_other_names_and_a_host_field_of_the_same_name() -> None:
    host = build_schema(
        """
        schema { query: ShopQuery mutation: ShopMutation }
        type ShopQuery { shop: String  webhook(id: ID!): String }
        type ShopMutation { ping: String }
        type App { id: ID!  name: String  logo: String }
        """
    )
    assert host.query_type is not None
    host.query_type.fields["webhook"].resolve = lambda _root, _info, id: f"host's own {id}"
    async with WebhookKit(domain="shop.example.com") as kit:
        schema = extend_schema(host, kit)
        assert schema.query_type is not None and schema.query_type.name == "ShopQuery"
        assert schema.mutation_type is not None and schema.mutation_type.name == "ShopMutation"
        assert {"ping", "webhookCreate", "appInstall"} <= set(schema.mutation_type.fields)
        app_type = schema.type_map["App"]
        # The host's App keeps its own field and gains Saleor's.
        assert {"logo", "permissions", "tokens", "webhooks"} <= set(app_type.fields)  # type: ignore[attr-defined]
        result = await graphql(schema, '{ webhook(id: "x") }', context_value={"requestor": None})
        assert result.data == {"webhook": "host's own x"}
        app = await kit.apps.create("erp")
        result = await graphql(
            schema,
            "query ($id: ID) { app(id: $id) { id name logo isActive } }",
            variable_values={"id": to_global_id("App", app.id)},
            context_value={"requestor": STAFF},
        )
        assert result.errors is None
        assert result.data == {
            "app": {
                "id": to_global_id("App", app.id),
                "name": "erp",
                "logo": None,
                "isActive": True,
            }
        }


async def test_a_conflicting_host_type_is_refused_at_merge_time() -> None:
    async with WebhookKit() as kit:
        with pytest.raises(ConfigurationError, match=r"App\.name is Int"):
            extend_schema("type Query { a: Int } type App { id: ID! name: Int }", kit)
        with pytest.raises(ConfigurationError, match="no query type"):
            extend_schema(build_schema("type Mutation { a: Int }", assume_valid=True), kit)


async def test_host_events_and_permissions_are_in_the_enums() -> None:
    registry = EventRegistry.saleor()
    registry.register_permission("MANAGE_INVOICES")
    registry.register("INVOICE_PAID", permission="MANAGE_INVOICES")
    registry.register("INVOICE_QUOTE", kind="sync", permission="MANAGE_INVOICES")
    async with WebhookKit(registry=registry) as kit:
        schema = extend_schema("type Query { a: Int }", kit)
        enums = {
            name: set(schema.type_map[name].values)  # type: ignore[attr-defined]
            for name in ("WebhookEventTypeAsyncEnum", "WebhookEventTypeSyncEnum", "PermissionEnum")
        }
        assert "INVOICE_PAID" in enums["WebhookEventTypeAsyncEnum"]
        assert "INVOICE_PAID" not in enums["WebhookEventTypeSyncEnum"]
        assert "INVOICE_QUOTE" in enums["WebhookEventTypeSyncEnum"]
        assert "ANY_EVENTS" in enums["WebhookEventTypeAsyncEnum"]
        assert len(enums["WebhookEventTypeAsyncEnum"]) == 1 + sum(e.is_async for e in registry)
        assert "MANAGE_INVOICES" in enums["PermissionEnum"]
        staff = StaffUser("1", "a@example.com", frozenset({"MANAGE_APPS", "MANAGE_INVOICES"}))
        result = await graphql(
            schema,
            """mutation { appCreate(input: {name: "books", permissions: [MANAGE_INVOICES]})
               { app { id } errors { code } } }""",
            context_value={"requestor": staff},
        )
        assert result.errors is None and result.data is not None
        app_id = result.data["appCreate"]["app"]["id"]
        result = await graphql(
            schema,
            """mutation ($app: ID) { webhookCreate(input: {app: $app,
                 targetUrl: "https://books.example.com", asyncEvents: [INVOICE_PAID],
                 syncEvents: [INVOICE_QUOTE]})
               { webhook { asyncEvents { eventType } syncEvents { eventType } }
                 errors { code } } }""",
            variable_values={"app": app_id},
            context_value={"requestor": staff},
        )
        assert result.errors is None and result.data is not None
        assert result.data["webhookCreate"] == {
            "webhook": {
                "asyncEvents": [{"eventType": "INVOICE_PAID"}],
                "syncEvents": [{"eventType": "INVOICE_QUOTE"}],
            },
            "errors": [],
        }


async def test_apps_sorted_and_filtered() -> None:
    async with WebhookKit() as kit:
        schema = extend_schema("type Query { a: Int }", kit)
        for name, active in (("b", True), ("a", False), ("c", True)):
            await kit.apps.create(name, is_active=active)
        query = """query ($sort: AppSortingInput, $filter: AppFilterInput) {
            apps(first: 10, sortBy: $sort, filter: $filter) { edges { node { name } } } }"""

        async def names(**variables: object) -> list[str]:
            result = await graphql(
                schema, query, variable_values=variables, context_value={"requestor": STAFF}
            )
            assert result.errors is None and result.data is not None
            return [e["node"]["name"] for e in result.data["apps"]["edges"]]

        assert await names() == ["a", "b", "c"]
        assert await names(sort={"field": "NAME", "direction": "DESC"}) == ["c", "b", "a"]
        assert await names(sort={"field": "CREATION_DATE", "direction": "ASC"}) == ["b", "a", "c"]
        assert await names(filter={"isActive": True}) == ["b", "c"]
        assert await names(filter={"search": "C"}) == ["c"]
