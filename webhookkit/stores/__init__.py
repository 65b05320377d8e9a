"""Stores keep apps, webhooks, payloads, deliveries and attempts; pick one by URL or object."""

from __future__ import annotations

from .base import DeliveryQuery, Store
from .memory import MemoryStore

__all__ = ["DeliveryQuery", "MemoryStore", "Store", "open_store"]


def open_store(store: Store | str | None) -> Store:
    """A store from an object or a URL (``memory://``); ``None`` is the memory store."""
    if store is None:
        return MemoryStore()
    if isinstance(store, str):
        from ..exceptions import ConfigurationError

        if store == "memory://" or store == "memory":
            return MemoryStore()
        raise ConfigurationError(
            f"store: unsupported store URL scheme in {store.split('://', 1)[0]!r}; "
            "supported: 'memory://'",
            field="store",
        )
    return store
