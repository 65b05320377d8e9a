"""``settings.WEBHOOKKIT``: what it may hold, read once, and the kit built from it."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlencode

from ...config import DeliveryConfig
from ...dispatcher import WebhookKit
from ...exceptions import ConfigurationError
from ...signing import KeySet, load_key

__all__ = ["KitSettings", "build_kit", "database_url", "load_settings"]

#: ``"store": "django"`` (or ``"django:ALIAS"``): the store lives in Django's own database.
DJANGO_STORE: Final = "django"


@dataclass(frozen=True, slots=True)
class KitSettings:
    """``settings.WEBHOOKKIT`` checked; see docs/deploying.md for each key."""

    store: str
    store_alias: str | None
    domain: str
    api_url: str | None
    signing_key_file: str | None
    signing_key_env: str | None
    schema: str | None
    allow_addresses: tuple[str, ...]
    concurrency: int
    poll_interval: float

    def __repr__(self) -> str:  # the store URL may carry a password
        from ..._secret import redact_url

        return f"KitSettings(store={redact_url(self.store)!r}, domain={self.domain!r})"


_KEYS: Final = frozenset(
    {
        "store",
        "domain",
        "api_url",
        "signing_key_file",
        "signing_key_env",
        "schema",
        "allow_addresses",
        "concurrency",
        "poll_interval",
    }
)


def _field(name: str) -> str:
    return f"WEBHOOKKIT.{name}"


def load_settings(raw: Any = None) -> KitSettings:
    """Read and check ``settings.WEBHOOKKIT`` (or ``raw``)."""
    if raw is None:
        from django.conf import settings

        raw = getattr(settings, "WEBHOOKKIT", {})
    if not isinstance(raw, dict):
        raise ConfigurationError("WEBHOOKKIT: must be a dict", field="WEBHOOKKIT")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigurationError(
            f"WEBHOOKKIT: unknown key(s) {unknown}; known: {sorted(_KEYS)}", field="WEBHOOKKIT"
        )
    store = str(raw.get("store", DJANGO_STORE))
    alias: str | None = None
    if store == DJANGO_STORE or store.startswith(DJANGO_STORE + ":"):
        alias = store.partition(":")[2] or "default"
        store = database_url(alias)
    domain = raw.get("domain")
    if not isinstance(domain, str) or not domain:
        raise ConfigurationError(
            "WEBHOOKKIT.domain: required, the Saleor-Domain webhooks carry ('shop.example.com')",
            field=_field("domain"),
        )
    if raw.get("signing_key_file") and raw.get("signing_key_env"):
        raise ConfigurationError(
            "WEBHOOKKIT.signing_key_file: give it or signing_key_env, not both",
            field=_field("signing_key_file"),
        )
    allow = raw.get("allow_addresses", ())
    if isinstance(allow, str) or not all(isinstance(a, str) for a in allow):
        raise ConfigurationError(
            "WEBHOOKKIT.allow_addresses: a list of networks such as ['10.0.0.0/8']",
            field=_field("allow_addresses"),
        )
    return KitSettings(
        store=store,
        store_alias=alias,
        domain=domain,
        api_url=raw.get("api_url"),
        signing_key_file=raw.get("signing_key_file"),
        signing_key_env=raw.get("signing_key_env"),
        schema=raw.get("schema"),
        allow_addresses=tuple(allow),
        concurrency=int(raw.get("concurrency", 100)),
        poll_interval=float(raw.get("poll_interval", 1.0)),
    )


def database_url(alias: str) -> str:
    """The store URL of Django's database ``alias`` (PostgreSQL or SQLite)."""
    from django.db import connections

    try:
        config = connections.settings[alias]
    except Exception:
        raise ConfigurationError(
            f"WEBHOOKKIT.store: Django has no database {alias!r}", field=_field("store")
        ) from None
    engine = str(config.get("ENGINE", ""))
    name = str(config.get("NAME") or "")
    if engine.endswith("sqlite3"):
        if not name or name == ":memory:" or name.startswith("file:"):
            raise ConfigurationError(
                f"WEBHOOKKIT.store: database {alias!r} must be an SQLite file for workers to share",
                field=_field("store"),
            )
        return f"sqlite:///{Path(name).resolve()}"
    if "postgresql" in engine:
        user = quote(str(config.get("USER") or ""), safe="")
        password = str(config.get("PASSWORD") or "")
        auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
        host = str(config.get("HOST") or "")
        port = str(config.get("PORT") or "")
        if host.startswith("/"):  # a unix socket directory goes in the query
            query = urlencode({"host": host, **({"port": port} if port else {})})
            return f"postgresql://{auth}/{quote(name)}?{query}"
        netloc = host + (f":{port}" if port else "")
        return f"postgresql://{auth}{netloc}/{quote(name)}"
    raise ConfigurationError(
        f"WEBHOOKKIT.store: database {alias!r} uses {engine}; the store needs PostgreSQL or "
        "SQLite (or give a store URL)",
        field=_field("store"),
    )


def _signing_keys(config: KitSettings) -> KeySet | None:
    if config.signing_key_file:
        try:
            pem = Path(config.signing_key_file).read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"WEBHOOKKIT.signing_key_file: cannot read it: {exc.strerror}",
                field=_field("signing_key_file"),
            ) from None
        return KeySet.of(load_key(pem))
    if config.signing_key_env:
        value = os.environ.get(config.signing_key_env)
        if not value:
            raise ConfigurationError(
                f"WEBHOOKKIT.signing_key_env: ${config.signing_key_env} is not set",
                field=_field("signing_key_env"),
            )
        return KeySet.of(load_key(value))
    return None


def _schema(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigurationError(
            f"WEBHOOKKIT.schema: cannot import {dotted!r}: {exc}", field=_field("schema")
        ) from None


def build_kit(
    config: KitSettings,
    *,
    worker: bool = False,
    concurrency: int | None = None,
    lease: timedelta | None = None,
    poll_interval: float | None = None,
) -> WebhookKit:
    """The one place the integration builds a kit: for queueing (``BlockingKit`` in web
    processes: no retention loop) or for a ``worker`` that sends."""
    from ...transports.http import HTTPTransport

    payloads = None
    if config.schema:
        from ...payloads.graphql import GraphQLPayloads

        payloads = GraphQLPayloads(_schema(config.schema))
    options: dict[str, Any] = {}
    if worker:
        delivery = DeliveryConfig(
            concurrency=concurrency or config.concurrency,
            poll_interval=poll_interval or config.poll_interval,
        )
        options["delivery"] = delivery if lease is None else replace(delivery, lease=lease)
    else:
        options["retention"] = None  # purging is the workers' job
    return WebhookKit(
        store=config.store,
        domain=config.domain,
        api_url=config.api_url,
        signing_key=_signing_keys(config),
        payloads=payloads,
        transports=[HTTPTransport(allow_addresses=config.allow_addresses)],
        **options,
    )
