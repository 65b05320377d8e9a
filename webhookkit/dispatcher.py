"""The object users hold: configuration in, ``trigger`` and a scheduler running inside."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ._ids import new_id
from ._manage import AppManager, WebhookManager
from .apps import App, Webhook, app_can_receive
from .clock import Clock, SystemClock
from .delivery.isolation import IsolationConfig
from .delivery.records import Attempt, Delivery, Payload
from .delivery.retry import RetryPolicy
from .delivery.scheduler import DeliveryStats, Scheduler
from .delivery.sync import BreakerConfig, CircuitBreaker, SyncCaller, SyncResponse
from .events import EventRegistry, EventType, default_registry
from .exceptions import ConfigurationError, InvalidFieldError, WebhookKitError
from .payloads import PayloadBuilder, PayloadRequest, Serializer, SerializerPayloads
from .signing import JWSSigner, KeySet, SigningKey
from .stores import DeliveryQuery, MemoryStore, PostgresStore, SQLiteStore, Store, open_store
from .stores.base import Retention
from .transports.base import Timeouts, Transport, TransportRouter
from .transports.http import HTTPTransport

if TYPE_CHECKING:
    from graphql import GraphQLSchema

    from .payloads.graphql import ContextFactory

__all__ = ["WebhookKit"]

log = logging.getLogger("webhookkit")

#: Saleor's rule: successes purged, failures kept 14 days; checked every hour.
DEFAULT_RETENTION = Retention()


class WebhookKit:
    """Apps, webhooks, triggers and deliveries, with in-memory defaults.

    ``async with WebhookKit(...) as kit:`` starts the scheduler; leaving the block stops
    claiming new work and waits (up to ``drain_timeout``) for sends in flight.

    Options, by concern (every one has a working default):

    - identity: ``domain`` (``Saleor-Domain``), ``api_url`` (``Saleor-Api-Url``);
    - state: ``store`` (object or URL: ``memory://``, ``sqlite:///path``,
      ``postgresql://...``), ``registry``, ``retention``, ``lease``, ``poll_interval``;
    - payloads: ``schema`` (+ ``context_factory``, ``schema_events``) for subscription
      queries, or a custom ``payloads`` builder; serializers via ``register_serializer``;
    - signing: ``signing_key`` (KeySet, key, PEM; generated when None);
    - sending: ``transports`` (mounted by scheme), ``timeouts``, ``allow_addresses`` (SSRF
      allow-list), ``ca_bundle``, ``client_cert``, ``sqs_endpoint_url``;
    - scheduling: ``retry``, ``concurrency``, ``isolation``, ``max_queued``,
      ``drain_timeout``, ``clock``;
    - sync webhooks: ``sync_cache_ttl``, ``sync_breaker``.
    """

    def __init__(
        self,
        *,
        domain: str = "localhost",
        api_url: str | None = None,
        store: Store | str | None = None,
        registry: EventRegistry | None = None,
        transports: Iterable[Transport] = (),
        signing_key: KeySet | SigningKey | bytes | str | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        payloads: PayloadBuilder | None = None,
        timeouts: Timeouts | None = None,
        concurrency: int = 100,
        drain_timeout: float = 30.0,
        allow_addresses: Iterable[str] = (),
        ca_bundle: str | os.PathLike[str] | None = None,
        client_cert: str | os.PathLike[str] | tuple[str, str] | None = None,
        sqs_endpoint_url: str | None = None,
        schema: GraphQLSchema | str | None = None,
        context_factory: ContextFactory | None = None,
        schema_events: Iterable[str | EventType] | None = None,
        sync_cache_ttl: float | None = None,
        sync_breaker: BreakerConfig | bool = False,
        isolation: IsolationConfig | None = None,
        max_queued: int | None = 100_000,
        lease: timedelta = timedelta(minutes=5),
        poll_interval: float | None = None,
        retention: Retention | None = DEFAULT_RETENTION,
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
        # Transport options: ``allow_addresses`` opens the SSRF guard for those networks
        # (``["127.0.0.1/32"]`` for loopback tests); ``ca_bundle``/``client_cert`` set TLS
        # trust and mTLS; ``sqs_endpoint_url`` points SQS at a local server.
        self.router = TransportRouter(
            _default_transports(
                allow_addresses=allow_addresses,
                ca_bundle=ca_bundle,
                client_cert=client_cert,
                sqs_endpoint_url=sqs_endpoint_url,
            )
        )
        for transport in transports:
            self.router.mount(transport)
        self.serializers = SerializerPayloads()
        # ``schema``: subscription queries run against it (``schema_events`` must all have a
        # type there); the GraphQL builder is imported only then, so ``import webhookkit``
        # does not pay for graphql-core.
        if schema is not None:
            if payloads is not None:
                raise ConfigurationError(
                    "schema: pass either schema=... or payloads=..., not both", field="schema"
                )
            from .payloads.graphql import GraphQLPayloads

            payloads = GraphQLPayloads(
                schema,
                registry=self.registry,
                fallback=self.serializers,
                context_factory=context_factory,
                events=schema_events,
            )
        elif context_factory is not None or schema_events is not None:
            raise ConfigurationError(
                "schema: context_factory and schema_events need schema=...", field="schema"
            )
        self.payloads: PayloadBuilder = payloads if payloads is not None else self.serializers
        self.retry = retry if retry is not None else RetryPolicy()
        self.signer = JWSSigner(KeySet.of(signing_key))
        self._drain_timeout = drain_timeout
        self.retention = retention
        self._retention_task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
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
            isolation=isolation,
            max_queued=max_queued,
            lease=lease,
            # Other processes may queue work in a shared store: look again now and then.
            poll_interval=poll_interval
            if poll_interval is not None or isinstance(self.store, MemoryStore)
            else 1.0,
        )
        # Sync webhooks (``request``): Saleor's optional response cache and per-app breaker.
        breaker_config = sync_breaker if isinstance(sync_breaker, BreakerConfig) else None
        self.sync = SyncCaller(
            router=self.router,
            clock=self.clock,
            message=self.scheduler.message,
            cache_ttl=sync_cache_ttl,
            breaker=CircuitBreaker(self.clock, breaker_config) if sync_breaker else None,
        )

    # -- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> WebhookKit:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Open the store and start the scheduler; deliveries already stored are picked up."""
        await self.store.open()
        await self._warm_queries()
        self.scheduler.start()
        if self.retention is not None and self._retention_task is None:
            self._closing.clear()
            self._retention_task = asyncio.create_task(
                self._retention_loop(self.retention), name="webhookkit-retention"
            )

    async def _warm_queries(self) -> None:
        """Validate stored subscription queries once now, so the first trigger after a
        restart finds them cached instead of validating on the hot path."""
        if isinstance(self.payloads, SerializerPayloads):
            return
        queries = {w.subscription_query for w in await self.store.list_webhooks()}
        for query in sorted(q for q in queries if q):
            try:
                self.payloads.prepare_query(query, self.registry)
            except ConfigurationError as exc:
                # Trigger-time skips such webhooks with the same reason; say it at start too.
                log.warning("stored subscription query no longer valid: %s", exc)

    async def _retention_loop(self, retention: Retention) -> None:
        seconds = retention.interval.total_seconds()
        while not self._closing.is_set():
            await self.clock.wait(self._closing, seconds)
            if self._closing.is_set():
                return
            try:
                count = await self.purge(
                    keep_success=retention.keep_success, keep_failed=retention.keep_failed
                )
                if count:
                    log.info("retention: purged %d finished deliveries", count)
            except WebhookKitError:
                log.exception("retention: purge failed; will try again")

    async def aclose(self) -> None:
        """Stop claiming, wait for in-flight sends, close transports (and an owned store)."""
        self._closing.set()
        if self._retention_task is not None:
            await self._retention_task
            self._retention_task = None
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
        """The JWKS document receivers verify JWS signatures with: every key published at the
        kit's clock (next, active, and retired ones before their date)."""
        return self.signer.jwks(self.clock.now())

    @property
    def keys(self) -> KeySet:
        """The signing keys; rotate with ``add()``, ``activate()`` and ``retire()``."""
        return self.signer.keys

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
        connection: Any = None,
        ordering_key: str | None = None,
    ) -> list[str]:
        """Queue ``event`` for every webhook that receives it; returns the delivery ids.

        ``ordering_key``: for webhooks created with ``ordered=True``, deliveries sharing a
        key go one at a time in trigger order; default: the subject's ``id``.

        ``connection``: the host's open database connection (asyncpg, psycopg 3, SQLAlchemy,
        Django, or sqlite3 for the SQLite store). The rows are written inside the host's
        transaction, so the webhooks go out if and only if it commits (a transactional
        outbox).

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
        if connection is not None and not isinstance(self.store, PostgresStore | SQLiteStore):
            raise ConfigurationError(
                "connection: writing through the host's transaction needs the PostgreSQL or "
                f"SQLite store, not {type(self.store).__name__}",
                field="connection",
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
        key = ordering_key if ordering_key is not None else _subject_key(subject)
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
                    ordering_key=key if webhook.ordered else None,
                )
                for webhook in group.webhooks
            ]
        if deliveries:
            await self.scheduler.reserve(len(deliveries))
            if connection is not None:
                assert isinstance(self.store, PostgresStore | SQLiteStore)
                await self.store.add_deliveries(payloads, deliveries, connection=connection)
            else:
                await self.store.add_deliveries(payloads, deliveries)
            if self.scheduler.running:
                self.scheduler.notify()
        return [d.id for d in deliveries]

    async def dry_run(
        self,
        query: str,
        *,
        subject: Any = None,
        event: str | EventType | None = None,
        app: App | str | None = None,
        requestor: Any = None,
    ) -> bytes | None:
        """The body a webhook with ``query`` would get for ``subject`` (None: no delivery),
        without storing or sending anything (Saleor's ``webhookDryRun``).

        ``event`` defaults to the query's single inferred event; ``app`` (the recipient whose
        permissions resolvers see) to an app holding every permission.
        """
        from .payloads.graphql import GraphQLPayloads

        if not isinstance(self.payloads, GraphQLPayloads):
            raise ConfigurationError(
                "schema: dry_run needs a GraphQL schema; pass schema=... to WebhookKit",
                field="schema",
            )
        owner = await self.apps.get(app) if isinstance(app, str) else app
        return await self.payloads.dry_run(
            query,
            subject=subject,
            event=event,
            app=owner,
            requestor=requestor,
            issued_at=self.clock.now(),
        )

    async def request(
        self,
        event: str | EventType,
        *,
        subject: Any = None,
        payload: Any = None,
        requestor: Any = None,
    ) -> list[SyncResponse]:
        """Call the sync webhooks subscribed to ``event`` now (HTTP only, 20 s budget) and
        return one :class:`SyncResponse` per webhook: ``data`` is the parsed JSON of a 2xx
        answer, None for any failure. Nothing is queued or retried."""
        event_type = self.registry.get(event)
        if event_type.is_async:
            raise ConfigurationError(
                f"event: {event_type.name} is an async event; use kit.trigger()", field="event"
            )
        targets = await self._targets(event_type, None)
        if not targets:
            return []
        groups = await self.payloads.build(
            PayloadRequest(
                event=event_type,
                subject=subject,
                payload=payload,
                targets=targets,
                issued_at=self.clock.now(),
                requestor=requestor,
            )
        )
        app_of = {webhook.id: app for webhook, app in targets}
        calls = [
            (group.body, [(w, app_of[w.id]) for w in group.webhooks])
            for group in groups
            if group.body is not None
        ]
        skipped = [
            SyncResponse(w.id, w.app_id, None, skipped=group.reason or "empty payload")
            for group in groups
            if group.body is None
            for w in group.webhooks
        ]
        return await self.sync.call_all(event_type.value, calls) + skipped

    async def retry_delivery(self, delivery_id: str) -> Delivery:
        """Send a finished delivery again now with a fresh retry budget (Saleor's
        ``eventDeliveryRetry``). Its attempts so far stay on record."""
        delivery = await self.store.requeue(delivery_id, self.clock.now())
        if delivery is None:
            found = await self.store.get_delivery(delivery_id)
            reason = "is still pending" if found is not None else "does not exist"
            raise InvalidFieldError(
                f"delivery_id: delivery {delivery_id!r} {reason}", field="delivery_id"
            )
        if self.scheduler.running:
            self.scheduler.notify()
        return delivery

    async def purge(
        self, *, keep_success: timedelta | None = None, keep_failed: timedelta = timedelta(days=14)
    ) -> int:
        """Delete finished deliveries past retention: successes (all, or older than
        ``keep_success``) and failures older than ``keep_failed`` (Saleor: 14 days)."""
        return await self.store.purge(self.clock.now(), keep_success, keep_failed)

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
        final: dict[str, Delivery] = {}
        waiting = list(dict.fromkeys(delivery_ids))
        while True:
            still: list[str] = []
            for delivery_id in waiting:  # only re-read what was still pending
                delivery = await self.store.get_delivery(delivery_id)
                if delivery is None:
                    raise InvalidFieldError(
                        f"delivery_ids: unknown id {delivery_id!r}", field="delivery_ids"
                    )
                if delivery.is_final:
                    final[delivery_id] = delivery
                else:
                    still.append(delivery_id)
            waiting = still
            if not waiting:
                return [final[i] for i in delivery_ids]
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"{len(waiting)} deliveries still pending")
            # Poll at least once a second: another process may finish deliveries too.
            await self.scheduler.wait_progress(1.0 if remaining is None else min(remaining, 1.0))

    def __repr__(self) -> str:
        return (
            f"WebhookKit(domain={self.domain!r}, store={self.store!r}, kid={self.signer.key.kid!r})"
        )


def _subject_key(subject: Any) -> str:
    """The ordering key a subject implies: its ``id`` (attribute or mapping key), else one
    key for everything (the webhook's deliveries all go in order)."""
    value = subject.get("id") if isinstance(subject, dict) else getattr(subject, "id", None)
    return "*" if value is None else str(value)


def _new_id() -> str:
    return new_id()


def _default_transports(
    *,
    allow_addresses: Iterable[str],
    ca_bundle: str | os.PathLike[str] | None,
    client_cert: str | os.PathLike[str] | tuple[str, str] | None,
    sqs_endpoint_url: str | None,
) -> list[Transport]:
    """HTTP(S) always; SQS and Pub/Sub when their extra (aioboto3, gcloud-aio-pubsub) is in."""
    transports: list[Transport] = [
        HTTPTransport(allow_addresses=allow_addresses, ca_bundle=ca_bundle, client_cert=client_cert)
    ]
    try:
        from .transports.sqs import SQSTransport
    except ImportError:
        if sqs_endpoint_url is not None:
            raise ConfigurationError(
                "sqs_endpoint_url: the SQS transport needs aioboto3: pip install 'webhookkit[sqs]'",
                field="sqs_endpoint_url",
            ) from None
        log.debug("webhookkit: aioboto3 not installed, no awssqs:// transport")
    else:
        transports.append(SQSTransport(endpoint_url=sqs_endpoint_url))
    try:
        from .transports.pubsub import PubSubTransport
    except ImportError:
        log.debug("webhookkit: gcloud-aio-pubsub not installed, no gcpubsub:// transport")
    else:
        transports.append(PubSubTransport())
    return transports
