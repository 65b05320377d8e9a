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
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from ._ids import new_id
from .apps import App
from .delivery.records import Delivery, Payload
from .dispatcher import FILTERED, WebhookKit, ordering_key_for
from .events import EventType
from .exceptions import ConfigurationError, StoreError
from .filters import filter_targets
from .payloads import PayloadGroup, PayloadRequest, build_blocking
from .stores import PostgresStore, SQLiteStore
from .stores import _sql as q

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
    ) -> list[str]:
        """Queue ``event`` for every webhook that receives it; returns the delivery ids.

        The arguments are those of :meth:`WebhookKit.trigger`. ``connection`` is the host's
        sync connection (psycopg, SQLAlchemy ``Connection``/``Session``, Django's
        ``connection``, sqlite3): the rows go into its open transaction, so the webhooks go
        out if and only if it commits.
        """
        kit = self.kit
        event_type = kit.registry.get(event)
        if not event_type.is_async:
            raise ConfigurationError(
                f"event: {event_type.name} is a sync event; sync webhooks are called during the "
                "request, not queued",
                field="event",
            )
        dialect = _dialect(kit) if connection is not None else None
        if dialect is q.SQLITE and not self._thread.ready:
            self._open_beside(connection)
        key = ordering_key_for(ordering_key, subject)
        if app is None and isinstance(subject, App) and event_type.is_app_lifecycle:
            app = subject
        targets = self.run(self._lookup(event_type, app))
        if not targets:
            return []
        now = kit.clock.now()
        request = PayloadRequest(
            event=event_type,
            subject=subject,
            payload=payload,
            targets=targets,
            issued_at=now,
            requestor=requestor,
        )
        with self._build_lock:  # the builders' caches and counters are not thread-safe
            groups = build_blocking(kit.payloads, request, self._thread.finish)
        # Payload filters decide here too, as in WebhookKit.trigger.
        groups, filtered = filter_targets(groups)
        if filtered:
            loop_ = self._thread.loop()
            loop_.call_soon_threadsafe(kit.scheduler.stats.skip, FILTERED, len(filtered))
        loop = self._thread.loop()
        for group in groups:
            for webhook in group.webhooks if group.body is None else ():
                # Counted and logged in the loop's thread, where the kit's own skips are.
                reason = group.reason or "empty payload"
                loop.call_soon_threadsafe(kit._skipped, event_type, webhook, reason)
        payloads, deliveries = _rows(event_type, groups, key, request)
        if not deliveries:
            return []
        if dialect is not None:
            from .stores._outbox import write_outbox

            self._thread.loop()  # the store is open, so its schema exists
            write_outbox(connection, dialect, payloads, deliveries)
        else:
            self.run(kit.store.add_deliveries(payloads, deliveries))
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


def _rows(
    event: EventType, groups: Sequence[PayloadGroup], key: str, request: PayloadRequest
) -> tuple[list[Payload], list[Delivery]]:
    """One payload row per body and one delivery per webhook, as ``WebhookKit.trigger``."""
    now = request.issued_at
    payloads: list[Payload] = []
    deliveries: list[Delivery] = []
    for group in groups:
        if group.body is None:  # counted and logged by the kit
            continue
        row = Payload(id=new_id(), event=event.value, body=group.body, created_at=now)
        payloads.append(row)
        deliveries += [
            Delivery(
                id=new_id(),
                payload_id=row.id,
                webhook_id=webhook.id,
                app_id=webhook.app_id,
                event=event.value,
                created_at=now,
                next_try_at=now,
                ordering_key=key if webhook.ordered else None,
            )
            for webhook in group.webhooks
        ]
    return payloads, deliveries
