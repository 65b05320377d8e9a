"""Stores keep apps, webhooks, payloads, deliveries and attempts; pick one by URL or object."""

from __future__ import annotations

from .._sanitize import first_unstorable
from ._dsn import validate_dsn
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
    "validate_dsn",
]


def open_store(store: Store | str | None) -> Store:
    """A store from an object or a URL; ``None`` is the memory store.

    URLs: ``memory://``; ``sqlite:///relative.db``, ``sqlite:////absolute/path.db`` or
    ``sqlite:///:memory:``; ``postgresql://user:password@host:port/db`` (also ``postgres://``,
    query parameters as libpq takes them; ``partitioned=true`` asks for the day-partitioned
    layout of :mod:`webhookkit.stores.partitions`). Nothing connects until the store's
    ``open()``, but a malformed URL is refused here (:class:`ConfigurationError`,
    ``field="store"``).
    """
    from ..exceptions import ConfigurationError

    if store is None:
        return MemoryStore()
    if isinstance(store, str):
        if first_unstorable(store) is not None:
            raise ConfigurationError(
                "store: the URL holds control characters or lone surrogates", field="store"
            )
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
            validate_dsn(store)
            return PostgresStore(store)
        shown = scheme if sep else store.split("/", 1)[0][:20]
        raise ConfigurationError(
            f"store: unsupported store URL scheme {shown!r}; supported: 'memory://', "
            "'sqlite:///path', 'postgresql://...'",
            field="store",
        )
    if isinstance(store, bytes | bytearray) or not all(
        callable(getattr(store, name, None)) for name in ("put_app", "list_deliveries", "open")
    ):
        raise ConfigurationError(
            f"store: expected a Store or a store URL, got {type(store).__name__}", field="store"
        )
    return store
