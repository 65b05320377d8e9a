"""Schemas for the payload tests: Saleor's real schema (built once per session) and a small
hand-written one (built per test, so a test may attach resolvers to it)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLObjectType, GraphQLSchema, build_schema

from webhookkit import App, WebhookKit
from webhookkit.payloads.graphql import GraphQLPayloads
from webhookkit.testing import FakeClock

HERE = Path(__file__).parent
# Saleor's schema and its apps' queries, kept in the repository (origin: tests/fixtures/README.md).
FIXTURES = Path(__file__).parents[1] / "fixtures"
SMALL_SDL = (HERE / "schema.graphql").read_text("utf-8")

ORDER: dict[str, Any] = {
    "id": "T3JkZXI6MQ==",
    "number": 1001,
    "total": 42.5,
    "channel": {"slug": "default"},
    "lines": [{"sku": "TSHIRT-M", "quantity": 2}],
    "user_email": "buyer@example.com",
}


@pytest.fixture(scope="session")
def saleor_schema() -> GraphQLSchema:
    """Saleor's public schema: about 1 MB of SDL, so it is built once per session."""
    return build_schema((FIXTURES / "saleor-schema.graphql").read_text("utf-8"))


@pytest.fixture(scope="session")
def saleor_queries() -> list[dict[str, Any]]:
    data: dict[str, Any] = json.loads((FIXTURES / "saleor-app-queries.json").read_text("utf-8"))
    queries: list[dict[str, Any]] = data["queries"]
    return queries


@pytest.fixture(scope="session")
def saleor_payloads(saleor_schema: GraphQLSchema) -> GraphQLPayloads:
    """One builder over Saleor's schema for tests that only validate and infer."""
    return GraphQLPayloads(saleor_schema)


@pytest.fixture
def small_schema() -> GraphQLSchema:
    """The hand-written schema with one code-first resolver: ``Order.userEmail`` needs the
    receiving app to hold MANAGE_USERS (the context is the App by default)."""
    schema = build_schema(SMALL_SDL)
    order = schema.type_map["Order"]
    assert isinstance(order, GraphQLObjectType)
    order.fields["userEmail"].resolve = _user_email
    return schema


def _user_email(order: dict[str, Any], info: Any) -> str | None:
    app = info.context
    permissions = app.permissions if isinstance(app, App) else app["permissions"]
    return order["user_email"] if "MANAGE_USERS" in permissions else None


@pytest.fixture
def payloads(small_schema: GraphQLSchema) -> GraphQLPayloads:
    return GraphQLPayloads(small_schema)


KitFactory = Callable[..., WebhookKit]


@pytest.fixture
async def make_kit(small_schema: GraphQLSchema) -> AsyncIterator[KitFactory]:
    """Started kits on a FakeClock over the small schema (unless ``schema=`` says otherwise)."""
    kits: list[WebhookKit] = []

    def make(**options: Any) -> WebhookKit:
        schema = options.pop("schema", small_schema)
        builder_options = {
            name: options.pop(name) for name in ("context_factory", "events") if name in options
        }
        if schema is not None and "payloads" not in options:
            options["payloads"] = GraphQLPayloads(schema, **builder_options)
        options.setdefault("clock", FakeClock())
        options.setdefault("domain", "shop.example.com")
        kit = WebhookKit(**options)
        kits.append(kit)
        return kit

    yield make
    for kit in kits:
        await kit.aclose()
