"""The object users hold: configuration in, ``trigger`` and a scheduler running inside."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from ._manage import AppManager, WebhookManager
from .apps import App, Webhook, app_can_receive
from .clock import Clock, SystemClock
from .delivery.records import Attempt, Delivery, DeliveryStatus, Payload
from .delivery.retry import RetryPolicy
from .delivery.scheduler import DeliveryStats, Scheduler
from .events import EventRegistry, EventType, default_registry
from .exceptions import ConfigurationError, InvalidFieldError
from .payloads import PayloadBuilder, PayloadRequest, Serializer, SerializerPayloads
from .signing import JWSSigner, RSAKey
from .stores import DeliveryQuery, Store, open_store
from .transports.base import Timeouts, Transport, TransportRouter
from .transports.http import HTTPTransport

__all__ = ["WebhookKit"]

log = logging.getLogger("webhookkit")


class WebhookKit:
    """Apps, webhooks, triggers and deliveries, with in-memory defaults.

    ``async with WebhookKit(...) as kit:`` starts the scheduler; leaving the block stops
    claiming new work and waits (up to ``drain_timeout``) for sends in flight.
    """

    def __init__(
        self,
        *,
        domain: str = "localhost",
        api_url: str | None = None,
        store: Store | str | None = None,
        registry: EventRegistry | None = None,
        transports: Iterable[Transport] = (),
        signing_key: RSAKey | bytes | str | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        payloads: PayloadBuilder | None = None,
        timeouts: Timeouts | None = None,
        concurrency: int = 100,
        drain_timeout: float = 30.0,
    ) -> None:
        if not domain or "/" in domain or any(c.isspace() for c in domain):
            raise InvalidFieldError(
                f"domain: {domain!r} must be a bare host name such as 'shop.example.com'",
                field="domain",
            )
        if concurrency < 1:
            raise InvalidFieldError("concurrency: must be at least 1", field="concurrency")
        self.domain = domain
        self.api_url = api_url or f"https://{domain}/graphql/"
        self.registry = registry if registry is not None else default_registry()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._owns_store = not (store is not None and not isinstance(store, str))
        self.store: Store = open_store(store)
        self.router = TransportRouter([HTTPTransport()])
        for transport in transports:
            self.router.mount(transport)
        self.serializers = SerializerPayloads()
        self.payloads: PayloadBuilder = payloads if payloads is not None else self.serializers
        self.retry = retry if retry is not None else RetryPolicy()
        self.signer = JWSSigner(_load_key(signing_key))
        self._drain_timeout = drain_timeout
        self.apps = AppManager(self.store, self.registry, self.clock)
        self.webhooks = WebhookManager(
            self.store, self.registry, self.router, self.clock, lambda: self.payloads
        )
        self.scheduler = Scheduler(
            store=self.store,
            router=self.router,
            registry=self.registry,
            clock=self.clock,
            retry=self.retry,
            jws_signer=self.signer,
            domain=self.domain,
            api_url=self.api_url,
            timeouts=timeouts if timeouts is not None else Timeouts(),
            concurrency=concurrency,
        )

    # -- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> WebhookKit:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start the scheduler; deliveries already in the store are picked up."""
        self.scheduler.start()

    async def aclose(self) -> None:
        """Stop claiming, wait for in-flight sends, close transports (and an owned store)."""
        await self.scheduler.stop(drain_timeout=self._drain_timeout)
        await self.router.aclose()
        if self._owns_store:
            await self.store.aclose()

    # -- configuration -----------------------------------------------------------------------
    def register_serializer(self, event: str | EventType | None, serializer: Serializer) -> None:
        """Build bodies for ``event`` (None: every event) from the trigger's ``subject``."""
        self.serializers.register(None if event is None else self.registry.get(event), serializer)

    def mount(self, transport: Transport, schemes: Iterable[str] | None = None) -> None:
        """Route URL ``schemes`` to a transport of the host's own."""
        self.router.mount(transport, schemes)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The JWKS document receivers verify JWS signatures with."""
        return self.signer.jwks()

    @property
    def stats(self) -> DeliveryStats:
        return self.scheduler.stats

    # -- triggering --------------------------------------------------------------------------
    async def _targets(self, event: EventType, app: App | str | None) -> list[tuple[Webhook, App]]:
        apps = {a.id: a for a in await self.store.list_apps()}
        only_app: str | None = None
        if event.is_app_lifecycle:
            if app is None:
                raise ConfigurationError(
                    f"app: {event.name} goes only to the affected app's webhooks; pass app=...",
                    field="app",
                )
            only_app = app.id if isinstance(app, App) else app
        targets = []
        for webhook in await self.store.list_webhooks(only_app):
            owner = apps.get(webhook.app_id)
            if (
                owner is not None
                and webhook.subscribes_to(self.registry, event)
                and app_can_receive(owner, webhook, event)
            ):
                targets.append((webhook, owner))
        return targets

    async def trigger(
        self,
        event: str | EventType,
        *,
        subject: Any = None,
        payload: Any = None,
        requestor: Any = None,
        app: App | str | None = None,
    ) -> list[str]:
        """Queue ``event`` for every webhook that receives it; returns the delivery ids.

        ``payload`` (JSON-able object or JSON bytes) is sent as is; without it the body comes
        from the subscription query or the serializer registered for the event. ``app`` names
        the affected app for app lifecycle events, which go to that app only.
        """
        event_type = self.registry.get(event)
        if not event_type.is_async:
            raise ConfigurationError(
                f"event: {event_type.name} is a sync event; sync webhooks are called during the "
                "request, not queued",
                field="event",
            )
        if app is None and isinstance(subject, App) and event_type.is_app_lifecycle:
            app = subject
        targets = await self._targets(event_type, app)
        if not targets:
            return []
        now = self.clock.now()
        groups = await self.payloads.build(
            PayloadRequest(
                event=event_type,
                subject=subject,
                payload=payload,
                targets=targets,
                issued_at=now,
                requestor=requestor,
            )
        )
        payloads: list[Payload] = []
        deliveries: list[Delivery] = []
        for group in groups:
            if group.body is None:
                log.info(
                    "no delivery of %s to %d webhook(s): %s",
                    event_type.value,
                    len(group.webhooks),
                    group.reason or "empty payload",
                )
                continue
            row = Payload(id=_new_id(), event=event_type.value, body=group.body, created_at=now)
            payloads.append(row)
            deliveries += [
                Delivery(
                    id=_new_id(),
                    payload_id=row.id,
                    webhook_id=webhook.id,
                    app_id=webhook.app_id,
                    event=event_type.value,
                    created_at=now,
                    next_try_at=now,
                )
                for webhook in group.webhooks
            ]
        if deliveries:
            await self.store.add_deliveries(payloads, deliveries)
            if self.scheduler.running:
                self.scheduler.notify()
        return [d.id for d in deliveries]

    # -- reading records -----------------------------------------------------------------------
    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        return await self.store.get_delivery(delivery_id)

    async def list_deliveries(self, query: DeliveryQuery | None = None) -> list[Delivery]:
        return await self.store.list_deliveries(query or DeliveryQuery())

    async def list_attempts(self, delivery_id: str) -> list[Attempt]:
        return await self.store.list_attempts(delivery_id)

    async def wait_idle(self) -> None:
        """Wait until nothing is due at the clock's current time and nothing is in flight."""
        await self.scheduler.wait_idle()

    async def wait_for(
        self, delivery_ids: Sequence[str], *, timeout: float | None = None
    ) -> list[Delivery]:
        """Wait until every delivery is final (success or failed); raises TimeoutError."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            found = [await self.store.get_delivery(i) for i in delivery_ids]
            missing = [i for i, d in zip(delivery_ids, found, strict=True) if d is None]
            if missing:
                raise InvalidFieldError(
                    f"delivery_ids: unknown ids {missing}", field="delivery_ids"
                )
            done = [d for d in found if d is not None]
            if all(d.status is not DeliveryStatus.PENDING for d in done):
                return done
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"{sum(not d.is_final for d in done)} deliveries still pending")
            # Poll at least once a second: another process may finish deliveries too.
            await self.scheduler.wait_progress(1.0 if remaining is None else min(remaining, 1.0))

    def __repr__(self) -> str:
        return (
            f"WebhookKit(domain={self.domain!r}, store={self.store!r}, kid={self.signer.key.kid!r})"
        )


def _new_id() -> str:
    return uuid.uuid4().hex


def _load_key(key: RSAKey | bytes | str | None) -> RSAKey:
    if key is None:
        return RSAKey.generate()
    if isinstance(key, RSAKey):
        return key
    return RSAKey.from_pem(key)
