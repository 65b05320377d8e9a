"""The in-process scheduler: claim due deliveries, sign, send, record, reschedule."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from .._ids import new_id
from .._secret import redact_url
from ..apps import App, Webhook
from ..clock import Clock
from ..events import EventRegistry
from ..exceptions import DeliveryError, WebhookKitError
from ..signing import DeliverySignature, JWSSigner, sign_delivery
from ..stores.base import Store, WorkNotifier
from ..transports.base import OutboundMessage, Timeouts, TransportResult, TransportRouter
from .isolation import EndpointGate, IsolationConfig
from .records import Attempt, AttemptStatus, Delivery, DeliveryStatus, Payload
from .retry import Outcome, RetryPolicy, parse_retry_after

__all__ = ["DeliveryStats", "Scheduler"]

log = logging.getLogger("webhookkit.delivery")


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


class Scheduler:
    """Runs inside the dispatcher: one loop that claims, and one task per send."""

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
        timeouts: Timeouts,
        concurrency: int = 100,
        lease: timedelta = timedelta(minutes=5),
        isolation: IsolationConfig | None = None,
        max_queued: int | None = None,
        poll_interval: float | None = None,
    ) -> None:
        self._store = store
        self._router = router
        self._registry = registry
        self._clock = clock
        self._retry = retry
        self._jws = jws_signer
        self._domain = domain
        self._api_url = api_url
        self._timeouts = timeouts
        self._concurrency = concurrency
        self._lease = lease
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._progress = asyncio.Condition()
        self._inflight: dict[asyncio.Task[bool | None], Delivery] = {}
        self._active_ids: set[str] = set()  # held locally or in flight
        self.gate = EndpointGate(isolation)
        self._max_queued = max_queued
        self._poll = poll_interval
        self._queued = 0
        self._room = asyncio.Condition()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._jws_cache: OrderedDict[str, str] = OrderedDict()
        self.stats = DeliveryStats()

    @property
    def queued(self) -> int:
        """Deliveries this process queued that are not final yet (counted with max_queued)."""
        return self._queued

    @property
    def running(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    def start(self) -> None:
        if self.running:
            return
        if isinstance(self._store, WorkNotifier):
            self._store.add_work_listener(self.notify)
        self._stopping = False
        self._idle.clear()
        self._loop_task = asyncio.create_task(self._run(), name="webhookkit-scheduler")

    def notify(self) -> None:
        """New work may be due: wake the loop and forget any earlier idle state."""
        self._idle.clear()
        self._wake.set()

    async def wait_idle(self) -> None:
        """Return once nothing is due at the clock's current time and nothing is in flight."""
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
        async with self._progress:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), timeout)

    async def stop(self, *, drain_timeout: float | None = 30.0) -> None:
        """Stop claiming; wait up to ``drain_timeout`` for in-flight sends, then cancel them."""
        self._stopping = True
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
        if unsent:
            # Leases are handed back so another worker (or the next start) sends them now.
            await self._store.release(unsent)
        self._active_ids.clear()

    async def reserve(self, count: int) -> None:
        """Back-pressure for ``trigger``: wait while this process has ``max_queued``
        unfinished deliveries and the scheduler is running to drain them."""
        if self._max_queued is None:
            return
        async with self._room:
            while self.running and self._queued > 0 and self._queued + count > self._max_queued:
                await self._room.wait()
            self._queued += count

    async def _finished(self) -> None:
        if self._max_queued is not None and self._queued > 0:
            async with self._room:
                self._queued -= 1
                self._room.notify_all()

    # -- the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            now = self._clock.now()
            room = self._concurrency * 2 - len(self._inflight) - self.gate.held_count
            blocked = self.gate.blocked(now)
            batch: list[Delivery] = []
            if room > 0:
                batch = await self._store.claim_due(
                    now, limit=room, lease=self._lease, exclude_webhooks=blocked
                )
            postponed: list[Delivery] = []
            for delivery in batch:
                if delivery.id in self._active_ids:
                    continue  # its lease ran out while we still hold it: not a new delivery
                verdict = self.gate.admit(delivery, now, len(self._inflight) < self._concurrency)
                if verdict == "send":
                    self._start(delivery)
                elif verdict == "hold":
                    self._active_ids.add(delivery.id)
                else:
                    postponed.append(delivery)
            postponed += self.gate.release_blocked(now)
            await self._postpone(postponed, now)
            self._pump(now)
            if batch and len(batch) == room:
                continue  # more may be due
            next_due = await self._store.next_due()
            now = self._clock.now()
            if next_due is not None and next_due <= now:
                # Due work is left only for blocked endpoints: a finished send (wake) or a
                # breaker's reopening unblocks them.
                if room > 0 and not blocked and not self.gate.blocked(now):
                    continue
                next_due = self.gate.next_reopen(now)
            if not self._inflight and not self.gate.held_count and not self._wake.is_set():
                self._idle.set()
            timeout = None if next_due is None else max((next_due - now).total_seconds(), 0.001)
            if self._poll is not None:
                timeout = self._poll if timeout is None else min(timeout, self._poll)
            await self._clock.wait(self._wake, timeout)

    async def _postpone(self, deliveries: list[Delivery], now: datetime) -> None:
        if not deliveries:
            return
        by_until: dict[datetime, list[str]] = {}
        for delivery in deliveries:
            self._active_ids.discard(delivery.id)
            until = self.gate.reopen_time(delivery.webhook_id) or now
            by_until.setdefault(until, []).append(delivery.id)
        for until, ids in by_until.items():
            await self._store.release(ids, until=until)
        self.stats.postponed += len(deliveries)

    def _pump(self, now: datetime) -> None:
        """Start held deliveries while send slots are free."""
        while len(self._inflight) < self._concurrency:
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
        self._active_ids.discard(delivery.id)
        self.gate.done(delivery.webhook_id, None, now)
        return True

    def _start(self, delivery: Delivery) -> None:
        self._active_ids.add(delivery.id)
        task = asyncio.create_task(self._deliver(delivery))
        self._inflight[task] = delivery
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[bool | None]) -> None:
        delivery = self._inflight.pop(task, None)
        healthy: bool | None = None
        if not task.cancelled():
            if task.exception() is not None:
                log.error("webhookkit: delivery task crashed", exc_info=task.exception())
            else:
                healthy = task.result()
        if delivery is not None:
            self._active_ids.discard(delivery.id)
            now = self._clock.now()
            self.gate.done(delivery.webhook_id, healthy, now)
            if not self._stopping:
                self._pump(now)  # keep the endpoint's pipeline full without a loop round
        # Wake the claim loop only when a claim would be worth it (or to notice idleness):
        # one loop round per finished send costs more than the send's own bookkeeping.
        room = self._concurrency * 2 - len(self._inflight) - self.gate.held_count
        if room >= self._concurrency // 2 or not self._inflight or self._stopping:
            self._wake.set()

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
            timeouts=webhook.timeouts or self._timeouts,
            ordering_key=ordering_key,
            body_limit=body_limit,
        )

    async def _deliver(self, delivery: Delivery) -> bool | None:
        """Send one delivery and record the attempt; returns the endpoint's health (None when
        nothing was sent)."""
        started = time.perf_counter()
        result: TransportResult | None = None
        error: BaseException | None = None
        retryable = False
        webhook = await self._store.get_webhook(delivery.webhook_id)
        app = await self._store.get_app(delivery.app_id)
        payload = await self._store.get_payload(delivery.payload_id)
        reason = self._unsendable(delivery, webhook, app, payload)
        if reason is None:
            assert webhook is not None and payload is not None
            try:
                transport = self._router.for_url(webhook.target_url)
                message = self.message(
                    payload, webhook, delivery.id, ordering_key=delivery.ordering_key
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
        await self._record(delivery, webhook, started, result, error, retryable, reason)
        if reason is not None:
            return None
        # Connection errors, timeouts and 5xx say the endpoint is unwell; any answer else
        # (2xx, 3xx, 4xx) says it is up.
        return not retryable if result is None or not result.ok else True

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
        event = self._registry.get(delivery.event) if delivery.event in self._registry else None
        if not app.is_active and not (event is not None and event.is_app_lifecycle):
            return "app is inactive"
        if payload is None:
            return "payload is missing"
        return None

    async def _record(
        self,
        delivery: Delivery,
        webhook: Webhook | None,
        started: float,
        result: TransportResult | None,
        error: BaseException | None,
        retryable: bool,
        reason: str | None,
    ) -> None:
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
        attempt = Attempt(
            id=new_id(),
            delivery_id=delivery.id,
            number=number,
            created_at=now,
            status=AttemptStatus.SUCCESS if ok else AttemptStatus.FAILED,
            duration=time.perf_counter() - started,
            response_status_code=result.status_code if result else None,
            response_excerpt=result.response_excerpt if result else "",
            request_headers=result.request_headers if result else (),
            response_headers=result.response_headers if result else (),
            error_kind=error_kind,
            error=error_text,
            retryable=next_try is not None,
        )
        if (
            webhook is not None
            and result is not None
            and result.status_code == 410
            and self._retry.deactivate_on_gone
        ):
            await self._store.put_webhook(dataclasses.replace(webhook, is_active=False))
            log.warning("webhook %s answered 410 Gone: deactivated", webhook.id)
        await self._store.finish_attempt(
            delivery.id, attempt, status=status, next_try_at=next_try, now=now
        )
        self._count(status, next_try)
        if status is not DeliveryStatus.PENDING:
            await self._finished()
        target = redact_url(webhook.target_url) if webhook else "?"
        level = logging.INFO if ok else logging.WARNING
        log.log(
            level,
            "delivery %s %s -> %s attempt %d: %s%s",
            delivery.id,
            delivery.event,
            target,
            number,
            status.value,
            f" ({error_text})" if error_text else "",
        )
        async with self._progress:
            self._progress.notify_all()

    def _count(self, status: DeliveryStatus, next_try: object) -> None:
        self.stats.attempts += 1
        if status is DeliveryStatus.SUCCESS:
            self.stats.successes += 1
        elif status is DeliveryStatus.FAILED:
            self.stats.failures += 1
        elif next_try is not None:
            self.stats.retries_scheduled += 1


def _retry_after(result: TransportResult | None, now: datetime) -> float | None:
    if result is None:
        return None
    for name, value in result.response_headers:
        if name.lower() == "retry-after":
            return parse_retry_after(value, now)
    return None
