"""Event types, the registry that knows them, and the ``ANY_EVENTS`` wildcard.

Saleor's whole catalogue (151 async + 23 sync events) ships as package data; hosts add their
own events with :meth:`EventRegistry.register`.
"""

from __future__ import annotations

import difflib
import enum
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .exceptions import ConfigurationError, UnknownEventError, UnknownPermissionError

__all__ = [
    "ANY_EVENTS",
    "SALEOR_PERMISSIONS",
    "EventKind",
    "EventRegistry",
    "EventType",
    "default_registry",
]

#: The wildcard value: a webhook subscribed to it receives every async event, no sync event.
ANY_EVENTS = "any_events"

#: Saleor's ``PermissionEnum`` (3.x); hosts may register more with ``register_permission``.
SALEOR_PERMISSIONS: frozenset[str] = frozenset(
    {
        "MANAGE_USERS",
        "MANAGE_STAFF",
        "IMPERSONATE_USER",
        "MANAGE_APPS",
        "MANAGE_OBSERVABILITY",
        "MANAGE_CHECKOUTS",
        "HANDLE_CHECKOUTS",
        "HANDLE_TAXES",
        "MANAGE_TAXES",
        "MANAGE_CHANNELS",
        "MANAGE_CUSTOMER_TYPES_AND_ATTRIBUTES",
        "MANAGE_DISCOUNTS",
        "MANAGE_GIFT_CARD",
        "MANAGE_MENUS",
        "MANAGE_ORDERS",
        "MANAGE_ORDERS_IMPORT",
        "MANAGE_PAGES",
        "MANAGE_PAGE_TYPES_AND_ATTRIBUTES",
        "HANDLE_PAYMENTS",
        "MANAGE_PLUGINS",
        "MANAGE_PRODUCTS",
        "MANAGE_PRODUCT_TYPES_AND_ATTRIBUTES",
        "MANAGE_SHIPPING",
        "MANAGE_SETTINGS",
        "MANAGE_TRANSLATIONS",
    }
)

#: App lifecycle events: delivered only to the affected app's own webhooks.
APP_LIFECYCLE_EVENTS: frozenset[str] = frozenset(
    {"app_installed", "app_updated", "app_deleted", "app_status_changed"}
)

_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_TYPE_RE = re.compile(r"^[A-Z][A-Za-z0-9]*$")


class EventKind(enum.StrEnum):
    """Async events are queued and retried; sync events are answered during the request."""

    ASYNC = "async"
    SYNC = "sync"


@dataclass(frozen=True, slots=True)
class EventType:
    """One event: ``name`` is the enum (``ORDER_CREATED``), ``value`` the wire form."""

    name: str
    value: str
    kind: EventKind
    permission: str | None
    subscription_type: str | None
    description: str = ""
    deferred_payload: bool = False

    @property
    def is_async(self) -> bool:
        return self.kind is EventKind.ASYNC

    @property
    def is_app_lifecycle(self) -> bool:
        return self.value in APP_LIFECYCLE_EVENTS

    def __str__(self) -> str:
        return self.name


class EventRegistry:
    """Look-up of event types by enum name, value or GraphQL subscription type name."""

    def __init__(self, events: Iterable[EventType] = (), *, permissions: Iterable[str] = ()):
        self._by_value: dict[str, EventType] = {}
        self._by_type: dict[str, list[EventType]] = {}
        self._permissions: set[str] = set(SALEOR_PERMISSIONS) | set(permissions)
        for event in events:
            self._add(event)

    @classmethod
    def saleor(cls) -> EventRegistry:
        """A new registry holding Saleor's full catalogue (a fresh copy each call)."""
        return cls(_load_catalogue())

    # -- registration -----------------------------------------------------------------------
    def register(
        self,
        name: str,
        *,
        kind: EventKind | str = EventKind.ASYNC,
        permission: str | None = None,
        subscription_type: str | None = None,
        description: str = "",
    ) -> EventType:
        """Register a host event such as ``INVOICE_PAID``; returns its :class:`EventType`."""
        if not _NAME_RE.match(name):
            raise ConfigurationError(
                f"name: {name!r} must be upper snake case such as 'INVOICE_PAID'", field="name"
            )
        try:
            event_kind = EventKind(kind)
        except ValueError:
            raise ConfigurationError(
                f"kind: {kind!r} must be 'async' or 'sync'", field="kind"
            ) from None
        if subscription_type is not None and not _TYPE_RE.match(subscription_type):
            raise ConfigurationError(
                f"subscription_type: {subscription_type!r} is not a GraphQL type name",
                field="subscription_type",
            )
        if permission is not None:
            self.check_permissions([permission], field="permission")
        event = EventType(
            name=name,
            value=name.lower(),
            kind=event_kind,
            permission=permission,
            subscription_type=subscription_type,
            description=description,
        )
        if event.value == ANY_EVENTS or event.value in self._by_value:
            raise ConfigurationError(f"name: event {name!r} is already registered", field="name")
        self._add(event)
        return event

    def register_permission(self, name: str) -> None:
        """Make a host permission (``MANAGE_INVOICES``) known, so apps may hold it."""
        if not _NAME_RE.match(name):
            raise ConfigurationError(
                f"permission: {name!r} must be upper snake case", field="permission"
            )
        self._permissions.add(name)

    def _add(self, event: EventType) -> None:
        self._by_value[event.value] = event
        if event.subscription_type:
            self._by_type.setdefault(event.subscription_type, []).append(event)

    # -- look-up ------------------------------------------------------------------------------
    def get(self, key: str | EventType, *, field: str = "event") -> EventType:
        """The event for an enum name, a value or an :class:`EventType`; else UnknownEventError."""
        if isinstance(key, EventType):
            key = key.value
        event = self._by_value.get(key.lower()) if isinstance(key, str) else None
        if event is None:
            raise UnknownEventError(str(key), self.suggest(str(key)), field=field)
        return event

    def normalize(self, key: str | EventType, *, field: str = "events") -> str:
        """The wire value of an event or of the ``ANY_EVENTS`` wildcard."""
        if isinstance(key, str) and key.lower() == ANY_EVENTS:
            return ANY_EVENTS
        return self.get(key, field=field).value

    def by_type_name(self, type_name: str) -> tuple[EventType, ...]:
        """All events whose subscription type is ``type_name`` (``CalculateTaxes`` has two)."""
        found = self._by_type.get(type_name)
        if not found:
            raise UnknownEventError(type_name, self._suggest_type(type_name), field="type")
        return tuple(found)

    def suggest(self, name: str, n: int = 3) -> list[str]:
        """Up to ``n`` known enum names closest to ``name``."""
        names = [e.name for e in self._by_value.values()]
        return difflib.get_close_matches(name.upper(), names, n=n, cutoff=0.6)

    def _suggest_type(self, type_name: str) -> list[str]:
        return difflib.get_close_matches(type_name, list(self._by_type), n=3, cutoff=0.6)

    def matches(self, subscribed: str, event: EventType) -> bool:
        """Whether a webhook subscribed to ``subscribed`` (a value) receives ``event``."""
        return subscribed == event.value or (subscribed == ANY_EVENTS and event.is_async)

    def check_permissions(self, names: Iterable[str], *, field: str = "permissions") -> None:
        unknown = sorted(set(names) - self._permissions)
        if unknown:
            hints = {
                n: difflib.get_close_matches(n.upper(), sorted(self._permissions), n=1)
                for n in unknown
            }
            parts = [
                f"{n!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for n, h in hints.items()
            ]
            raise UnknownPermissionError(
                f"{field}: unknown permission {', '.join(parts)}", field=field
            )

    @property
    def permissions(self) -> frozenset[str]:
        return frozenset(self._permissions)

    def __iter__(self) -> Iterator[EventType]:
        return iter(self._by_value.values())

    def __len__(self) -> int:
        return len(self._by_value)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, EventType):
            return self._by_value.get(key.value) == key
        return isinstance(key, str) and key.lower() in self._by_value

    def __repr__(self) -> str:
        return f"EventRegistry({len(self)} events)"


def _load_catalogue() -> list[EventType]:
    raw: dict[str, Any] = json.loads(
        resources.files("webhookkit").joinpath("_data/saleor-events.json").read_text("utf-8")
    )
    return [
        EventType(
            name=item["enum"],
            value=item["value"],
            kind=EventKind(item["kind"]),
            permission=item["permission"],
            subscription_type=item["subscription_type"],
            description=item["name"],
            deferred_payload=bool(item["deferred_payload"]),
        )
        for item in raw["events"]
    ]


def default_registry() -> EventRegistry:
    """Saleor's catalogue in a new registry (each dispatcher gets its own copy)."""
    return EventRegistry.saleor()
