"""Validation with Saleor's error codes and event inference, on Saleor's schema and ours."""

from __future__ import annotations

import pytest
from graphql import GraphQLSchema, build_schema

from webhookkit import ConfigurationError, EventRegistry, InvalidQueryError, WebhookKit
from webhookkit.payloads.graphql import GraphQLPayloads

from .conftest import SMALL_SDL, KitFactory

ORDER_CREATED = "subscription { event { ... on OrderCreated { order { id } } } }"

# (code, query, line, column): each query really produces its code.
ERRORS = [
    ("SYNTAX", "subscription {\n  event {{\n}", 2, 10),
    (
        "GRAPHQL_ERROR",
        "subscription {\n  event {\n    ... on OrderCreated {\n      order { nope }\n    }\n  }\n}",
        4,
        15,
    ),
    ("MISSING_SUBSCRIPTION", "query {\n  __typename\n}", None, None),
    (
        "INVALID",
        "subscription {\n"
        '  orderCreated(channels: ["default"]) { order { id } }\n'
        '  orderCreated(channels: ["default"]) { order { id } }\n'
        "}",
        3,
        3,
    ),
    (
        "INVALID",
        "subscription {\n"
        "  orderCreated { order { id } }\n"
        "  ...More\n"
        "}\n"
        "fragment More on Subscription { orderCreated { order { id } } }",
        3,
        3,
    ),
    (
        "UNABLE_TO_PARSE",
        "subscription {\n  ...event\n}\n"
        "fragment event on Subscription {\n  event { ... on OrderCreated { order { id } } }\n}",
        2,
        3,
    ),
    (
        "UNABLE_TO_PARSE",
        "subscription {\n"
        "  ... on Subscription { event { ... on OrderCreated { order { id } } } }\n"
        "}",
        2,
        3,
    ),
    ("MISSING_EVENT", "subscription {\n  event {\n    issuedAt\n  }\n}", 2, 3),
]

MESSAGES = {
    "MISSING_SUBSCRIPTION": "Subscription operation can't be found.",
    "INVALID": "Subscription must select only one top field.",
    "UNABLE_TO_PARSE": "Event field can't be found.",
    "MISSING_EVENT": "Can't find a single event.",
}


@pytest.fixture(params=["saleor", "small"])
def builder(
    request: pytest.FixtureRequest, saleor_payloads: GraphQLPayloads, payloads: GraphQLPayloads
) -> GraphQLPayloads:
    return saleor_payloads if request.param == "saleor" else payloads


@pytest.mark.parametrize(("code", "query", "line", "column"), ERRORS)
def test_each_saleor_error_code_comes_from_a_query_that_produces_it(
    builder: GraphQLPayloads, code: str, query: str, line: int | None, column: int | None
) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        builder.prepare_query(query, builder.registry)
    error = caught.value
    assert (error.code, error.line, error.column) == (code, line, column)
    assert isinstance(error, ConfigurationError)
    assert error.field == "subscription_query"
    assert error.message in str(error) and f"[{code}]" in str(error)
    if code in MESSAGES:
        assert error.message == MESSAGES[code]


def test_graphql_error_message_is_graphql_cores(saleor_payloads: GraphQLPayloads) -> None:
    query = "subscription { event { ... on OrderCreated { order { nope } } } }"
    with pytest.raises(InvalidQueryError, match="Cannot query field 'nope' on type 'Order'"):
        saleor_payloads.prepare(query)


def test_a_refused_query_is_refused_again_from_the_cache(payloads: GraphQLPayloads) -> None:
    for _ in range(3):
        with pytest.raises(InvalidQueryError) as caught:
            payloads.prepare("subscription { event { issuedAt } }")
        assert caught.value.code == "MISSING_EVENT"
    assert payloads.stats.validations == 1
    assert payloads.stats.cache_hits == 2


async def test_an_invalid_query_is_never_stored(make_kit: KitFactory) -> None:
    kit: WebhookKit = make_kit()
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    with pytest.raises(InvalidQueryError):
        await kit.webhooks.create(
            app,
            target_url="https://erp.example.com/hook",
            subscription_query="subscription { event { ... on OrderCreated { order { nope } } } }",
        )
    assert await kit.webhooks.list() == []
    webhook = await kit.webhooks.create(
        app, target_url="https://erp.example.com/hook", subscription_query=ORDER_CREATED
    )
    with pytest.raises(InvalidQueryError) as caught:
        await kit.webhooks.update(webhook.id, subscription_query="subscription {")
    assert caught.value.code == "SYNTAX"
    assert await kit.webhooks.get(webhook.id) == webhook


# -- inference ---------------------------------------------------------------------------------

INFERENCE = [
    ("inline", ORDER_CREATED, {"order_created"}),
    (
        "several inline",
        """subscription { event {
            ... on OrderCreated { order { id } }
            ... on ProductUpdated { product { id } }
        } }""",
        {"order_created", "product_updated"},
    ),
    (
        "named on the event type",
        """subscription { event { ...Payload } }
        fragment Payload on OrderUpdated { order { id } }""",
        {"order_updated"},
    ),
    (
        "named on Event",
        """subscription { event { ...EventFields } }
        fragment EventFields on Event {
            issuedAt
            ... on OrderCreated { order { id } }
            ... on OrderUpdated { order { number } }
        }""",
        {"order_created", "order_updated"},
    ),
    (
        "inline on Event",
        "subscription { event { ... on Event { ... on OrderUpdated { order { id } } } } }",
        {"order_updated"},
    ),
    (
        "mixed, over two event fields",
        """subscription {
            event { ... on ProductUpdated { product { id } } ...Meta }
            event { ...Order }
        }
        fragment Meta on Event { version ... on OrderCreated { order { id } } }
        fragment Order on OrderUpdated { order { id } }""",
        {"order_created", "order_updated", "product_updated"},
    ),
    (
        "one type, two events",
        "subscription { event { ... on CalculateTaxes { taxBase { currency } } } }",
        {"checkout_calculate_taxes", "order_calculate_taxes"},
    ),
    (
        "filterable",
        'subscription { orderCreated(channels: ["default"]) { order { id } } }',
        {"order_created"},
    ),
    (
        "filterable with alias, no filter",
        "subscription { updated: orderUpdated { order { id } } }",
        {"order_updated"},
    ),
]


@pytest.mark.parametrize(("case", "query", "events"), INFERENCE, ids=[c[0] for c in INFERENCE])
def test_inference(builder: GraphQLPayloads, case: str, query: str, events: set[str]) -> None:
    assert builder.prepare_query(query, builder.registry) == events


def test_named_fragments_count_one_level_deep_as_in_saleor(builder: GraphQLPayloads) -> None:
    query = """subscription { event { ...Outer } }
    fragment Outer on Event { issuedAt ...Inner }
    fragment Inner on Event { ... on OrderCreated { order { id } } }"""
    with pytest.raises(InvalidQueryError) as caught:
        builder.prepare(query)
    assert caught.value.code == "MISSING_EVENT"


def test_payment_event_types_map_through_the_registry(saleor_payloads: GraphQLPayloads) -> None:
    # Saleor's own name-based inference would store "payment_capture_event" here.
    query = "subscription { event { ... on PaymentCaptureEvent { payment { id } } } }"
    assert saleor_payloads.prepare_query(query, saleor_payloads.registry) == {"payment_capture"}


def test_filterable_field_reads_channels_and_alias(payloads: GraphQLPayloads) -> None:
    prepared = payloads.prepare(
        'subscription { created: orderCreated(channels: ["default", "b2b", "default"]) '
        "{ order { id } } }"
    )
    assert prepared.filterable
    assert (prepared.root_field, prepared.response_key) == ("orderCreated", "created")
    assert prepared.channels == ("default", "b2b")
    assert payloads.prepare(ORDER_CREATED).channels == ()
    single = payloads.prepare('subscription { orderCreated(channels: "b2b") { order { id } } }')
    assert single.channels == ("b2b",)


def test_more_than_500_channels_is_invalid(payloads: GraphQLPayloads) -> None:
    slugs = ", ".join(f'"c{i}"' for i in range(501))
    with pytest.raises(InvalidQueryError) as caught:
        payloads.prepare(
            f"subscription {{ orderCreated(channels: [{slugs}]) {{ order {{ id }} }} }}"
        )
    assert caught.value.code == "INVALID"
    assert "at most 500" in caught.value.message
    ok = ", ".join(f'"c{i}"' for i in range(500))
    assert (
        len(
            payloads.prepare(
                f"subscription {{ orderCreated(channels: [{ok}]) {{ order {{ id }} }} }}"
            ).channels
        )
        == 500
    )


def test_recipient_is_detected_through_fragments(payloads: GraphQLPayloads) -> None:
    assert not payloads.prepare(ORDER_CREATED).selects_recipient
    assert payloads.prepare(
        "subscription { event { ...R ... on OrderCreated { order { id } } } }"
        " fragment R on Event { recipient { id } }"
    ).selects_recipient
    assert payloads.prepare(
        "subscription { orderCreated { recipient { name } order { id } } }"
    ).selects_recipient


HOST_SDL = SMALL_SDL.replace(
    "type Subscription {",
    """type InvoicePaid implements Event {
  issuedAt: DateTime
  version: String
  issuingPrincipal: IssuingPrincipal
  recipient: App
  amount: Float
}

type Subscription {""",
)


def test_a_type_no_event_maps_to_is_refused_until_the_host_registers_it() -> None:
    registry = EventRegistry.saleor()
    builder = GraphQLPayloads(HOST_SDL, registry=registry)
    query = "subscription { event { ... on InvoicePaid { amount } } }"
    with pytest.raises(InvalidQueryError, match="'InvoicePaid' maps to no event") as caught:
        builder.prepare(query)
    assert caught.value.code == "MISSING_EVENT"
    registry.register("INVOICE_PAID", subscription_type="InvoicePaid")
    assert builder.prepare_query(query, registry) == {"invoice_paid"}


async def test_explicit_events_win_over_inferred_ones(make_kit: KitFactory) -> None:
    kit: WebhookKit = make_kit()
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    inferred = await kit.webhooks.create(
        app, target_url="https://erp.example.com/a", subscription_query=ORDER_CREATED
    )
    explicit = await kit.webhooks.create(
        app,
        target_url="https://erp.example.com/b",
        events=["ORDER_UPDATED"],
        subscription_query=ORDER_CREATED,
    )
    assert inferred.subscribed_events == {"order_created"}
    assert explicit.query_events == {"order_created"}
    assert explicit.subscribed_events == {"order_updated"}


# -- the schema check at start-up -----------------------------------------------------------


def test_saleor_schema_serves_every_event_of_the_catalogue(saleor_schema: GraphQLSchema) -> None:
    registry = EventRegistry.saleor()
    typed = [e for e in registry if e.subscription_type]
    builder = GraphQLPayloads(saleor_schema, registry=registry, events=typed)
    assert builder.served_events == {e.value for e in typed}
    assert len(typed) == 172


def test_start_up_check_names_the_missing_event_types(small_schema: GraphQLSchema) -> None:
    with pytest.raises(ConfigurationError) as caught:
        WebhookKit(
            payloads=GraphQLPayloads(
                small_schema, events=["ORDER_CREATED", "PRODUCT_CREATED", "NOTIFY_USER"]
            )
        )
    message = str(caught.value)
    assert "PRODUCT_CREATED (type ProductCreated)" in message
    assert "NOTIFY_USER (no subscription type)" in message
    assert "ORDER_CREATED" not in message
    kit = WebhookKit(
        payloads=GraphQLPayloads(small_schema, events=["ORDER_CREATED", "ORDER_UPDATED"])
    )
    assert isinstance(kit.payloads, GraphQLPayloads)


def test_schema_needs_a_subscription_event_interface() -> None:
    with pytest.raises(ConfigurationError, match="Subscription type with an 'event' field"):
        GraphQLPayloads("type Query { a: String }")
    with pytest.raises(ConfigurationError, match="is not an interface"):
        GraphQLPayloads("type Query { a: String } type Subscription { event: String }")
    with pytest.raises(ConfigurationError, match="SDL cannot be built"):
        GraphQLPayloads("type Query {")


def test_a_builder_with_another_registry_is_refused(small_schema: GraphQLSchema) -> None:
    other = EventRegistry.saleor()
    with pytest.raises(ConfigurationError, match="another EventRegistry") as caught:
        WebhookKit(payloads=GraphQLPayloads(small_schema, registry=other))
    assert caught.value.field == "payloads"
    shared = EventRegistry.saleor()
    kit = WebhookKit(registry=shared, payloads=GraphQLPayloads(small_schema, registry=shared))
    assert isinstance(kit.payloads, GraphQLPayloads) and kit.payloads.registry is shared


def test_sdl_text_works_like_a_schema_object() -> None:
    builder = GraphQLPayloads(SMALL_SDL)
    assert builder.prepare_query(ORDER_CREATED, builder.registry) == {"order_created"}
    assert build_schema(SMALL_SDL).subscription_type is not None
