"""The configuration a process works from: apps and webhooks cached in memory, indexed by event.

A trigger finds its webhooks through the event index instead of listing every webhook, and the
scheduler finds a delivery's webhook and app without reading the store. The cache follows the
store's ``config_generation`` counter: a store bumps it on every configuration write it makes
and when it learns of another process's write (a version row kept by database triggers, polled
every ``config_refresh`` seconds; on PostgreSQL also announced by NOTIFY), and the catalog
reloads on the next use after a bump.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from .apps import App, Webhook
from .events import ANY_EVENTS, EventRegistry, EventType
from .stores.base import Store

__all__ = ["Catalog", "Skip"]

log = logging.getLogger("webhookkit")


@dataclass(frozen=True, slots=True)
class Skip:
    """A webhook subscribed to an event that it does not get, and why."""

    webhook: Webhook
    reason: str


class Catalog:
    """Apps and webhooks of one store, with an event -> webhooks index."""

    def __init__(self, store: Store, registry: EventRegistry) -> None:
        self._store = store
        self._registry = registry
        self._generation: int | None = None
        self._apps: dict[str, App] = {}
        self._webhooks: dict[str, Webhook] = {}
        self._by_event: dict[str, list[Webhook]] = {}
        self._any: list[Webhook] = []
        #: Webhooks webhookkit disabled for failing too long: their deliveries are held.
        self.disabled: frozenset[str] = frozenset()
        self._lock = asyncio.Lock()
        self.reloads = 0

    def _store_generation(self) -> int | None:
        generation = getattr(self._store, "config_generation", None)
        return generation if isinstance(generation, int) else None

    @property
    def fresh(self) -> bool:
        generation = self._store_generation()
        return generation is not None and generation == self._generation

    async def refresh(self, *, force: bool = False) -> None:
        """Reload from the store if it changed since the last load (or always, ``force``)."""
        if self.fresh and not force:
            return
        async with self._lock:
            if self.fresh and not force:
                return
            # Read the counter first: a write racing with the reload bumps it again, so the
            # next use reloads instead of keeping a stale copy.
            generation = self._store_generation()
            apps = await self._store.list_apps()
            webhooks = await self._store.list_webhooks()
            self._load(apps, webhooks)
            self._generation = generation
            self.reloads += 1

    def _load(self, apps: Sequence[App], webhooks: Sequence[Webhook]) -> None:
        by_event: dict[str, list[Webhook]] = {}
        any_events: list[Webhook] = []
        for webhook in webhooks:
            for value in webhook.subscribed_events:
                if value == ANY_EVENTS:
                    any_events.append(webhook)
                else:
                    by_event.setdefault(value, []).append(webhook)
        self._apps = {a.id: a for a in apps}
        self._webhooks = {w.id: w for w in webhooks}
        self.disabled = frozenset(w.id for w in webhooks if w.disabled_at is not None)
        self._by_event = by_event
        self._any = any_events

    def app(self, app_id: str) -> App | None:
        return self._apps.get(app_id)

    def webhook(self, webhook_id: str) -> Webhook | None:
        return self._webhooks.get(webhook_id)

    @property
    def webhooks(self) -> list[Webhook]:
        return list(self._webhooks.values())

    def subscribers(self, event: EventType, only_app: str | None = None) -> list[Webhook]:
        """Webhooks subscribed to ``event`` (explicitly, through their query, or to
        ``ANY_EVENTS`` for async events), whatever their state; each once."""
        found = list(self._by_event.get(event.value, ()))
        if event.is_async and self._any:
            seen = {w.id for w in found}
            found += [w for w in self._any if w.id not in seen]
        if only_app is not None:
            found = [w for w in found if w.app_id == only_app]
        return found

    def targets(
        self, event: EventType, only_app: str | None = None
    ) -> tuple[list[tuple[Webhook, App]], list[Skip]]:
        """Who receives ``event`` now (Saleor's rules), and who is subscribed but skipped."""
        targets: list[tuple[Webhook, App]] = []
        skipped: list[Skip] = []
        for webhook in self.subscribers(event, only_app):
            app = self._apps.get(webhook.app_id)
            reason = _skip_reason(app, webhook, event)
            if reason is None:
                assert app is not None
                targets.append((webhook, app))
            else:
                skipped.append(Skip(webhook, reason))
        return targets, skipped


def _skip_reason(app: App | None, webhook: Webhook, event: EventType) -> str | None:
    if app is None:
        return "its app was deleted"
    if not webhook.is_active:
        return "webhook is inactive"
    if not app.is_active and not event.is_app_lifecycle:
        return "app is inactive"
    if not app.has_permission(event.permission):
        return f"app lacks permission {event.permission}"
    return None
