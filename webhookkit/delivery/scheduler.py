"""The in-process scheduler: claim due deliveries, sign, send, record, reschedule."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta

from .._secret import redact_url
from ..apps import App, Webhook
from ..clock import Clock
from ..events import EventRegistry
from ..exceptions import DeliveryError, WebhookKitError
from ..signing import HMACSigner, JWSSigner
from ..stores.base import Store
from ..transports.base import OutboundMessage, Timeouts, TransportResult, TransportRouter
from .records import Attempt, AttemptStatus, Delivery, DeliveryStatus, Payload
from .retry import RetryPolicy

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
        self._inflight: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._jws_cache: OrderedDict[str, str] = OrderedDict()
        self.stats = DeliveryStats()

    @property
    def running(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    def start(self) -> None:
        if self.running:
            return
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
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=drain_timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    # -- the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            free = self._concurrency - len(self._inflight)
            batch: list[Delivery] = []
            if free > 0:
                batch = await self._store.claim_due(
                    self._clock.now(), limit=free, lease=self._lease
                )
            for delivery in batch:
                task = asyncio.create_task(self._deliver(delivery))
                self._inflight.add(task)
                task.add_done_callback(self._done)
            if batch and len(batch) == free:
                continue  # more may be due; claim again once slots free up
            if self._inflight:
                await self._wake.wait()
                continue
            next_due = await self._store.next_due()
            now = self._clock.now()
            if next_due is not None and next_due <= now:
                continue
            if not self._wake.is_set():
                self._idle.set()
            timeout = None if next_due is None else (next_due - now).total_seconds()
            await self._clock.wait(self._wake, timeout)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("webhookkit: delivery task crashed", exc_info=task.exception())

    # -- one delivery ----------------------------------------------------------------------
    def sign(self, payload: Payload, webhook: Webhook) -> str:
        """HMAC with the webhook's secret key, else the payload's JWS (computed once)."""
        if webhook.secret_key is not None:
            self.stats.hmac_signatures += 1
            return HMACSigner(webhook.secret_key).sign(payload.body)
        cached = self._jws_cache.get(payload.id)
        if cached is None:
            cached = self._jws.sign(payload.body)
            self.stats.jws_signatures += 1
            self._jws_cache[payload.id] = cached
            if len(self._jws_cache) > 4096:
                self._jws_cache.popitem(last=False)
        else:
            self._jws_cache.move_to_end(payload.id)
        return cached

    async def _deliver(self, delivery: Delivery) -> None:
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
                message = OutboundMessage(
                    url=webhook.target_url,
                    body=payload.body,
                    event=delivery.event,
                    domain=self._domain,
                    api_url=self._api_url,
                    signature=self.sign(payload, webhook),
                    custom_headers=webhook.custom_headers,
                    delivery_id=delivery.id,
                    webhook_id=webhook.id,
                    timeouts=webhook.timeouts or self._timeouts,
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
        attempt = Attempt(
            id=str(uuid.uuid4()),
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
            retryable=retryable and not ok,
        )
        next_try = None
        if ok:
            status = DeliveryStatus.SUCCESS
        elif retryable and reason is None:
            elapsed = (now - delivery.created_at).total_seconds()
            delay = self._retry.next_delay(number, elapsed)
            if delay is None:
                status = DeliveryStatus.FAILED
            else:
                status, next_try = DeliveryStatus.PENDING, now + timedelta(seconds=delay)
        else:
            status = DeliveryStatus.FAILED
        await self._store.finish_attempt(
            delivery.id, attempt, status=status, next_try_at=next_try, now=now
        )
        self._count(status, next_try)
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
