"""Executing subscription queries: root value, bodies, errors, skips, sharing, dry run."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from graphql import GraphQLObjectType, GraphQLResolveInfo, GraphQLSchema

from webhookkit import App, ConfigurationError, InvalidQueryError, Webhook, WebhookKit
from webhookkit.payloads import PayloadGroup, PayloadRequest
from webhookkit.payloads.graphql import EventRoot, GraphQLPayloads
from webhookkit.testing import MemoryTransport

from .conftest import ORDER, KitFactory

ISSUED = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
ORDERS = App(id="app-orders", name="orders", permissions=frozenset({"MANAGE_ORDERS"}))
ORDERS_2 = App(id="app-orders-2", name="orders 2", permissions=frozenset({"MANAGE_ORDERS"}))
USERS = App(id="app-users", name="users", permissions=frozenset({"MANAGE_ORDERS", "MANAGE_USERS"}))
TAXES = App(id="app-taxes", name="taxes", permissions=frozenset({"HANDLE_TAXES"}))

CREATED = "subscription { event { ... on OrderCreated { order { id number } } } }"
_ids = iter(range(1_000_000))


def hook(query: str | None, app: App = ORDERS, **fields: Any) -> Webhook:
    return Webhook(
        id=f"wh-{next(_ids)}",
        app_id=app.id,
        target_url="memory://hook",
        subscription_query=query,
        **fields,
    )


def make_request(
    payloads: GraphQLPayloads,
    event: str,
    targets: list[tuple[Webhook, App]],
    *,
    subject: Any = ORDER,
    payload: Any = None,
    requestor: Any = None,
) -> PayloadRequest:
    return PayloadRequest(
        event=payloads.registry.get(event),
        subject=subject,
        payload=payload,
        targets=targets,
        issued_at=ISSUED,
        requestor=requestor,
    )


def bodies(groups: list[PayloadGroup]) -> list[Any]:
    return [json.loads(g.body) for g in groups if g.body is not None]


# -- bodies --------------------------------------------------------------------------------------


async def test_event_body_carries_the_event_fields_and_the_subject(
    payloads: GraphQLPayloads,
) -> None:
    query = """subscription { event {
        issuedAt version
        issuingPrincipal { __typename ... on App { id } ... on User { email } }
        recipient { id name }
        ... on OrderCreated { order { id number lines { sku quantity } } }
    } }"""
    requestor = {"__typename": "User", "id": "u1", "email": "staff@example.com"}
    groups = await payloads.build(
        make_request(payloads, "ORDER_CREATED", [(hook(query), ORDERS)], requestor=requestor)
    )
    [group] = groups
    assert group.body == (
        b'{"issuedAt":"2026-03-01T12:30:00+00:00","version":"3.24.0",'
        b'"issuingPrincipal":{"__typename":"User","email":"staff@example.com"},'
        b'"recipient":{"id":"app-orders","name":"orders"},'
        b'"order":{"id":"T3JkZXI6MQ==","number":1001,"lines":[{"sku":"TSHIRT-M","quantity":2}]}}'
    )
    app_requestor = await payloads.build(
        make_request(payloads, "ORDER_CREATED", [(hook(query), ORDERS)], requestor=USERS)
    )
    assert bodies(app_requestor)[0]["issuingPrincipal"] == {"__typename": "App", "id": "app-users"}


async def test_filterable_field_and_aliased_event_are_wrapped_in_data(
    payloads: GraphQLPayloads,
) -> None:
    filterable = 'subscription { orderCreated(channels: ["default"]) { order { id } } }'
    aliased = "subscription { e: event { ... on OrderCreated { order { number } } } }"
    groups = await payloads.build(
        make_request(
            payloads, "ORDER_CREATED", [(hook(filterable), ORDERS), (hook(aliased), ORDERS)]
        )
    )
    assert bodies(groups) == [
        {"data": {"orderCreated": {"order": {"id": "T3JkZXI6MQ=="}}}},
        {"data": {"e": {"order": {"number": 1001}}}},
    ]


async def test_a_mapping_subject_answers_event_fields_by_name(payloads: GraphQLPayloads) -> None:
    query = "subscription { event { ... on OrderCreated { order { id } } } }"
    subject = {"order": ORDER, "note": "several objects at once"}
    groups = await payloads.build(
        make_request(payloads, "ORDER_CREATED", [(hook(query), ORDERS)], subject=subject)
    )
    assert bodies(groups) == [{"order": {"id": "T3JkZXI6MQ=="}}]


async def test_one_type_serves_both_tax_events(payloads: GraphQLPayloads) -> None:
    query = "subscription { event { __typename ... on CalculateTaxes { taxBase { currency } } } }"
    subject = {"currency": "EUR", "channel": {"slug": "default"}}
    for event in ("CHECKOUT_CALCULATE_TAXES", "ORDER_CALCULATE_TAXES"):
        groups = await payloads.build(
            make_request(payloads, event, [(hook(query, TAXES), TAXES)], subject=subject)
        )
        assert bodies(groups) == [{"__typename": "CalculateTaxes", "taxBase": {"currency": "EUR"}}]


async def test_field_errors_add_an_errors_list(small_schema: GraphQLSchema) -> None:
    def broken(order: Any, info: GraphQLResolveInfo[Any]) -> float:
        raise PermissionError("total is hidden")

    order_type = small_schema.type_map["Order"]
    assert isinstance(order_type, GraphQLObjectType)
    order_type.fields["total"].resolve = broken
    payloads = GraphQLPayloads(small_schema)
    query = "subscription { event { ... on OrderCreated { order { id total } } } }"
    groups = await payloads.build(make_request(payloads, "ORDER_CREATED", [(hook(query), ORDERS)]))
    assert bodies(groups) == [
        {
            "order": {"id": "T3JkZXI6MQ==", "total": None},
            "errors": [
                {
                    "message": "total is hidden",
                    "locations": [{"line": 1, "column": 57}],
                    "path": ["event", "order", "total"],
                    "extensions": {"exception": {"code": "PermissionError"}},
                }
            ],
        }
    ]
    assert payloads.stats.field_errors == 1


async def test_async_resolvers_and_an_async_context_factory(small_schema: GraphQLSchema) -> None:
    seen: list[App] = []

    async def context(app: App) -> dict[str, Any]:
        await asyncio.sleep(0)
        seen.append(app)
        return {"permissions": app.permissions, "currency": "EUR"}

    async def total(order: dict[str, Any], info: GraphQLResolveInfo[Any]) -> float:
        await asyncio.sleep(0)
        return float(order["total"]) * 2

    order_type = small_schema.type_map["Order"]
    assert isinstance(order_type, GraphQLObjectType)
    order_type.fields["total"].resolve = total
    payloads = GraphQLPayloads(small_schema, context_factory=context)
    query = "subscription { event { ... on OrderCreated { order { total userEmail } } } }"
    groups = await payloads.build(
        make_request(payloads, "ORDER_CREATED", [(hook(query, USERS), USERS)])
    )
    assert bodies(groups) == [{"order": {"total": 85.0, "userEmail": "buyer@example.com"}}]
    assert seen == [USERS]


async def test_code_first_resolvers_see_the_event_root(small_schema: GraphQLSchema) -> None:
    roots: list[Any] = []

    def order(root: EventRoot, info: GraphQLResolveInfo[Any]) -> Any:
        roots.append(root)
        assert info.root_value is root
        return {**root.subject, "number": 7}

    created = small_schema.type_map["OrderCreated"]
    assert isinstance(created, GraphQLObjectType)
    created.fields["order"].resolve = order
    payloads = GraphQLPayloads(small_schema)
    groups = await payloads.build(
        make_request(payloads, "ORDER_CREATED", [(hook(CREATED), ORDERS)], requestor=USERS)
    )
    assert bodies(groups) == [{"order": {"id": "T3JkZXI6MQ==", "number": 7}}]
    [root] = roots
    assert (root.event.name, root.type_name, root.recipient) == (
        "ORDER_CREATED",
        "OrderCreated",
        ORDERS,
    )
    assert (root.issued_at, root.issuing_principal, root.version) == (ISSUED, USERS, "3.24.0")


# -- no delivery ---------------------------------------------------------------------------------


async def test_an_empty_result_is_a_recorded_skip(
    make_kit: KitFactory, caplog: pytest.LogCaptureFixture
) -> None:
    transport = MemoryTransport()
    kit: WebhookKit = make_kit(transports=[transport])
    await kit.start()
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    # Explicit events win: this webhook receives ORDER_UPDATED, which its query ignores.
    await kit.webhooks.create(
        app, target_url="memory://erp", events=["ORDER_UPDATED"], subscription_query=CREATED
    )
    with caplog.at_level(logging.INFO, logger="webhookkit"):
        assert await kit.trigger("ORDER_UPDATED", subject=ORDER) == []
    assert isinstance(kit.payloads, GraphQLPayloads)
    assert kit.payloads.stats.skipped_empty == 1
    assert kit.payloads.stats.executions == 1
    assert "empty result: the query selects nothing for ORDER_UPDATED" in caplog.text
    assert await kit.list_deliveries() == []
    assert transport.sent == []


async def test_channel_filters_skip_other_channels(payloads: GraphQLPayloads) -> None:
    default = hook('subscription { orderCreated(channels: ["default"]) { order { id } } }')
    b2b = hook('subscription { orderCreated(channels: ["b2b", "wholesale"]) { order { id } } }')
    anywhere = hook("subscription { orderCreated { order { number } } }")
    targets = [(default, ORDERS), (b2b, ORDERS), (anywhere, ORDERS)]
    groups = await payloads.build(make_request(payloads, "ORDER_CREATED", targets))
    sent = {w.id for g in groups if g.body is not None for w in g.webhooks}
    assert sent == {default.id, anywhere.id}
    [skip] = [g for g in groups if g.body is None]
    assert skip.webhooks == (b2b,)
    assert skip.reason == "channel filter: subject's channel 'default' is not listed"
    assert payloads.stats.skipped_channel == 1
    assert payloads.stats.executions == 2

    no_channel = await payloads.build(
        make_request(payloads, "ORDER_CREATED", targets, subject={"id": "1", "number": 1})
    )
    assert {w.id for g in no_channel if g.body is None for w in g.webhooks} == {
        default.id,
        b2b.id,
    }


async def test_channel_of_is_pluggable(small_schema: GraphQLSchema) -> None:
    payloads = GraphQLPayloads(small_schema, channel_of=lambda subject: "b2b")
    b2b = hook('subscription { orderCreated(channels: ["b2b"]) { order { id } } }')
    groups = await payloads.build(make_request(payloads, "ORDER_CREATED", [(b2b, ORDERS)]))
    assert [g.webhooks for g in groups if g.body is not None] == [(b2b,)]


async def test_an_event_missing_from_the_schema_is_skipped_with_a_reason(
    payloads: GraphQLPayloads,
) -> None:
    webhook = hook(CREATED, events=frozenset({"product_created"}))
    groups = await payloads.build(make_request(payloads, "PRODUCT_CREATED", [(webhook, ORDERS)]))
    assert groups == [
        PayloadGroup(
            body=None,
            webhooks=(webhook,),
            reason="the schema has no type for PRODUCT_CREATED (ProductCreated)",
        )
    ]
    assert payloads.stats.skipped_other == 1


async def test_a_stored_query_the_schema_no_longer_accepts_is_skipped(
    payloads: GraphQLPayloads,
) -> None:
    stale = hook("subscription { event { ... on OrderCreated { order { gone } } } }")
    fine = hook(CREATED)
    groups = await payloads.build(
        make_request(payloads, "ORDER_CREATED", [(stale, ORDERS), (fine, ORDERS)])
    )
    assert [g.webhooks for g in groups if g.body is not None] == [(fine,)]
    [skip] = [g for g in groups if g.body is None]
    assert skip.webhooks == (stale,)
    assert "stored subscription query is invalid" in skip.reason and "GRAPHQL_ERROR" in skip.reason


async def test_a_body_that_is_not_json_is_skipped_not_raised(payloads: GraphQLPayloads) -> None:
    query = "subscription { event { ... on OrderCreated { order { metadata } } } }"
    subject = {**ORDER, "metadata": {"opaque": object()}}
    groups = await payloads.build(
        make_request(payloads, "ORDER_CREATED", [(hook(query), ORDERS)], subject=subject)
    )
    [group] = groups
    assert group.body is None and "cannot encode as JSON" in group.reason
    assert (payloads.stats.skipped_other, payloads.stats.skipped_empty) == (1, 0)


# -- legacy webhooks -------------------------------------------------------------------------------


async def test_legacy_webhooks_use_the_serializer_and_payload_wins_only_for_them(
    make_kit: KitFactory,
) -> None:
    transport = MemoryTransport()
    kit: WebhookKit = make_kit(transports=[transport])
    kit.register_serializer("ORDER_CREATED", lambda order, event: {"serialized": order["id"]})
    await kit.start()
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    legacy = await kit.webhooks.create(app, target_url="memory://legacy", events=["ORDER_CREATED"])
    queried = await kit.webhooks.create(
        app, target_url="memory://query", subscription_query=CREATED
    )

    await kit.wait_for(await kit.trigger("ORDER_CREATED", subject=ORDER), timeout=10)
    await kit.wait_for(
        await kit.trigger("ORDER_CREATED", subject=ORDER, payload={"explicit": True}), timeout=10
    )
    by_hook: dict[str, list[bytes]] = {}
    for message in transport.sent:
        by_hook.setdefault(message.webhook_id, []).append(message.body)
    assert by_hook[legacy.id] == [b'{"serialized":"T3JkZXI6MQ=="}', b'{"explicit":true}']
    assert by_hook[queried.id] == [b'{"order":{"id":"T3JkZXI6MQ==","number":1001}}'] * 2


# -- sharing -----------------------------------------------------------------------------------


async def test_equal_queries_and_permissions_share_one_execution(
    payloads: GraphQLPayloads,
) -> None:
    first, second = hook(CREATED), hook(CREATED, ORDERS_2)
    groups = await payloads.build(
        make_request(payloads, "ORDER_CREATED", [(first, ORDERS), (second, ORDERS_2)])
    )
    assert [g.webhooks for g in groups] == [(first, second)]
    assert payloads.stats.executions == 1


async def test_permission_sets_execute_separately(payloads: GraphQLPayloads) -> None:
    query = "subscription { event { ... on OrderCreated { order { id userEmail } } } }"
    plain, privileged = hook(query), hook(query, USERS)
    groups = await payloads.build(
        make_request(payloads, "ORDER_CREATED", [(plain, ORDERS), (privileged, USERS)])
    )
    assert payloads.stats.executions == 2
    assert [(g.webhooks, json.loads(g.body or b"")["order"]["userEmail"]) for g in groups] == [
        ((plain,), None),
        ((privileged,), "buyer@example.com"),
    ]


async def test_queries_that_read_recipient_execute_per_app(payloads: GraphQLPayloads) -> None:
    query = "subscription { event { recipient { id } ... on OrderCreated { order { id } } } }"
    groups = await payloads.build(
        make_request(
            payloads, "ORDER_CREATED", [(hook(query), ORDERS), (hook(query, ORDERS_2), ORDERS_2)]
        )
    )
    assert payloads.stats.executions == 2
    assert [b["recipient"]["id"] for b in bodies(groups)] == ["app-orders", "app-orders-2"]


async def test_context_key_is_pluggable(small_schema: GraphQLSchema) -> None:
    payloads = GraphQLPayloads(small_schema, context_key=lambda app, query: app.id)
    await payloads.build(
        make_request(
            payloads,
            "ORDER_CREATED",
            [(hook(CREATED), ORDERS), (hook(CREATED, ORDERS_2), ORDERS_2)],
        )
    )
    assert payloads.stats.executions == 2


async def test_different_texts_with_equal_bodies_share_one_payload_row(
    payloads: GraphQLPayloads,
) -> None:
    spaced = hook(CREATED.replace(" ", "  "))
    plain = hook(CREATED)
    groups = await payloads.build(
        make_request(payloads, "ORDER_CREATED", [(plain, ORDERS), (spaced, ORDERS)])
    )
    assert payloads.stats.executions == 2
    assert [g.webhooks for g in groups] == [(plain, spaced)]


# -- cache -------------------------------------------------------------------------------------


def test_the_cache_is_bounded_and_dropped_when_the_schema_changes(
    small_schema: GraphQLSchema,
) -> None:
    payloads = GraphQLPayloads(small_schema, cache_size=2)
    queries = [CREATED, CREATED + " ", CREATED + "  "]
    for query in [*queries, queries[2], queries[0]]:
        payloads.prepare(query)
    # queries[0] was evicted by queries[2] and had to be validated again.
    assert (payloads.stats.validations, payloads.stats.cache_hits) == (4, 1)
    payloads.prepare(queries[0])
    assert payloads.stats.validations == 4
    payloads.schema = small_schema
    payloads.prepare(queries[0])
    assert payloads.stats.validations == 5
    with pytest.raises(ConfigurationError):
        GraphQLPayloads(small_schema, cache_size=0)


# -- dry run -----------------------------------------------------------------------------------


async def test_dry_run_returns_the_body_and_stores_nothing(make_kit: KitFactory) -> None:
    kit: WebhookKit = make_kit()
    body = await kit.dry_run(
        "subscription { event { issuedAt ... on OrderCreated { order { number userEmail } } } }",
        subject=ORDER,
    )
    # The default dry-run recipient holds every permission, so userEmail is visible.
    assert body == (
        b'{"issuedAt":"2026-01-01T00:00:00+00:00",'
        b'"order":{"number":1001,"userEmail":"buyer@example.com"}}'
    )
    assert await kit.list_deliveries() == []
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    limited = await kit.dry_run(
        "subscription { event { ... on OrderCreated { order { userEmail } } } }",
        subject=ORDER,
        app=app.id,
    )
    assert limited == b'{"order":{"userEmail":null}}'
    assert await kit.dry_run(CREATED, subject=ORDER, event="ORDER_UPDATED") is None


async def test_dry_run_needs_one_event_and_a_valid_query(make_kit: KitFactory) -> None:
    kit: WebhookKit = make_kit()
    taxes = "subscription { event { ... on CalculateTaxes { taxBase { currency } } } }"
    with pytest.raises(ConfigurationError, match="pass event="):
        await kit.dry_run(taxes, subject={"currency": "EUR"})
    body = await kit.dry_run(taxes, subject={"currency": "EUR"}, event="ORDER_CALCULATE_TAXES")
    assert body == b'{"taxBase":{"currency":"EUR"}}'
    with pytest.raises(InvalidQueryError):
        await kit.dry_run("subscription { event { issuedAt } }", subject=ORDER)
    plain: WebhookKit = make_kit(schema=None)
    with pytest.raises(ConfigurationError, match="dry_run needs a GraphQL schema"):
        await plain.dry_run(CREATED, subject=ORDER)
