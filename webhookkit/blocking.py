"""The kit for sync code: Django views and signals, management commands, Celery tasks.

:class:`BlockingKit` wraps a :class:`~webhookkit.WebhookKit` and runs it without the host
running an event loop::

    kit = BlockingKit(WebhookKit(store="postgresql://...", domain="shop.example.com"))
    with transaction.atomic():
        order.save()
        kit.trigger_sync("ORDER_CREATED", subject=order, connection=connection)

Payloads are built in the calling thread when the serializers and GraphQL resolvers are sync
(graphql-core returns at once when no resolver is async); with ``connection=`` the rows are
written through the host's own connection, in its transaction (the outbox); without one they
are written through the kit's store. The store (and anything async: async resolvers, an async
serializer) runs on a private event loop in a background thread started on first use: use a
BlockingKit first in the process that keeps it (after a server forks its workers). By
default nothing is sent from here: workers (``python -m webhookkit worker``, or a started kit
in an async process) send what was queued; ``send=True`` runs the kit's scheduler on the
background loop too, for a single process that also sends.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from .apps import App
from .dispatcher import FILTERED, WebhookKit, check_idempotency_key, ordering_key_for
from .events import EventType
from .exceptions import ConfigurationError, StoreError
from .filters import filter_targets
from .payloads import PayloadGroup, PayloadRequest, build_blocking
from .stores import PostgresStore, SQLiteStore
from .stores import _sql as q
from .stores.base import IdempotencyKey

__all__ = ["BlockingKit", "LoopThread"]

T = TypeVar("T")


class LoopThread:
    """An event loop in a daemon thread, started on first use; :meth:`run` hands it a
    coroutine from any other thread and waits for the result. Thread-safe."""

    def __init__(
        self,
        name: str = "webhookkit-loop",
        on_start: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self._name = name
        self._on_start = on_start
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = False
        self._closed = False

    @property
    def ready(self) -> bool:
        """True once the loop runs and ``on_start`` has succeeded."""
        return self._ready

    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, started (and ``on_start`` awaited on it) on first call; a failed
        ``on_start`` is tried again on the next call."""
        with self._lock:
            if self._closed:
                raise ConfigurationError(f"{self._name}: used after close()", field="kit")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            if not self._ready:
                if self._on_start is not None:
                    asyncio.run_coroutine_threadsafe(self._on_start(), self._loop).result()
                self._ready = True
            return self._loop

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and return its result (or raise its exception)."""
        try:
            loop = self.loop()
        except BaseException:
            coroutine.close()
            raise
        if _in_thread_of(loop):
            coroutine.close()
            raise ConfigurationError(
                f"{self._name}: called from its own event loop; await the async API there",
                field="kit",
            )
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, loop)
        return future.result()

    def finish(self, awaitable: Awaitable[Any]) -> Any:
        """Await ``awaitable`` on the loop (a :data:`~webhookkit.payloads.Finish`)."""

        async def wait() -> Any:
            return await awaitable

        return self.run(wait())

    def close(self, last: Coroutine[Any, Any, None] | None = None) -> None:
        """Run ``last`` (if the loop ever started), then stop the loop and join the thread."""
        with self._lock:
            if self._closed:
                if last is not None:
                    last.close()
                return
            self._closed = True
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            if last is not None:
                last.close()
            return
        try:
            if last is not None:
                asyncio.run_coroutine_threadsafe(last, loop).result()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()


class BlockingKit:
    """A :class:`~webhookkit.WebhookKit` for threads without an event loop; thread-safe.

    ``trigger_sync`` queues an event and returns the delivery ids; :meth:`run` runs any of
    the kit's coroutines (``kit.apps.create(...)``, ``kit.wait_for(...)``) from sync code.
    :meth:`close` (or leaving ``with``) closes the kit and stops the thread. ``send=True``
    starts the kit (its scheduler sends from the background loop) instead of only opening
    its store; closing then waits for sends in flight as ``aclose`` does.
    """

    def __init__(self, kit: WebhookKit, *, send: bool = False) -> None:
        self.kit = kit
        self._build_lock = threading.Lock()
        self._thread = LoopThread("webhookkit-blocking", on_start=kit.start if send else kit.open)

    def open(self) -> BlockingKit:
        """Start the background thread and open the store (or start the kit) now, else on
        first use.

        With an SQLite store, call it before the first trigger inside a transaction: opening
        checks the schema under SQLite's single write lock, which the host's open transaction
        would be holding.
        """
        self._thread.loop()
        return self

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run one of the kit's coroutines on the background loop and return its result."""
        return self._thread.run(coroutine)

    # -- triggering ----------------------------------------------------------------------------
    def trigger_sync(
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

        The arguments are those of :meth:`WebhookKit.trigger`, with the same checks, the same
        idempotency keys, back-pressure, payload size limits and instrumentation.
        ``connection`` is the host's sync connection (psycopg, SQLAlchemy
        ``Connection``/``Session``, Django's ``connection``, sqlite3): the rows (and the
        idempotency key) go into its open transaction, so the webhooks go out if and only if
        it commits.
        """
        kit = self.kit
        event_type = kit.registry.get(event)
        if not event_type.is_async:
            raise ConfigurationError(
                f"event: {event_type.name} is a sync event; sync webhooks are called during the "
                "request, not queued",
                field="event",
            )
        with kit.hooks.instrumentation.trigger(event_type.value):
            return self._trigger(
                event_type, subject, payload, requestor, app, connection, ordering_key,
                idempotency_key,
            )  # fmt: skip

    def _trigger(
        self,
        event_type: EventType,
        subject: Any,
        payload: Any,
        requestor: Any,
        app: App | str | None,
        connection: Any,
        ordering_key: str | None,
        idempotency_key: str | None,
    ) -> list[str]:
        kit = self.kit
        dialect = _dialect(kit) if connection is not None else None
        if dialect is q.SQLITE and not self._thread.ready:
            self._open_beside(connection)
        key = ordering_key_for(ordering_key, subject)
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
            held = self.run(kit.store.find_idempotency_key(idempotency_key, kit.clock.now()))
            if held is not None:
                return held
        if app is None and isinstance(subject, App) and event_type.is_app_lifecycle:
            app = subject
        targets = self.run(self._lookup(event_type, app))
        if not targets and idempotency_key is None:
            return []
        now = kit.clock.now()
        groups: list[PayloadGroup] = []
        if targets:  # without any, a key still remembers the empty answer
            request = PayloadRequest(
                event=event_type,
                subject=subject,
                payload=payload,
                targets=targets,
                issued_at=now,
                requestor=requestor,
            )
            with (
                kit.hooks.instrumentation.build(event_type.value, len(targets)),
                self._build_lock,  # the builders' caches and counters are not thread-safe
            ):
                groups = build_blocking(kit.payloads, request, self._thread.finish)
        # Payload filters decide here too, as in WebhookKit.trigger.
        groups, filtered = filter_targets(groups)
        loop = self._thread.loop()
        if filtered:
            loop.call_soon_threadsafe(kit.scheduler.stats.skip, FILTERED, len(filtered))
        payloads, deliveries, too_large, skipped = kit._rows(event_type, groups, key, now)
        for webhook, reason in skipped:
            # Counted and logged in the loop's thread, where the kit's own skips are.
            loop.call_soon_threadsafe(kit._skipped, event_type, webhook, reason)
        if not deliveries and idempotency_key is None:
            return []
        claim = None
        if idempotency_key is not None:
            claim = IdempotencyKey.for_trigger(idempotency_key, deliveries, now)
        if dialect is None:
            return self.run(kit._queue(event_type, payloads, deliveries, claim, too_large, now))
        from .stores._outbox import write_outbox

        self.run(kit.scheduler.reserve(len(deliveries)))
        try:
            held = write_outbox(connection, dialect, payloads, deliveries, idempotency_key=claim)
        except BaseException:
            loop.call_soon_threadsafe(kit.scheduler.unreserve, len(deliveries))
            raise
        if held is not None:  # the key was taken first: nothing new
            loop.call_soon_threadsafe(kit.scheduler.unreserve, len(deliveries))
            return held
        # Over-limit rows are not visible before the host commits: the send records them.
        loop.call_soon_threadsafe(kit._queued, event_type, len(deliveries))
        return [d.id for d in deliveries]

    async def _lookup(self, event: EventType, app: App | str | None) -> list[tuple[Any, App]]:
        # No config loop runs here (the kit is not started): read the store's configuration
        # version on every trigger, one small query, so webhooks other processes changed
        # count at once.
        await self.kit.store.poll_config()
        return await self.kit._targets(event, app)

    def _open_beside(self, connection: Any) -> None:
        """Open an SQLite store while the host's ``connection`` may hold the write lock."""
        try:
            self._thread.loop()
        except StoreError as exc:
            if "locked" not in str(exc):
                raise
            raise ConfigurationError(
                "connection: the SQLite store cannot open (it checks its schema under the "
                "write lock) while the host's transaction holds that lock; call "
                "BlockingKit.open() at start-up, before the first trigger",
                field="connection",
            ) from exc

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The kit's JWKS document (what ``/.well-known/jwks.json`` serves)."""
        return self.kit.jwks()

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        """Close the kit (its store if it opened it) and stop the background thread."""
        self._thread.close(self.kit.aclose())

    def __enter__(self) -> BlockingKit:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"BlockingKit({self.kit!r})"


def _in_thread_of(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _dialect(kit: WebhookKit) -> q.Dialect:
    if isinstance(kit.store, PostgresStore):
        return q.POSTGRES
    if isinstance(kit.store, SQLiteStore):
        return q.SQLITE
    raise ConfigurationError(
        "connection: writing through the host's transaction needs the PostgreSQL or SQLite "
        f"store, not {type(kit.store).__name__}",
        field="connection",
    )
