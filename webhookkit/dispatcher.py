"""The object users hold: configuration in, ``trigger`` and a scheduler running inside."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from ._catalog import Catalog
from ._ids import new_id
from ._manage import AppManager, WebhookManager
from ._sanitize import first_unstorable, sanitize_text
from ._secret import redact_url
from .apps import App, Webhook, validate_api_url, validate_domain
from .clock import Clock, SystemClock
from .config import DeliveryConfig, SyncConfig
from .delivery.records import (
    Attempt,
    AttemptResult,
    AttemptStatus,
    Delivery,
    DeliveryStatus,
    Payload,
)
from .delivery.retry import RetryPolicy
from .delivery.scheduler import DeliveryStats, Scheduler
from .delivery.sync import CircuitBreaker, SyncCaller, SyncResponse
from .events import EventRegistry, EventType, default_registry
from .exceptions import (
    ConfigurationError,
    InvalidFieldError,
    PayloadTooLargeError,
    WaitTimeoutError,
)
from .filters import filter_targets
from .keyring import KeySetHandle, local_key_set, open_key_set
from .observability import Hooks, call_hook
from .payloads import (
    PayloadBuilder,
    PayloadGroup,
    PayloadRequest,
    Serializer,
    SerializerPayloads,
)
from .signing import JWSSigner, KeySet, SigningKey
from .stores import DeliveryQuery, MemoryStore, PostgresStore, SQLiteStore, Store, open_store
from .stores.base import IdempotencyKey, Retention
from .transports._limits import check_body_size
from .transports.base import Transport, TransportRouter
from .transports.http import HTTPTransport

__all__ = ["WebhookKit"]

log = logging.getLogger("webhookkit")

#: Successes kept 24 hours, failures 14 days (Saleor's); checked every hour.
DEFAULT_RETENTION = Retention()
#: Seconds between looks at a durable store's configuration version (changes made by other
#: processes are seen within this; PostgreSQL's NOTIFY usually makes it immediate).
CONFIG_REFRESH = 1.0
#: webhookkit's own event, sent when it disables a webhook that kept failing.
WEBHOOK_DISABLED = "WEBHOOK_DISABLED"
#: The reason counted in ``kit.stats.skipped`` for webhooks whose payload filter said no.
FILTERED = "filtered out by its payload filter"


class WebhookKit:
    """Apps, webhooks, triggers and deliveries, with in-memory defaults.

    ``async with WebhookKit(...) as kit:`` starts the scheduler; leaving the block stops
    claiming new work and waits (up to ``delivery.drain_timeout``) for sends in flight.

    Options, by concern (every one has a working default):

    - identity: ``domain`` (``Saleor-Domain``), ``api_url`` (``Saleor-Api-Url``);
    - state: ``store`` (object or URL: ``memory://``, ``sqlite:///path``,
      ``postgresql://...``), ``registry`` (events and permissions), ``retention``;
    - payloads: a builder such as ``GraphQLPayloads(schema)`` for subscription queries
      (default: serializers, see :meth:`register_serializer`);
    - signing: ``signing_key`` (KeySet, key, PEM; generated when None);
    - sending: ``transports`` (each mounted for its schemes; default ``HTTPTransport()``;
      SQS and Pub/Sub mount themselves on first use of ``awssqs://``/``gcpubsub://``) and
      ``retry`` (:class:`RetryPolicy`);
    - scheduling: ``delivery`` (:class:`DeliveryConfig`: concurrency, batches, lease,
      back-pressure, timeouts, per-endpoint isolation); sync webhooks: ``sync``
      (:class:`SyncConfig`);
    - time: ``clock`` (``webhookkit.testing.FakeClock`` in tests);
    - observability: ``hooks`` (:class:`~webhookkit.observability.Hooks`: callbacks for
      deliveries that failed for good and breakers that opened or closed, and
      instrumentation such as ``webhookkit.otel.OpenTelemetry()``).
    """

    def __init__(
        self,
        *,
        domain: str = "localhost",
        api_url: str | None = None,
        store: Store | str | None = None,
        registry: EventRegistry | None = None,
        payloads: PayloadBuilder | None = None,
        transports: Iterable[Transport] | None = None,
        signing_key: KeySet | SigningKey | bytes | str | None = None,
        retry: RetryPolicy | None = None,
        delivery: DeliveryConfig | None = None,
        sync: SyncConfig | None = None,
        retention: Retention | None = DEFAULT_RETENTION,
        clock: Clock | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self.domain = _check_domain(domain)
        self.api_url: str = (
            _check_api_url(api_url) if api_url is not None else f"https://{self.domain}/graphql/"
        )
        self.delivery = _check_type(delivery, DeliveryConfig, "delivery") or DeliveryConfig()
        self.sync_config = _check_type(sync, SyncConfig, "sync") or SyncConfig()
        self.retention = _check_type(retention, Retention, "retention")
        self.hooks = _check_type(hooks, Hooks, "hooks") or Hooks()
        if registry is not None and not isinstance(registry, EventRegistry):
            raise InvalidFieldError("registry: must be an EventRegistry", field="registry")
        self.registry = registry if registry is not None else default_registry()
        if WEBHOOK_DISABLED.lower() not in self.registry:
            # webhookkit's own operational event, so an operations app can subscribe to it.
            self.registry.register(
                WEBHOOK_DISABLED,
                permission="MANAGE_APPS",
                description="webhookkit disabled a webhook that kept failing",
            )
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._owns_store = not (store is not None and not isinstance(store, str))
        self.store: Store = open_store(store)
        self.router = TransportRouter([HTTPTransport()] if transports is None else ())
        if transports is not None:
            if isinstance(transports, Transport):
                transports = [transports]
            for transport in transports:
                self.router.mount(transport)
            if "http" not in self.router.mounted and "https" not in self.router.mounted:
                self.router.mount(HTTPTransport())
        self.serializers = SerializerPayloads()
        if payloads is not None:
            bind = getattr(payloads, "bind", None)
            if callable(bind):
                bind(self.registry, self.serializers)
        self.payloads: PayloadBuilder = payloads if payloads is not None else self.serializers
        self.retry = _check_type(retry, RetryPolicy, "retry") or RetryPolicy()
        # Keys: the configured ones, else (on a durable store) the store's shared key set,
        # opened by start(); until then a key set of this process.
        self._signing_key = signing_key
        self._key_handle: KeySetHandle = local_key_set(signing_key, self.clock)
        self.signer = JWSSigner(self._key_handle.keys)
        self._retention_task: asyncio.Task[None] | None = None
        self._config_task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._logged_skips: set[tuple[str, str]] = set()
        self.catalog = Catalog(self.store, self.registry)
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
            config=self.delivery,
            catalog=self.catalog,
            durable=not isinstance(self.store, MemoryStore),
            hooks=self.hooks,
        )
        self.scheduler.on_disabled = self._webhook_disabled
        # Sync webhooks (``request``): Saleor's optional response cache and per-app breaker.
        breaker = self.sync_config.breaker
        self.sync = SyncCaller(
            router=self.router,
            clock=self.clock,
            message=self.scheduler.message,
            cache_ttl=self.sync_config.cache_ttl,
            cache_size=self.sync_config.cache_size,
            breaker=CircuitBreaker(self.clock, breaker) if breaker is not None else None,
        )

    # -- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> WebhookKit:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Open the store and start the scheduler; deliveries already stored are picked up."""
        await self.open()
        self._closing.clear()
        self.scheduler.start()
        if self.retention is not None and self._retention_task is None:
            self._retention_task = asyncio.create_task(
                self._retention_loop(self.retention), name="webhookkit-retention"
            )
        if not isinstance(self.store, MemoryStore) and self._config_task is None:
            self._config_task = asyncio.create_task(self._config_loop(), name="webhookkit-config")

    async def open(self) -> None:
        """Open the store, the signing keys and the configuration cache, without sending:
        for processes that only trigger (a web process whose workers send elsewhere).
        :meth:`start` does this first."""
        await self.store.open()
        handle = await open_key_set(
            self.store, self._signing_key, self.clock, current=self._key_handle
        )
        if handle is not self._key_handle:
            self._key_handle = handle
            self.signer.keys = handle.keys
        await self.store.poll_config()  # the version the catalog below starts from
        await self.catalog.refresh(force=True)
        await self._warm_queries()

    async def _warm_queries(self) -> None:
        """Validate stored subscription queries once now, so the first trigger after a
        restart finds them cached instead of validating on the hot path."""
        if isinstance(self.payloads, SerializerPayloads):
            return
        queries = {w.subscription_query for w in self.catalog.webhooks}
        for query in sorted(q for q in queries if q):
            try:
                self.payloads.prepare_query(query, self.registry)
            except ConfigurationError as exc:
                # Trigger-time skips such webhooks with the same reason; say it at start too.
                log.warning("stored subscription query no longer valid: %s", exc)

    async def _config_loop(self) -> None:
        """Notice configuration changes made by other processes (see :data:`CONFIG_REFRESH`)."""
        failing = False
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), CONFIG_REFRESH)
            if self._closing.is_set():
                return
            try:
                await self.store.poll_config()
            except Exception as exc:
                if not failing:
                    log.warning("webhookkit: cannot read the configuration version: %s", exc)
                failing = True
            else:
                failing = False

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
            except Exception:
                log.exception("retention: purge failed; will try again")

    async def aclose(self) -> None:
        """Stop claiming, wait for in-flight sends, close transports (and an owned store)."""
        self._closing.set()
        for task in (self._retention_task, self._config_task):
            if task is not None:
                await task
        self._retention_task = self._config_task = None
        await self.scheduler.stop(drain_timeout=self.delivery.drain_timeout)
        await self._key_handle.aclose()
        await self.router.aclose()
        if self._owns_store:
            await self.store.aclose()

    async def _webhook_disabled(self, webhook: Webhook, failing_since: datetime) -> None:
        """Tell subscribed apps (``WEBHOOK_DISABLED``) that a webhook was disabled."""
        payload = {
            "webhook": {
                "id": webhook.id,
                "name": webhook.name,
                "app_id": webhook.app_id,
                "target_url": redact_url(webhook.target_url),
            },
            "failing_since": failing_since.isoformat(),
            "disabled_at": webhook.disabled_at.isoformat() if webhook.disabled_at else None,
        }
        try:
            await self.trigger(WEBHOOK_DISABLED, payload=payload)
        except Exception as exc:
            log.warning("webhookkit: cannot queue WEBHOOK_DISABLED for %s: %s", webhook.id, exc)

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
    def keys(self) -> KeySetHandle:
        """The signing keys; rotate with ``await kit.keys.add()``, ``activate(kid)``,
        ``retire(kid)`` and ``prune()``. On a durable store without a configured key the steps
        are written to the store and every process follows them (docs/deploying.md)."""
        return self._key_handle

    @property
    def stats(self) -> DeliveryStats:
        return self.scheduler.stats

    # -- triggering --------------------------------------------------------------------------
    async def _targets(self, event: EventType, app: App | str | None) -> list[tuple[Webhook, App]]:
        only_app: str | None = None
        if event.is_app_lifecycle:
            if app is None:
                raise ConfigurationError(
                    f"app: {event.name} goes only to the affected app's webhooks; pass app=...",
                    field="app",
                )
            only_app = app.id if isinstance(app, App) else app
        await self.catalog.refresh()
        targets, skipped = self.catalog.targets(event, only_app)
        for skip in skipped:
            self._skipped(event, skip.webhook, skip.reason)
        return targets

    def _skipped(self, event: EventType, webhook: Webhook, reason: str) -> None:
        """Count a subscribed webhook that gets nothing; say why once per webhook and reason."""
        self.scheduler.stats.skip(reason)
        if (webhook.id, reason) not in self._logged_skips:
            self._logged_skips.add((webhook.id, reason))
            log.warning(
                "webhook %s gets no %s: %s (logged once)",
                webhook.id,
                event.name,
                reason,
                extra={"webhook_id": webhook.id, "app_id": webhook.app_id, "event": event.value},
            )

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
        idempotency_key: str | None = None,
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

        ``idempotency_key`` (Svix's ``Idempotency-Key``): a trigger repeating the key of one
        made within :data:`webhookkit.stores.base.IDEMPOTENCY_WINDOW` (24 hours) creates
        nothing and returns that trigger's delivery ids; of concurrent triggers with one key
        exactly one writes. With ``connection`` the key is taken in the host's transaction,
        so a rollback frees it again.

        A failing store raises :class:`StoreError` and nothing is written (the batch is one
        transaction).
        """
        event_type = self.registry.get(event)
        if not event_type.is_async:
            raise ConfigurationError(
                f"event: {event_type.name} is a sync event; sync webhooks are called during the "
                "request, not queued",
                field="event",
            )
        with self.hooks.instrumentation.trigger(event_type.value):
            return await self._trigger(
                event_type,
                subject=subject,
                payload=payload,
                requestor=requestor,
                app=app,
                connection=connection,
                ordering_key=ordering_key,
                idempotency_key=idempotency_key,
            )

    async def _trigger(
        self,
        event_type: EventType,
        *,
        subject: Any,
        payload: Any,
        requestor: Any,
        app: App | str | None,
        connection: Any,
        ordering_key: str | None,
        idempotency_key: str | None,
    ) -> list[str]:
        if connection is not None and not isinstance(self.store, PostgresStore | SQLiteStore):
            raise ConfigurationError(
                "connection: writing through the host's transaction needs the PostgreSQL or "
                f"SQLite store, not {type(self.store).__name__}",
                field="connection",
            )
        key = ordering_key_for(ordering_key, subject)
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
            # The fast path: a repeated key costs this one read and builds no payload.
            held = await self.store.find_idempotency_key(idempotency_key, self.clock.now())
            if held is not None:
                return held
        if app is None and isinstance(subject, App) and event_type.is_app_lifecycle:
            app = subject
        targets = await self._targets(event_type, app)
        if not targets and idempotency_key is None:
            return []
        now = self.clock.now()
        groups = []
        if targets:  # without any, a key still remembers the empty answer
            with self.hooks.instrumentation.build(event_type.value, len(targets)):
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
        groups, filtered = filter_targets(groups)
        if filtered:
            self.scheduler.stats.skip(FILTERED, len(filtered))
        payloads, deliveries, too_large, skipped = self._rows(event_type, groups, key, now)
        for webhook, reason in skipped:
            self._skipped(event_type, webhook, reason)
        if not deliveries and idempotency_key is None:
            return []
        claim = None
        if idempotency_key is not None:
            claim = IdempotencyKey.for_trigger(idempotency_key, deliveries, now)
        return await self._queue(
            event_type, payloads, deliveries, claim, too_large, now, connection=connection
        )

    def _rows(
        self, event_type: EventType, groups: Sequence[PayloadGroup], key: str, now: datetime
    ) -> tuple[
        list[Payload],
        list[Delivery],
        list[tuple[Delivery, PayloadTooLargeError]],
        list[tuple[Webhook, str]],
    ]:
        """One payload row per body and one delivery per webhook; the deliveries whose body
        is over their transport's limit, and the webhooks that get nothing (and why). Shared
        with :meth:`BlockingKit.trigger_sync <webhookkit.blocking.BlockingKit.trigger_sync>`,
        which counts the skipped ones in the loop's thread."""
        payloads: list[Payload] = []
        deliveries: list[Delivery] = []
        too_large: list[tuple[Delivery, PayloadTooLargeError]] = []
        skipped: list[tuple[Webhook, str]] = []
        for group in groups:
            if group.body is None:
                reason = group.reason or "empty payload"
                skipped += [(webhook, reason) for webhook in group.webhooks]
                continue
            row = Payload(id=new_id(), event=event_type.value, body=group.body, created_at=now)
            payloads.append(row)
            for webhook in group.webhooks:
                delivery = Delivery(
                    id=new_id(),
                    payload_id=row.id,
                    webhook_id=webhook.id,
                    app_id=webhook.app_id,
                    event=event_type.value,
                    created_at=now,
                    next_try_at=now,
                    ordering_key=key if webhook.ordered else None,
                )
                deliveries.append(delivery)
                problem = self._size_problem(webhook, group.body)
                if problem is not None:
                    too_large.append((delivery, problem))
        return payloads, deliveries, too_large, skipped

    async def _queue(
        self,
        event_type: EventType,
        payloads: list[Payload],
        deliveries: list[Delivery],
        claim: IdempotencyKey | None,
        too_large: list[tuple[Delivery, PayloadTooLargeError]],
        now: datetime,
        *,
        connection: Any = None,
    ) -> list[str]:
        """Write a trigger's rows (back-pressure first) and account for them; the ids, or
        the earlier trigger's when its idempotency key won."""
        await self.scheduler.reserve(len(deliveries))
        try:
            if connection is not None:
                assert isinstance(self.store, PostgresStore | SQLiteStore)
                held = await self.store.add_deliveries(
                    payloads, deliveries, idempotency_key=claim, connection=connection
                )
            else:
                held = await self.store.add_deliveries(payloads, deliveries, idempotency_key=claim)
        except BaseException:
            self.scheduler.unreserve(len(deliveries))
            raise
        if held is not None:  # a concurrent trigger with the key wrote first: nothing new
            self.scheduler.unreserve(len(deliveries))
            return held
        self.hooks.instrumentation.queued(event_type.value, len(deliveries))
        if too_large and connection is None:
            await self._fail_too_large(too_large, now)
        if self.scheduler.running:
            self.scheduler.notify()
        return [d.id for d in deliveries]

    def _queued(self, event_type: EventType, count: int) -> None:
        """Count ``count`` deliveries a host's connection wrote and wake the scheduler (they
        are visible once the host commits; it polls meanwhile)."""
        self.hooks.instrumentation.queued(event_type.value, count)
        if self.scheduler.running:
            self.scheduler.notify()

    def _size_problem(self, webhook: Webhook, body: bytes) -> PayloadTooLargeError | None:
        """The refusal of a body over the size limit of the webhook's transport, if any."""
        try:
            check_body_size(self.router.for_url(webhook.target_url), webhook.target_url, body)
        except PayloadTooLargeError as exc:
            return exc
        except ConfigurationError:
            return None  # no transport for the scheme: the send records that
        return None

    async def _fail_too_large(
        self, refused: list[tuple[Delivery, PayloadTooLargeError]], now: datetime
    ) -> None:
        """Record over-limit deliveries as failed now: retrying can never make them fit.
        (Through a host's outbox connection the rows are not visible yet; the scheduler's
        send then meets the same refusal from the transport and records it.)"""
        results = [
            AttemptResult(
                delivery.id,
                Attempt(
                    id=new_id(),
                    delivery_id=delivery.id,
                    number=1,
                    created_at=now,
                    status=AttemptStatus.FAILED,
                    duration=0.0,
                    error_kind=type(error).__name__,
                    error=str(error),
                ),
                DeliveryStatus.FAILED,
                None,
                now,
            )
            for delivery, error in refused
        ]
        await self.store.finish_many(results)
        self.scheduler.stats.failures += len(results)
        by_id = {delivery.id: delivery for delivery, _ in refused}
        for result in results:
            self.scheduler.unreserve(1)
            if self.hooks.on_failed is not None:
                failed = dataclasses.replace(
                    by_id[result.delivery_id],
                    status=DeliveryStatus.FAILED,
                    attempts=1,
                    last_error=result.attempt.error,
                    updated_at=now,
                )
                call_hook(self.hooks.on_failed, failed, result.attempt)
            log.warning(
                "delivery %s failed: %s",
                result.delivery_id,
                result.attempt.error,
                extra={"delivery_id": result.delivery_id, "error_kind": "PayloadTooLargeError"},
            )

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
                "payloads: dry_run needs a GraphQL schema; pass payloads=GraphQLPayloads(schema)",
                field="payloads",
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
        if not isinstance(delivery_id, str) or not delivery_id:
            raise InvalidFieldError("delivery_id: must be a non-empty string", field="delivery_id")
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
        """Wait until nothing is due at the clock's current time, nothing is in flight and
        every attempt is recorded."""
        await self.scheduler.wait_idle()

    async def wait_for(
        self, delivery_ids: Sequence[str], *, timeout: float | None = None
    ) -> list[Delivery]:
        """Wait until every delivery is final (success or failed).

        Raises :class:`~webhookkit.exceptions.WaitTimeoutError` (a ``TimeoutError``) after
        ``timeout`` seconds. Deliveries may be sent by this kit (``async with kit``) or by
        workers in other processes; without either nothing ever finishes, which the error
        says.
        """
        if isinstance(delivery_ids, str):
            raise InvalidFieldError(
                "delivery_ids: expected a list of delivery ids, got a single string",
                field="delivery_ids",
            )
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
                hint = (
                    ""
                    if self.scheduler.running
                    else "; this kit is not sending (use 'async with kit:' or kit.start(), "
                    "or run workers)"
                )
                raise WaitTimeoutError(
                    f"wait_for: {len(waiting)} of {len(final) + len(waiting)} deliveries still "
                    f"pending after {timeout} s{hint}"
                )
            # Poll at least once a second: another process may finish deliveries too.
            await self.scheduler.wait_progress(1.0 if remaining is None else min(remaining, 1.0))

    def __repr__(self) -> str:
        return (
            f"WebhookKit(domain={self.domain!r}, store={self.store!r}, kid={self.signer.key.kid!r})"
        )


#: Characters of a subject id kept as its ordering key.
_KEY_LIMIT = 1024


def ordering_key_for(ordering_key: str | None, subject: Any) -> str:
    """The ordering key of a trigger: ``ordering_key``, else the one its subject implies (its
    ``id``, attribute or mapping key), else one key for everything (the webhook's deliveries
    all go in order). A given key is refused unless every store can keep it as it is: NUL and
    lone surrogates would be cut, refused or mangled differently by each store, and two keys
    differing only there would then share one order. A key taken from the subject has those
    characters replaced instead (sharing an order only serialises more)."""
    if ordering_key is None:
        value = subject.get("id") if isinstance(subject, dict) else getattr(subject, "id", None)
        return "*" if value is None else sanitize_text(str(value), _KEY_LIMIT)
    if not isinstance(ordering_key, str):
        raise InvalidFieldError("ordering_key: must be a string", field="ordering_key")
    key = ordering_key
    at = first_unstorable(key)
    if at is not None:
        raise InvalidFieldError(
            f"ordering_key: character {at} ({key[at]!r}) is a control character or a lone "
            "surrogate, which the stores cannot keep",
            field="ordering_key",
        )
    return key


def check_idempotency_key(key: Any) -> None:
    """Refuse an idempotency key no store can keep as it is (``InvalidFieldError``)."""
    if not isinstance(key, str) or not 0 < len(key) <= 255:
        raise InvalidFieldError(
            "idempotency_key: must be a string of 1 to 255 characters", field="idempotency_key"
        )
    if any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in key):
        raise InvalidFieldError(
            "idempotency_key: must be storable text (no NUL, no lone surrogate)",
            field="idempotency_key",
        )


_T = TypeVar("_T")


def _check_type(value: _T | None, kind: type[_T], name: str) -> _T | None:
    if value is not None and not isinstance(value, kind):
        raise InvalidFieldError(
            f"{name}: must be a {kind.__name__}, got {type(value).__name__}", field=name
        )
    return value


def _check_domain(domain: Any) -> str:
    """A bare host name for ``Saleor-Domain``, in ASCII (it goes into a header as is)."""
    checked = validate_domain(domain)
    if not checked.isascii():
        raise InvalidFieldError(
            f"domain: {checked!r} must be ASCII; give an internationalised name in its IDNA "
            "('xn--') form",
            field="domain",
        )
    return checked


def _check_api_url(url: Any) -> str:
    """An absolute http(s) URL for ``Saleor-Api-Url``, in ASCII (it goes into a header)."""
    checked = validate_api_url(url)
    if not checked.isascii():
        raise InvalidFieldError(
            "api_url: must be ASCII (percent-encode the path, IDNA for the host)", field="api_url"
        )
    return checked
