"""Every subscription query of Saleor's own apps: validity as recorded, and the app's declared
event among the inferred ones (with the registry's mapping, not Saleor's name-based one)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from webhookkit import InvalidQueryError
from webhookkit.payloads.graphql import GraphQLPayloads

from .conftest import FIXTURES

QUERIES: list[dict[str, Any]] = json.loads(
    (FIXTURES / "saleor-app-queries.json").read_text("utf-8")
)["queries"]


def test_the_fixture_holds_113_queries_of_24_apps() -> None:
    assert len(QUERIES) == 113
    assert len({(q["repo"], q["app"]) for q in QUERIES}) == 24


@pytest.mark.parametrize(
    "entry", QUERIES, ids=[f"{i}-{q['app']}-{q['declared_event']}" for i, q in enumerate(QUERIES)]
)
def test_saleor_app_query(saleor_payloads: GraphQLPayloads, entry: dict[str, Any]) -> None:
    if not entry["valid_against_schema"]:
        with pytest.raises(InvalidQueryError) as caught:
            saleor_payloads.prepare_query(entry["query"], saleor_payloads.registry)
        assert caught.value.code == "GRAPHQL_ERROR"
        assert entry["schema_error"] in caught.value.message
        return
    events = saleor_payloads.prepare_query(entry["query"], saleor_payloads.registry)
    assert entry["declared_event"].lower() in events
    assert events == {e.lower() for e in entry["inferred_events"]}


def test_calculate_taxes_queries_infer_both_tax_events(saleor_payloads: GraphQLPayloads) -> None:
    taxes = [q for q in QUERIES if q["event_type_names"] == ["CalculateTaxes"]]
    assert taxes
    for entry in taxes:
        assert saleor_payloads.prepare_query(entry["query"], saleor_payloads.registry) == {
            "checkout_calculate_taxes",
            "order_calculate_taxes",
        }
        # Saleor's own inference stores an event that does not exist.
        assert entry["saleor_name_based_events"] == ["calculate_taxes"]
