from __future__ import annotations

import json
from pathlib import Path

import pytest

from webhookkit import ANY_EVENTS, ConfigurationError, EventKind, EventRegistry, UnknownEventError
from webhookkit.exceptions import UnknownPermissionError

# Saleor's catalogue, kept in the repository (origin: tests/fixtures/README.md).
SPEC = Path(__file__).resolve().parent / "fixtures" / "saleor-events.json"


def spec_events() -> list[dict[str, object]]:
    data = json.loads(SPEC.read_text("utf-8"))
    events: list[dict[str, object]] = data["events"]
    return events


def test_catalogue_has_151_async_and_23_sync_events() -> None:
    registry = EventRegistry.saleor()
    kinds = [e.kind for e in registry]
    assert len(registry) == 174
    assert kinds.count(EventKind.ASYNC) == 151
    assert kinds.count(EventKind.SYNC) == 23


def test_every_event_round_trips_by_name_value_and_type_name() -> None:
    registry = EventRegistry.saleor()
    spec = spec_events()
    assert len(spec) == 174
    for item in spec:
        by_name = registry.get(str(item["enum"]))
        assert registry.get(str(item["value"])) is by_name
        assert by_name.name == item["enum"]
        assert by_name.value == item["value"]
        assert by_name.kind.value == item["kind"]
        assert by_name.permission == item["permission"]
        assert by_name.subscription_type == item["subscription_type"]
        assert by_name.description == item["name"]
        if item["subscription_type"] is not None:
            assert by_name in registry.by_type_name(str(item["subscription_type"]))


def test_a_shared_type_name_maps_to_every_event_using_it() -> None:
    registry = EventRegistry.saleor()
    values = {e.value for e in registry.by_type_name("CalculateTaxes")}
    assert values == {"checkout_calculate_taxes", "order_calculate_taxes"}


def test_any_events_matches_every_async_event_and_no_sync_event() -> None:
    registry = EventRegistry.saleor()
    matched = [e for e in registry if registry.matches(ANY_EVENTS, e)]
    assert len(matched) == 151
    assert all(e.is_async for e in matched)
    assert not registry.matches(ANY_EVENTS, registry.get("CHECKOUT_CALCULATE_TAXES"))


def test_unknown_event_names_the_closest_known_names() -> None:
    registry = EventRegistry.saleor()
    with pytest.raises(UnknownEventError) as info:
        registry.get("ORDER_CRETED")
    assert "ORDER_CREATED" in info.value.suggestions
    assert "ORDER_CRETED" in str(info.value)
    assert "did you mean" in str(info.value)
    assert isinstance(info.value, ConfigurationError)


def test_unknown_type_name_is_an_unknown_event_error() -> None:
    with pytest.raises(UnknownEventError, match="OrderCreatd"):
        EventRegistry.saleor().by_type_name("OrderCreatd")


def test_host_events_register_with_kind_permission_and_type() -> None:
    registry = EventRegistry.saleor()
    registry.register_permission("MANAGE_INVOICES")
    event = registry.register(
        "INVOICE_PAID",
        permission="MANAGE_INVOICES",
        subscription_type="InvoicePaid",
        description="An invoice was paid.",
    )
    assert registry.get("invoice_paid") is event
    assert registry.by_type_name("InvoicePaid") == (event,)
    assert registry.matches(ANY_EVENTS, event)
    sync = registry.register("FRAUD_CHECK", kind="sync", permission="HANDLE_PAYMENTS")
    assert not registry.matches(ANY_EVENTS, sync)
    assert len(registry) == 176


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "invoice_paid"}, "upper snake case"),
        ({"name": "ORDER_CREATED"}, "already registered"),
        ({"name": "ANY_EVENTS"}, "already registered"),
        ({"name": "X_EVENT", "kind": "later"}, "kind"),
        ({"name": "X_EVENT", "permission": "MANAGE_EVERYTHING"}, "unknown permission"),
        ({"name": "X_EVENT", "subscription_type": "not a type"}, "subscription_type"),
    ],
)
def test_bad_registrations_are_configuration_errors(kwargs: dict[str, str], message: str) -> None:
    registry = EventRegistry.saleor()
    name = kwargs.pop("name")
    with pytest.raises(ConfigurationError, match=message):
        registry.register(name, **kwargs)
    assert len(registry) == 174


def test_unknown_permission_suggests_a_close_one() -> None:
    with pytest.raises(UnknownPermissionError, match="MANAGE_ORDERS"):
        EventRegistry.saleor().check_permissions(["MANAGE_ODERS"])


def test_each_registry_is_independent() -> None:
    first = EventRegistry.saleor()
    first.register("INVOICE_PAID")
    assert "invoice_paid" not in EventRegistry.saleor()
