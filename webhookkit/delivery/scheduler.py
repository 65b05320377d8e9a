"""The in-process scheduler: claim due deliveries in batches, sign, send, record, reschedule.

One loop claims: a single store call hands it up to ``batch_size`` due deliveries together
with their payloads, which wait in a local queue (per endpoint, see :mod:`.isolation`) until a
send slot is free. Webhooks and apps come from the in-process :class:`~webhookkit._catalog.
Catalog`, so a send reads nothing from the store. Finished attempts are written in batches by
:class:`Finisher`. Store errors never stop the loop: it logs the outage, backs off and tries
again, and nothing is lost (a delivery not recorded stays leased, then comes back).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .._catalog import Catalog
from .._ids import new_id
from .._sanitize import sanitize_headers, sanitize_text
from .._secret import redact_url
from ..apps import App, Webhook
from ..clock import Clock
from ..config import DeliveryConfig, RateLimit
from ..events import EventRegistry
from ..exceptions import DeliveryError, StoreError, WebhookKitError
from ..observability import AttemptObservation, Hooks, call_hook
from ..signing import DeliverySignature, JWSSigner, sign_delivery
from ..stores.base import Store, WorkNotifier
from ..transports.base import OutboundMessage, TransportResult, TransportRouter
from .isolation import EndpointGate
from .records import (
    EXCERPT_LIMIT,
    Attempt,
    AttemptResult,
    AttemptStatus,
    Delivery,
    DeliveryStatus,
    Payload,
)
from .retry import Outcome, RetryPolicy, parse_retry_after

__all__ = ["DeliveryStats", "Finisher", "Scheduler"]

log = logging.getLogger("webhookkit.delivery")

#: What a finished send tells the endpoint gate: healthy (None: nothing sent), next try.
_Health = tuple[bool | None, datetime | None]
#: A result waiting to be written and what to call once it is (or once shutdown gave up).
_Entry = tuple[AttemptResult, Callable[[], object]]

#: Backoff after a store error in the claim loop or the finisher: doubling, capped.
_BACKOFF_START = 0.05
_BACKOFF_MAX = 5.0


@dataclass
class DeliveryStats:
    """Counters the scheduler keeps; tests and dashboards read them."""

    attempts: int = 0
    successes: int = 0
    failures: int = 0
    retries_scheduled: int = 0
    jws_signatures: int = 0
    hmac_signatures: int = 0
    postponed: int = 0
    #: Claimed deliveries handed straight back because their endpoint's local queue was full.
    released: int = 0
    #: Store calls that failed (claim, release, record); each was retried.
    store_errors: int = 0
    #: Claimed deliveries handed back because their webhook was over its rate limit.
    throttled: int = 0
    #: Subscribed webhooks that got no delivery, by reason ("app lacks permission ...").
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + count


class _Outage:
    """Logs a store outage once when it starts and once when it ends; paces the retries."""

    def __init__(self, what: str, stats: DeliveryStats) -> None:
        self._what = what
        self._stats = stats
        self.delay = 0.0
        self.since: float | None = None

    def failed(self, exc: BaseException) -> float:
        self._stats.store_errors += 1
        if self.since is None:
            self.since = time.monotonic()
            self.delay = _BACKOFF_START
            log.warning(
                "webhookkit: store unavailable (%s): %s: %s; retrying with backoff",
                self._what,
                type(exc).__name__,
                exc,
                exc_info=not isinstance(exc, StoreError),
            )
        else:
            self.delay = min(self.delay * 2, _BACKOFF_MAX)
        return self.delay

    def recovered(self) -> None:
        if self.since is not None:
            log.warning(
                "webhookkit: store reachable again (%s) after %.1f s",
                self._what,
                time.monotonic() - self.since,
            )
            self.since = None
            self.delay = 0.0


class Finisher:
    """Writes finished attempts to the store in batches (group commit).

    :meth:`add` returns once the result is written; :meth:`submit` calls back then instead
    (the scheduler's common path: no task waits per delivery). Either way a send slot stays
    taken until its attempt is on record: a crash loses at most ``concurrency``
    sent-but-unrecorded deliveries, which the lease brings back (at-least-once). A failed
    write keeps the results and tries again with backoff. When a write starts:

    - ``flush_interval > 0``: after waiting up to that long for more results, or as soon as
      ``batch`` are waiting;
    - ``flush_interval == 0`` and ``grouped``: at once if no write is running, else as soon
      as it ends, with every result that arrived meanwhile (group commit without a timer:
      the batch grows with the load, and no result waits for a clock);
    - ``flush_interval == 0``, not ``grouped``: each result on its own, at once (the memory
      store: nothing to amortise).

    One write takes at most ``batch`` results.
    """

    def __init__(
        self,
        store: Store,
        stats: DeliveryStats,
        *,
        flush_interval: float,
        batch: int = 500,
        grouped: bool = False,
    ) -> None:
        self._store = store
        self._stats = stats
        self._interval = flush_interval
        self._grouped = grouped or flush_interval > 0
        self._batch = max(batch, 1)
        self._pending: list[_Entry] = []
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._give_up = False
        self._outage = _Outage("recording attempts", stats)
        self._writing = 0
        self.written = 0

    @property
    def grouped(self) -> bool:
        """Whether results wait for a shared write (then :meth:`submit` may be used)."""
        return self._grouped

    @property
    def waiting(self) -> int:
        """Results not yet written (queued or being written now)."""
        return len(self._pending) + self._writing

    async def add(self, result: AttemptResult) -> None:
        """Record ``result``; returns when it is written (or when shutdown gave up on it)."""
        if not self._grouped and not self._pending:
            self._writing += 1
            try:
                await self._store.finish_many([result])
            except Exception as exc:
                self._outage.failed(exc)
            else:
                self._outage.recovered()
                self.written += 1
                return
            finally:
                self._writing -= 1
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue((result, functools.partial(_set_done, done)))
        # No shield: a cancelled caller cancels only its own future; the result stays queued
        # and is written all the same (_set_done skips futures already done).
        await done

    def submit(self, result: AttemptResult, then: Callable[[], object]) -> None:
        """Queue ``result`` for the next grouped write; ``then()`` is called once it is
        written (or once shutdown gave up on it), from the writer."""
        self._queue((result, then))

    def _queue(self, entry: _Entry) -> None:
        self._pending.append(entry)
        self._ensure_task()
        if len(self._pending) >= self._batch:
            self._kick.set()

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="webhookkit-finisher")

    async def _run(self) -> None:
        while self._pending:
            if not self._closing and self._interval > 0 and len(self._pending) < self._batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), self._interval)
            self._kick.clear()
            if not await self._flush_once():
                if self._give_up:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), self._outage.delay)

    async def _flush_once(self) -> bool:
        batch, self._pending = self._pending[: self._batch], self._pending[self._batch :]
        if not batch:
            return True
        self._writing += len(batch)
        try:
            return await self._write(batch)
        finally:
            self._writing -= len(batch)

    async def _write(self, batch: list[_Entry]) -> bool:
        try:
            await self._store.finish_many([result for result, _ in batch])
        except Exception as exc:
            self._outage.failed(exc)
            if not isinstance(exc, StoreError) or _is_data_error(exc):
                # Something in the rows themselves: write them one by one so one poison row
                # cannot hold back the others, and record the poison one plainly.
                await self._one_by_one(batch)
                return True
            self._pending[:0] = batch
            return False
        self._outage.recovered()
        self.written += len(batch)
        # Completed after this task has sent the next write (its loop goes on at once): the
        # store works on that while the callers' bookkeeping runs.
        asyncio.get_running_loop().call_soon(_resolve, batch)
        return True

    async def _one_by_one(self, batch: list[_Entry]) -> None:
        for entry in batch:
            result = entry[0]
            try:
                await self._store.finish_many([result])
            except Exception:
                plain = dataclasses.replace(
                    result,
                    attempt=dataclasses.replace(
                        result.attempt,
                        response_excerpt="",
                        request_headers=(),
                        response_headers=(),
                        error_kind="unrecordable",
                        error="the attempt's details could not be stored",
                    ),
                )
                try:
                    await self._store.finish_many([plain])
                except Exception:
                    self._pending.append(entry)  # the store itself is failing: try later
                    continue
            self.written += 1
            _resolve([entry])

    async def aclose(self, timeout: float = 10.0) -> None:
        """Flush what is waiting, trying for up to ``timeout`` seconds while the store fails;
        what is still unwritten then only lets its lease run out (the delivery is sent again)."""
        self._closing = True
        self._kick.set()
        if self._pending:
            self._ensure_task()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._give_up = True
                self._kick.set()
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                log.warning(
                    "webhookkit: %d attempt(s) could not be recorded before shutdown; their "
                    "deliveries will be sent again when their lease ends",
                    len(self._pending),
                )
                _resolve(self._pending)
                self._pending = []
        self._closing = False
        self._give_up = False


def _resolve(entries: list[_Entry]) -> None:
    for _, then in entries:
        try:
            then()
        except Exception:
            # One caller's bookkeeping must not keep the others' from running.
            log.exception("webhookkit: completing a recorded attempt failed")


def _set_done(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


def _is_data_error(exc: BaseException) -> bool:
    """Whether a store error comes from the rows (encoding, constraint), not the connection."""
    cause = exc.__cause__
    name = type(cause).__name__ if cause is not None else ""
    return any(
        word in name
        for word in ("DataError", "CharacterNotInRepertoire", "Encoding", "Integrity", "Unicode")
    )


@dataclass(slots=True)
class _Written:
    """A sent (or unsendable) delivery's attempt and what completing it needs once written."""

    delivery: Delivery
    webhook: Webhook | None
    recorded: AttemptResult
    observed: AttemptObservation | None
    reason: str | None
    result: TransportResult | None
    retryable: bool

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok


class Scheduler:
    """Runs inside the dispatcher: one loop that claims in batches, one task per send."""

    def __init__(
        self,
        *,
        store: Store,
        router: TransportRouter,
        registry: EventRegistry,
        clock: Clock,
        retry: RetryPolicy,
        jws_signer: JWSSigner,
        domain: str,
        api_url: str,
        config: DeliveryConfig,
        catalog: Catalog,
        durable: bool,
        hooks: Hooks | None = None,
    ) -> None:
        self._store = store
        self._router = router
        self._registry = registry
        self._clock = clock
        self._retry = retry
        self._jws = jws_signer
        self._domain = domain
        self._api_url = api_url
        self.config = config
        self._catalog = catalog
        self.hooks = hooks if hooks is not None else Hooks()
        self._instrument = self.hooks.instrumentation
        self._concurrency = config.concurrency
        self._claim_size = config.claim_size
        self._lease = config.lease
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._idle = asyncio.Event()
        self._progress = asyncio.Event()  # replaced by a fresh one at each notification
        self._backlog = False  # the last claim was full: the store may hold more due work
        self._claiming = False  # a claim is out: the loop looks at the room when it is back
        self._refill_deferred = False  # a refill wake came while a claim was out
        self._progress_waiters = 0  # progress is announced only while someone waits
        self._inflight: dict[asyncio.Task[_Health | None], Delivery] = {}
        # Sent, attempt queued for the finisher's next write: their slots stay taken.
        self._recording: dict[str, Delivery] = {}
        self._active_ids: set[str] = set()  # held locally or in flight
        self._payloads: dict[str, Payload] = {}  # of deliveries held or in flight
        self._payload_users: dict[str, int] = {}
        # Deliveries to hand back to the store (ids, claimable again at): written before the
        # next claim, kept through a failed write. Dropped instead, they would stay leased,
        # unsent, for a whole lease after the store came back.
        self._hand_backs: list[tuple[list[str], datetime | None]] = []
        self.gate = EndpointGate(config.isolation)
        self._poll = config.poll_interval
        if self._poll is None and durable:
            self._poll = 1.0  # other processes may queue work in a shared store
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._jws_cache: OrderedDict[str, str] = OrderedDict()
        self.stats = DeliveryStats()
        self.finisher = Finisher(
            store,
            self.stats,
            flush_interval=config.flush_interval if durable else 0.0,
            # Every waiting result holds a send slot. At most half of them per write (and, with
            # a timer, a write as soon as half wait): while one half is written, the slots of
            # the half written before send again. A write of every slot at once left the store
            # idle while they sent and the senders idle while it wrote (PostgreSQL end to end
            # 1.15x, queue drain 1.14x; docs/benchmarks.md).
            batch=max(config.concurrency // 2, 1),
            grouped=durable,
        )
        self._outage = _Outage("claiming deliveries", self.stats)
        # Back-pressure: deliveries known pending in the store (an estimate kept locally and
        # corrected from the store whenever it would make trigger() wait).
        self._max_queued = config.max_queued
        self._pending_estimate = 0
        self._instrument.observe_gauges(self._gauges)
        # Failure streaks per webhook (see _track_streak); the kit sets on_disabled to send
        # its WEBHOOK_DISABLED event.
        self._failing: dict[str, datetime] = {}
        self._warned: dict[str, float] = {}
        self.on_disabled: Callable[[Webhook, datetime], Awaitable[None]] | None = None

    def _gauges(self) -> dict[str, float]:
        now = self._clock.now()
        return {
            "pending_local": float(self._pending_estimate),
            "in_flight": float(self._busy()),
            "held": float(self.gate.held_count),
            "breakers_open": float(self.gate.open_count(now)),
        }

    @property
    def queued(self) -> int:
        """Deliveries believed pending in the store (the back-pressure estimate)."""
        return self._pending_estimate

    @property
    def running(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    @property
    def in_flight(self) -> int:
        """Deliveries being sent or waiting for their attempt to be written."""
        return self._busy()

    def _busy(self) -> int:
        """Send slots taken: sending, or sent with the attempt not yet on record."""
        return len(self._inflight) + len(self._recording)

    @property
    def held(self) -> int:
        return self.gate.held_count

    def start(self) -> None:
        if self.running:
            return
        if isinstance(self._store, WorkNotifier):
            self._store.add_work_listener(self.notify)
        self._stopping = False
        self._stop.clear()
        self._idle.clear()
        self._loop_task = asyncio.create_task(self._run(), name="webhookkit-scheduler")

    def notify(self) -> None:
        """New work may be due: wake the loop and forget any earlier idle state.

        Not while the last claim was full and sends are in flight: the store already holds
        more than the local queue has room for, and the next finished send wakes the loop
        when it needs a refill (one small claim per trigger otherwise).
        """
        self._idle.clear()
        if self._backlog and self._busy():
            self._wake_for_refill()
        else:
            self._wake.set()

    async def wait_idle(self) -> None:
        """Return once nothing is due at the clock's current time, nothing is in flight and
        every finished attempt is written."""
        if not self.running:
            raise WebhookKitError("scheduler: not running; use 'async with kit:' first")
        self.notify()
        loop_task = self._loop_task
        assert loop_task is not None
        idle = asyncio.ensure_future(self._idle.wait())
        try:
            await asyncio.wait({idle, loop_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            idle.cancel()
        if loop_task.done():
            loop_task.result()  # re-raise a crash of the loop instead of hanging

    async def wait_progress(self, timeout: float | None) -> None:
        """Return after the next recorded attempt, or after ``timeout`` seconds."""
        self._progress_waiters += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), timeout)
        finally:
            self._progress_waiters -= 1

    def _notify_progress(self) -> None:
        # Waiters hold the event they wait on; the next notification needs a new one.
        if self._progress_waiters:
            progress, self._progress = self._progress, asyncio.Event()
            progress.set()

    async def stop(self, *, drain_timeout: float | None = 30.0) -> None:
        """Stop claiming; wait up to ``drain_timeout`` for in-flight sends, then cancel them;
        write every finished attempt; hand unsent deliveries back to the store."""
        self._stopping = True
        self._stop.set()
        self._wake.set()
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        if isinstance(self._store, WorkNotifier):
            self._store.remove_work_listener(self.notify)
        unsent = [d.id for d in self.gate.take_all_held()]
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=drain_timeout)
            unsent += [self._inflight[t].id for t in pending if t in self._inflight]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        await self.finisher.aclose()
        if self._inflight:
            # Failure streaks of attempts written just now (see _on_written).
            await asyncio.wait(set(self._inflight), timeout=drain_timeout)
        # Leases are handed back so another worker (or the next start) sends them now.
        self._hand_back(unsent)
        if self._hand_backs:
            count = sum(len(ids) for ids, _ in self._hand_backs)
            try:
                await self._flush_hand_backs()
            except Exception as exc:
                log.warning(
                    "webhookkit: could not hand back %d deliveries (%s); they return when "
                    "their lease ends",
                    count,
                    exc,
                )
            self._hand_backs.clear()
        self._active_ids.clear()
        self._payloads.clear()
        self._payload_users.clear()

    # -- back-pressure ---------------------------------------------------------------------
    async def reserve(self, count: int) -> None:
        """Back-pressure for ``trigger``: wait while the store holds ``max_queued`` pending
        deliveries and this scheduler is running to drain them. The count comes from the
        store itself whenever it matters, so deliveries finished by other workers, rolled
        back outbox rows and failed writes never keep a caller waiting."""
        limit = self._max_queued
        if limit is None:
            return
        if self._pending_estimate + count <= limit:
            self._pending_estimate += count
            return
        while True:
            pending = await self._store.count_pending()
            self._pending_estimate = pending
            if pending + count <= limit or pending == 0 or not self.running:
                self._pending_estimate += count
                return
            await self.wait_progress(0.5)

    def unreserve(self, count: int) -> None:
        """Give back a reservation whose rows were never written."""
        self._pending_estimate = max(self._pending_estimate - count, 0)

    def _finished_one(self) -> None:
        if self._pending_estimate > 0:
            self._pending_estimate -= 1

    # -- the loop --------------------------------------------------------------------------
    def _room(self) -> int:
        return self._claim_size - self._busy() - self.gate.held_count

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                more = await self._round()
                self._outage.recovered()
                if more and self._busy() and not self._refill_due():
                    # The store has more, the local queue enough for now: a finished send
                    # wakes the loop when it runs low (_done), with no store read meanwhile.
                    await self._clock.wait(self._wake, self._poll)
                elif not more:
                    await self._sleep()  # reads the store too (next_due)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Whatever the store (or anything else) raised, the loop goes on: a crashed
                # loop would leave the process alive and sending nothing.
                delay = self._outage.failed(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)

    async def _round(self) -> bool:
        """One claim round; True if another should follow at once."""
        await self._flush_hand_backs()  # a failed round's first: its deliveries wait
        now = self._clock.now()
        room = self._room()
        await self._catalog.refresh()
        blocked = self.gate.blocked(now) | self._catalog.disabled
        claimed: list[Delivery] = []
        if room > 0:
            self._claiming = True
            try:
                batch = await self._store.claim_batch(
                    now,
                    limit=room,
                    lease=self._lease,
                    exclude_webhooks=blocked,
                    per_webhook=2 * self.config.isolation.per_endpoint,
                )
            finally:
                self._claiming = False
            claimed = batch.deliveries
            postponed: list[Delivery] = []
            excess: list[str] = []
            throttled: dict[datetime, list[str]] = {}
            for delivery in claimed:
                if delivery.id in self._active_ids:
                    continue  # its lease ran out while we still hold it: not a new delivery
                verdict = self.gate.admit(
                    delivery,
                    now,
                    self._busy() < self._concurrency,
                    self._rate_limit(delivery),
                )
                if verdict == "send":
                    self._use_payload(delivery, batch.payloads)
                    self._start(delivery)
                elif verdict == "hold":
                    self._use_payload(delivery, batch.payloads)
                    self._active_ids.add(delivery.id)
                elif verdict == "excess":
                    excess.append(delivery.id)
                elif verdict == "throttle":
                    until = self.gate.throttle_time(delivery.webhook_id) or now
                    throttled.setdefault(until, []).append(delivery.id)
                else:
                    postponed.append(delivery)
            for until, ids in throttled.items():
                # Over its rate limit: pending in the store until its next token, no attempt,
                # no retry budget spent.
                self._hand_back(ids, until)
                self.stats.throttled += len(ids)
            if excess:
                # Its endpoint already has a full local queue: back to the store at once (no
                # attempt, budget unchanged) so deliveries to other endpoints get the room.
                self._hand_back(excess)
                self.stats.released += len(excess)
            postponed += self.gate.release_blocked(now)
            self._postpone(postponed, now)
        else:
            self._postpone(self.gate.release_blocked(now), now)
        self._pump(now)  # sends start before the hand-backs are written (or fail to be)
        if room > 0:
            self._backlog = len(claimed) == room
        if self._refill_deferred:
            self._refill_deferred = False
            if self._refill_due():
                self._wake.set()
        await self._flush_hand_backs()
        return bool(claimed) and len(claimed) == room

    def _hand_back(self, ids: list[str], until: datetime | None = None) -> None:
        """Queue deliveries this process will not send for the store (see _hand_backs)."""
        if ids:
            self._hand_backs.append((ids, until))

    async def _flush_hand_backs(self) -> None:
        """Write the queued hand-backs; what a failed write leaves stays queued."""
        while self._hand_backs:
            ids, until = self._hand_backs[0]
            await self._store.release(ids, until=until)
            del self._hand_backs[0]

    async def _sleep(self) -> None:
        now = self._clock.now()
        next_due = await self._store.next_due()
        now = self._clock.now()
        blocked = self.gate.blocked(now) | self._catalog.disabled
        if next_due is not None and next_due <= now:
            if self._room() > 0 and not blocked:
                return  # due work appeared meanwhile
            # Due work is left only for blocked endpoints or no room: a finished send (wake)
            # or a breaker's reopening unblocks them.
            next_due = self.gate.next_reopen(now)
        if not self._busy() and not self.gate.held_count and not self._wake.is_set():
            self._idle.set()
        timeout = None if next_due is None else max((next_due - now).total_seconds(), 0.001)
        if self._poll is not None:
            timeout = self._poll if timeout is None else min(timeout, self._poll)
        await self._clock.wait(self._wake, timeout)

    def _postpone(self, deliveries: list[Delivery], now: datetime) -> None:
        if not deliveries:
            return
        by_until: dict[datetime, list[str]] = {}
        for delivery in deliveries:
            self._forget(delivery)
            until = self.gate.reopen_time(delivery.webhook_id) or now
            by_until.setdefault(until, []).append(delivery.id)
        for until, ids in by_until.items():
            self._hand_back(ids, until)
        self.stats.postponed += len(deliveries)

    def _rate_limit(self, delivery: Delivery) -> RateLimit | None:
        """The webhook's own rate limit, else its app's default."""
        webhook = self._catalog.webhook(delivery.webhook_id)
        if webhook is not None and webhook.rate_limit is not None:
            return webhook.rate_limit
        app = self._catalog.app(delivery.app_id)
        return app.rate_limit if app is not None else None

    def _use_payload(self, delivery: Delivery, payloads: dict[str, Payload]) -> None:
        """Keep the claimed payload while a delivery of it is held or in flight."""
        payload = payloads.get(delivery.payload_id)
        if payload is not None:
            self._payloads[payload.id] = payload
        self._payload_users[delivery.payload_id] = (
            self._payload_users.get(delivery.payload_id, 0) + 1
        )

    def _forget(self, delivery: Delivery) -> None:
        """Drop what this process keeps for a delivery it no longer holds."""
        if delivery.id not in self._active_ids:
            return
        self._active_ids.discard(delivery.id)
        users = self._payload_users.get(delivery.payload_id, 0) - 1
        if users <= 0:
            self._payload_users.pop(delivery.payload_id, None)
            self._payloads.pop(delivery.payload_id, None)
        else:
            self._payload_users[delivery.payload_id] = users

    def _pump(self, now: datetime) -> None:
        """Start held deliveries while send slots are free."""
        while self._busy() < self._concurrency:
            delivery = self.gate.next_ready(now)
            if delivery is None:
                return
            if self._lease_running_out(delivery, now):
                continue
            self._start(delivery)

    def _lease_running_out(self, delivery: Delivery, now: datetime) -> bool:
        """Let go of a delivery held locally until less than half its lease is left.

        Sending it now could outlast the lease: another worker would claim it mid-send and
        send it a second time. Dropped here, it stays pending in the store, which hands it
        out again (to any worker, this one included) when the lease ends.
        """
        if delivery.lease_until is None or delivery.lease_until - now >= self._lease / 2:
            return False
        self._forget(delivery)
        self.gate.done(delivery.webhook_id, None, now)
        return True

    def _start(self, delivery: Delivery) -> None:
        self._active_ids.add(delivery.id)
        task = asyncio.create_task(self._deliver(delivery))
        self._inflight[task] = delivery
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[_Health | None]) -> None:
        delivery = self._inflight.pop(task, None)
        health: _Health = (None, None)
        if not task.cancelled():
            exc = task.exception()
            if exc is not None:
                log.error("webhookkit: delivery task crashed", exc_info=exc)
            else:
                result = task.result()
                if result is None:
                    return  # its attempt waits for the finisher, which completes it
                health = result
        self._complete(delivery, health)

    def _complete(self, delivery: Delivery | None, health: _Health) -> None:
        """A delivery's send slot is free: the gate hears how it went, the next one starts."""
        healthy, retry_at = health
        change: str | None = None
        if delivery is not None:
            self._forget(delivery)
            now = self._clock.now()
            change = self.gate.done(delivery.webhook_id, healthy, now, retry_at)
            if change is not None:
                self._breaker_changed(delivery.webhook_id, change)
            if not self._stopping:
                self._pump(now)  # keep the endpoint's pipeline full without a loop round
        # Wake the claim loop only when a claim would be worth it (or to notice idleness):
        # one loop round per finished send costs more than the send's own bookkeeping.
        # The local queue is refilled before it runs dry: a claim starts once half of
        # claim_size is free (with the default of four times the concurrency, while a full
        # concurrency's worth still waits), and, while the last claim was full (the store has
        # more), at the latest when fewer than half a concurrency's worth wait (a small
        # batch_size). A delivery task's hand-back is written by the loop, woken only now
        # that _forget above let go of the delivery (a claim taking it again sees a new
        # one); a breaker that opened or closed has held deliveries to hand back or send.
        if self._hand_backs or change is not None or not self._busy() or self._stopping:
            self._wake.set()
        else:
            self._wake_for_refill()

    def _wake_for_refill(self) -> None:
        """Wake the loop if the local queue needs a refill. While a claim is out, the room
        it will fill looks free: the round decides once the claim is back (woken at once, a
        full claim was followed by one for the few slots freed meanwhile: SQLite's claims
        averaged 56 rows with about 200 free)."""
        if self._claiming:
            self._refill_deferred = True
        elif self._refill_due():
            self._wake.set()

    def _refill_due(self) -> bool:
        """Whether the local queue should be refilled now (see _done)."""
        room = self._room()
        return room >= self._claim_size // 2 or (
            self._backlog and room > 0 and self.gate.held_count < self._concurrency // 2
        )

    def _breaker_changed(self, webhook_id: str, state: str) -> None:
        log.warning(
            "webhookkit: endpoint breaker of webhook %s %s",
            webhook_id,
            "opened" if state == "open" else "closed",
            extra={"webhook_id": webhook_id, "breaker": state},
        )
        self._instrument.breaker(webhook_id, state)
        call_hook(self.hooks.on_breaker, webhook_id, state)

    # -- one delivery ----------------------------------------------------------------------
    def sign(
        self,
        payload: Payload,
        webhook: Webhook,
        delivery_id: str = "",
        now: datetime | None = None,
    ) -> DeliverySignature:
        """Sign by the webhook's profile (:mod:`webhookkit.signing.profiles`): HMAC with its
        secret key, else the payload's JWS (once per payload and key), or Standard Webhooks."""
        return sign_delivery(
            payload,
            webhook,
            delivery_id=delivery_id or payload.id,
            now=now if now is not None else self._clock.now(),
            jws=self._jws,
            cache=self._jws_cache,
            stats=self.stats,
        )

    def message(
        self,
        payload: Payload,
        webhook: Webhook,
        delivery_id: str,
        *,
        ordering_key: str | None = None,
        body_limit: int = 0,
        trace_headers: tuple[tuple[str, str], ...] = (),
    ) -> OutboundMessage:
        """The signed message for one webhook: what every transport receives."""
        signed = self.sign(payload, webhook, delivery_id, self._clock.now())
        return OutboundMessage(
            url=webhook.target_url,
            body=payload.body,
            event=payload.event,
            domain=self._domain,
            api_url=self._api_url,
            signature=signed.signature,
            signature_headers=signed.headers,
            custom_headers=webhook.custom_headers,
            delivery_id=delivery_id,
            webhook_id=webhook.id,
            timeouts=webhook.timeouts or self.config.timeouts,
            ordering_key=ordering_key,
            body_limit=body_limit,
            trace_headers=trace_headers,
        )

    async def _lookup(self, delivery: Delivery) -> tuple[Webhook | None, App | None]:
        webhook = self._catalog.webhook(delivery.webhook_id)
        app = self._catalog.app(delivery.app_id)
        if webhook is None or app is None:
            # Created by another process since the catalog was loaded, or deleted: ask the
            # store once rather than trust a cache that may be behind.
            if webhook is None:
                webhook = await self._store.get_webhook(delivery.webhook_id)
            if app is None:
                app = await self._store.get_app(delivery.app_id)
        return webhook, app

    async def _deliver(self, delivery: Delivery) -> _Health | None:
        """Send one delivery and queue its attempt for the store. Returns None when the
        finisher completes it once the attempt is written (:meth:`_on_written`), else the
        endpoint's health (None when nothing was sent) and when the delivery is due again
        (None: final)."""
        started = time.perf_counter()
        result: TransportResult | None = None
        error: BaseException | None = None
        retryable = False
        payload = self._payloads.get(delivery.payload_id)
        webhook = self._catalog.webhook(delivery.webhook_id)
        app = self._catalog.app(delivery.app_id)
        try:
            if webhook is None or app is None:
                webhook, app = await self._lookup(delivery)
            if payload is None:
                payload = await self._store.get_payload(delivery.payload_id)
        except Exception as exc:
            # The store is down: nothing sent, no attempt; the loop hands it back once the
            # store answers, so it is claimed again then rather than a lease later.
            log.warning("webhookkit: cannot look up delivery %s: %s", delivery.id, exc)
            self.stats.store_errors += 1
            self._hand_back([delivery.id])  # written by the loop, woken by _done
            return None, None
        if webhook is not None and webhook.disabled_at is not None:
            # Disabled after failing too long: held in the store, not failed, until the
            # webhook is activated again (handed back by the loop, woken by _done).
            self._hand_back([delivery.id])
            return None, None
        reason = self._unsendable(delivery, webhook, app, payload)
        observed: AttemptObservation | None = None
        if reason is None:
            assert webhook is not None and payload is not None
            try:
                observed = self._instrument.attempt(delivery, webhook)
                transport = self._router.for_url(webhook.target_url)
                message = self.message(
                    payload,
                    webhook,
                    delivery.id,
                    ordering_key=delivery.ordering_key,
                    trace_headers=observed.headers,
                )
                result = await transport.send(message)
                retryable = result.retryable
            except DeliveryError as exc:
                error, retryable = exc, exc.retryable
            except WebhookKitError as exc:
                error, retryable = exc, False
            except Exception as exc:
                # A host transport's bug must not lose the delivery: record it and retry.
                log.exception("webhookkit: transport raised an unexpected error")
                error, retryable = exc, True
        try:
            recorded = await self._attempt_result(
                delivery, webhook, started, result, error, retryable, reason
            )
            written = _Written(delivery, webhook, recorded, observed, reason, result, retryable)
            if self.finisher.grouped:
                # The slot stays taken, moved from the sends to _recording (counted once),
                # until the write; the writer then completes the delivery, with no task
                # waiting per delivery.
                self._inflight.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
                self._recording[delivery.id] = delivery
                self.finisher.submit(recorded, functools.partial(self._on_written, written))
                return None
            await self.finisher.add(recorded)
        except BaseException:
            if observed is not None:  # never leave an attempt's span open
                with contextlib.suppress(Exception):
                    observed.finish(_unrecorded(delivery), webhook)
            raise
        health = self._written(written)
        if self._streak_pending(written):
            await self._streak(written)
        return health

    def _on_written(self, written: _Written) -> None:
        """The finisher wrote (or gave up on) a submitted attempt: complete its delivery."""
        delivery = written.delivery
        self._recording.pop(delivery.id, None)
        try:
            health = self._written(written)
        except Exception:
            # As a crashed delivery task was: logged, and its slot and endpoint share freed.
            log.exception("webhookkit: completing delivery %s failed", delivery.id)
            self._complete(delivery, (None, None))
            return
        if self._streak_pending(written):
            # Failure streaks read and write the store: in a task of its own, which holds the
            # slot as the send did (stop() waits for it).
            task = asyncio.create_task(self._streak_then(written, health))
            self._inflight[task] = delivery
            task.add_done_callback(self._done)
            return
        self._complete(delivery, health)

    async def _streak_then(self, written: _Written, health: _Health) -> _Health:
        await self._streak(written)
        return health

    def _streak_pending(self, written: _Written) -> bool:
        """Whether the attempt moves its webhook's failure streak (store work to do)."""
        webhook = written.webhook
        if webhook is None or self.config.disable_after is None or written.reason is not None:
            return False
        return not written.ok or webhook.id in self._failing

    async def _streak(self, written: _Written) -> None:
        webhook = written.webhook
        assert webhook is not None
        try:
            await self._track_streak(webhook, written.ok, written.recorded.attempt.created_at)
        except Exception as exc:
            log.warning("webhookkit: cannot track webhook %s's failures: %s", webhook.id, exc)

    async def _track_streak(self, webhook: Webhook, ok: bool, now: datetime) -> None:
        """Follow a webhook's uninterrupted failures: warn at the configured fractions of
        ``disable_after``, disable it when the streak reaches it. The streak's start is kept
        in the store, so every worker and the next start agree on it."""
        limit = self.config.disable_after
        assert limit is not None
        if ok:
            if self._failing.pop(webhook.id, None) is not None:
                self._warned.pop(webhook.id, None)
                await self._store.clear_failing(webhook.id)
            return
        since = self._failing.get(webhook.id)
        if since is None:
            since = self._failing[webhook.id] = await self._store.mark_failing(webhook.id, now)
        fraction = (now - since) / limit
        for mark in sorted(self.config.disable_warnings):
            if fraction >= mark > self._warned.get(webhook.id, 0.0):
                self._warned[webhook.id] = mark
                log.warning(
                    "webhook %s has been failing since %s: %.0f%% of the %s after which it "
                    "is disabled",
                    webhook.id,
                    since.isoformat(),
                    mark * 100,
                    limit,
                    extra={"webhook_id": webhook.id, "app_id": webhook.app_id},
                )
                call_hook(self.hooks.on_failing, webhook, mark, since)
        if fraction < 1:
            return
        current = self._catalog.webhook(webhook.id) or webhook
        disabled = dataclasses.replace(current, is_active=False, disabled_at=now)
        await self._store.put_webhook(disabled)
        self._failing.pop(webhook.id, None)
        self._warned.pop(webhook.id, None)
        await self._store.clear_failing(webhook.id)
        log.warning(
            "webhook %s disabled: failing without a break since %s; its pending deliveries "
            "are held until it is activated again",
            webhook.id,
            since.isoformat(),
            extra={"webhook_id": webhook.id, "app_id": webhook.app_id},
        )
        call_hook(self.hooks.on_disabled, disabled, since)
        if self.on_disabled is not None:
            await self.on_disabled(disabled, since)

    def _unsendable(
        self,
        delivery: Delivery,
        webhook: Webhook | None,
        app: App | None,
        payload: Payload | None,
    ) -> str | None:
        if webhook is None:
            return "webhook was deleted"
        if not webhook.is_active:
            return "webhook is inactive"
        if app is None:
            return "app was deleted"
        if not app.is_active:
            # Only the app's own lifecycle events reach an inactive app.
            registry = self._registry
            event = registry.get(delivery.event) if delivery.event in registry else None
            if event is None or not event.is_app_lifecycle:
                return "app is inactive"
        if payload is None:
            return "payload is missing"
        max_age = self._retry.max_age
        if max_age is not None and self._clock.now() - delivery.created_at > max_age:
            return f"older than the retry policy's max_age ({max_age})"
        return None

    async def _attempt_result(
        self,
        delivery: Delivery,
        webhook: Webhook | None,
        started: float,
        result: TransportResult | None,
        error: BaseException | None,
        retryable: bool,
        reason: str | None,
    ) -> AttemptResult:
        """The attempt record and the delivery's next state (a 410 deactivates the webhook)."""
        now = self._clock.now()
        number = delivery.attempts + 1
        ok = result is not None and result.ok
        error_text: str | None = None
        error_kind: str | None = None
        if reason is not None:
            error_kind, error_text = "not_sent", reason
        elif error is not None:
            error_kind, error_text = type(error).__name__, str(error) or type(error).__name__
        elif result is not None and not ok:
            error_kind, error_text = "rejected", f"receiver answered HTTP {result.status_code}"
        status = DeliveryStatus.SUCCESS if ok else DeliveryStatus.FAILED
        next_try = None
        if not ok and reason is None:
            outcome = Outcome(
                status_code=result.status_code if result else None,
                retryable=retryable,
                retry_after=_retry_after(result, now),
            )
            # A manual retry started a fresh budget: count from it.
            since = delivery.requeued_at or delivery.created_at
            elapsed = (now - since).total_seconds()
            delay = self._retry.decide(outcome, number - delivery.retry_base, elapsed)
            if delay is not None:
                status, next_try = DeliveryStatus.PENDING, now + timedelta(seconds=delay)
        # Positional, in field order: built for every attempt, and keyword arguments cost a
        # frozen dataclass half again as much.
        attempt = Attempt(
            new_id(),  # id
            delivery.id,  # delivery_id
            number,
            now,  # created_at
            AttemptStatus.SUCCESS if ok else AttemptStatus.FAILED,  # status
            time.perf_counter() - started,  # duration
            result.status_code if result else None,  # response_status_code
            # response_excerpt: receivers answer with any bytes; keep what every store can hold
            sanitize_text(result.response_excerpt, EXCERPT_LIMIT + 3) if result else "",
            sanitize_headers(result.request_headers) if result else (),  # request_headers
            sanitize_headers(result.response_headers) if result else (),  # response_headers
            error_kind,
            sanitize_text(error_text, 2048) if error_text is not None else None,  # error
            next_try is not None,  # retryable
        )
        if (
            webhook is not None
            and result is not None
            and result.status_code == 410
            and self._retry.deactivate_on_gone
        ):
            try:
                await self._store.put_webhook(dataclasses.replace(webhook, is_active=False))
                log.warning("webhook %s answered 410 Gone: deactivated", webhook.id)
            except Exception as exc:
                log.warning(
                    "webhook %s answered 410 Gone; deactivating failed: %s", webhook.id, exc
                )
        return AttemptResult(delivery.id, attempt, status, next_try, now)

    def _written(self, written: _Written) -> _Health:
        """After the attempt is on record: counters, log line, hooks, the observation; the
        endpoint's health for the gate."""
        delivery, webhook = written.delivery, written.webhook
        recorded = written.recorded
        attempt, status, next_try = recorded.attempt, recorded.status, recorded.next_try_at
        number = attempt.number
        self._count(status, next_try)
        if status is not DeliveryStatus.PENDING:
            self._finished_one()
        # One line per attempt at DEBUG; a delivery that failed for good is worth a warning.
        final_failure = status is DeliveryStatus.FAILED
        if final_failure or log.isEnabledFor(logging.DEBUG):
            target = redact_url(webhook.target_url) if webhook else "?"
            log.log(
                logging.WARNING if final_failure else logging.DEBUG,
                "delivery %s %s -> %s attempt %d: %s%s",
                delivery.id,
                delivery.event,
                target,
                number,
                status.value,
                f" ({attempt.error})" if attempt.error else "",
                extra={
                    "delivery_id": delivery.id,
                    "webhook_id": delivery.webhook_id,
                    "app_id": delivery.app_id,
                    "event": delivery.event,
                    "attempt": number,
                    "status": status.value,
                    "status_code": attempt.response_status_code,
                    "duration": attempt.duration,
                    "error_kind": attempt.error_kind,
                },
            )
        if final_failure and self.hooks.on_failed is not None:
            failed = dataclasses.replace(
                delivery,
                status=status,
                attempts=number,
                lease_until=None,
                last_error=attempt.error,
                updated_at=recorded.now,
            )
            call_hook(self.hooks.on_failed, failed, attempt)
        self._notify_progress()
        if written.observed is not None:
            try:
                written.observed.finish(attempt, webhook)
            except Exception:
                log.exception("webhookkit: instrumentation raised")
        if written.reason is not None:
            return None, None
        # Connection errors, timeouts and 5xx say the endpoint is unwell; any answer else
        # (2xx, 3xx, 4xx) says it is up.
        result = written.result
        healthy = not written.retryable if result is None or not result.ok else True
        return healthy, next_try

    def _count(self, status: DeliveryStatus, next_try: object) -> None:
        self.stats.attempts += 1
        if status is DeliveryStatus.SUCCESS:
            self.stats.successes += 1
        elif status is DeliveryStatus.FAILED:
            self.stats.failures += 1
        elif next_try is not None:
            self.stats.retries_scheduled += 1


def _unrecorded(delivery: Delivery) -> Attempt:
    """What an observer is told of an attempt whose recording failed."""
    return Attempt(
        id="",
        delivery_id=delivery.id,
        number=delivery.attempts + 1,
        created_at=delivery.created_at,
        status=AttemptStatus.FAILED,
        duration=0.0,
        error_kind="unrecorded",
    )


def _retry_after(result: TransportResult | None, now: datetime) -> float | None:
    if result is None:
        return None
    for name, value in result.response_headers:
        if name.lower() == "retry-after":
            return parse_retry_after(value, now)
    return None
