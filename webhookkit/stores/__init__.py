"""Stores keep apps, webhooks, payloads, deliveries and attempts; pick one by URL or object."""

from __future__ import annotations

from .base import DEFAULT_KEEP_FAILED, DeliveryQuery, Store, WorkNotifier
from .memory import MemoryStore
from .postgres import PostgresStore
from .sqlite import SQLiteStore

__all__ = [
    "DEFAULT_KEEP_FAILED",
    "DeliveryQuery",
    "MemoryStore",
    "PostgresStore",
    "SQLiteStore",
    "Store",
    "WorkNotifier",
    "open_store",
]


def open_store(store: Store | str | None) -> Store:
    """A store from an object or a URL; ``None`` is the memory store.

    URLs: ``memory://``; ``sqlite:///relative.db``, ``sqlite:////absolute/path.db`` or
    ``sqlite:///:memory:``; ``postgresql://user:password@host:port/db`` (also ``postgres://``,
    query parameters as libpq takes them). Nothing connects until the store's ``open()``.
    """
    if store is None:
        return MemoryStore()
    if isinstance(store, str):
        from ..exceptions import ConfigurationError

        scheme, sep, rest = store.partition("://")
        scheme = scheme.lower()
        if store == "memory" or (scheme == "memory" and sep and not rest):
            return MemoryStore()
        if scheme == "sqlite" and sep:
            path = rest[1:] if rest.startswith("/") else ""
            if not path:
                raise ConfigurationError(
                    "store: a SQLite URL needs a path: 'sqlite:///relative.db' or "
                    "'sqlite:////absolute/path.db'",
                    field="store",
                )
            return SQLiteStore(path)
        if scheme in ("postgresql", "postgres") and sep:
            return PostgresStore(store)
        shown = scheme if sep else store.split("/", 1)[0][:20]
        raise ConfigurationError(
            f"store: unsupported store URL scheme {shown!r}; supported: 'memory://', "
            "'sqlite:///path', 'postgresql://...'",
            field="store",
        )
    return store
