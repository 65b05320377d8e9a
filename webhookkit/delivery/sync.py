"""Synchronous webhooks: called during the host's request, answers returned to the caller.

Saleor's behaviour: the parsed JSON body of a 2xx answer is the result, anything else is
``None``; an optional response cache (300 s, a failure remembered 1 s) and an optional circuit
breaker per app (300 s window; open at >= 100 errors and >= 35 %; half-open after 120 s; from
half-open, open again at >= 20 errors and >= 30 %, closed after 50 successes).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from .._ids import new_id
from ..apps import App, Webhook
from ..clock import Clock
from ..exceptions import ConfigurationError, DeliveryError, WebhookKitError
from ..transports.base import OutboundMessage, TransportRouter
from .records import Payload

__all__ = ["DEFAULT_CACHE_SIZE", "BreakerConfig", "CircuitBreaker", "SyncCaller", "SyncResponse"]

#: How many answers the response cache keeps at most (least recently used go first).
DEFAULT_CACHE_SIZE = 10_000

log = logging.getLogger("webhookkit.sync")


class MessageFactory(Protocol):
    def __call__(
        self, payload: Payload, webhook: Webhook, delivery_id: str, *, body_limit: int
    ) -> OutboundMessage: ...


@dataclass(frozen=True, slots=True)
class SyncResponse:
    """One sync webhook's answer: ``data`` is the parsed JSON of a 2xx answer, else None."""

    webhook_id: str
    app_id: str
    data: Any
    status_code: int | None = None
    error: str | None = None
    cached: bool = False
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.skipped is None


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Saleor's breaker constants; every one configurable."""

    window: float = 300.0
    open_errors: int = 100
    open_rate: float = 0.35
    cooldown: float = 120.0
    half_open_errors: int = 20
    half_open_rate: float = 0.30
    close_successes: int = 50


@dataclass
class _BreakerState:
    events: deque[tuple[datetime, bool]] = field(default_factory=deque)
    state: str = "closed"
    opened_at: datetime | None = None
    half_open_ok: int = 0
    half_open_errors: int = 0


class CircuitBreaker:
    """Per-key (app) breaker: closed -> open -> half-open -> closed or open again."""

    def __init__(self, clock: Clock, config: BreakerConfig | None = None) -> None:
        self._clock = clock
        self.config = config or BreakerConfig()
        self._states: dict[str, _BreakerState] = {}

    def state(self, key: str) -> str:
        st = self._states.get(key)
        if st is None:
            return "closed"
        self._maybe_half_open(st)
        return st.state

    def _maybe_half_open(self, st: _BreakerState) -> None:
        if (
            st.state == "open"
            and st.opened_at is not None
            and (self._clock.now() - st.opened_at).total_seconds() >= self.config.cooldown
        ):
            st.state, st.half_open_ok, st.half_open_errors = "half-open", 0, 0

    def allow(self, key: str) -> bool:
        return self.state(key) != "open"

    def record(self, key: str, ok: bool) -> None:
        st = self._states.setdefault(key, _BreakerState())
        now = self._clock.now()
        self._maybe_half_open(st)
        cfg = self.config
        if st.state == "half-open":
            if ok:
                st.half_open_ok += 1
            else:
                st.half_open_errors += 1
            total = st.half_open_ok + st.half_open_errors
            if (
                st.half_open_errors >= cfg.half_open_errors
                and st.half_open_errors / total >= cfg.half_open_rate
            ):
                st.state, st.opened_at = "open", now
            elif st.half_open_ok >= cfg.close_successes:
                st.state, st.events = "closed", deque()
            return
        st.events.append((now, ok))
        horizon = now - timedelta(seconds=cfg.window)
        while st.events and st.events[0][0] < horizon:
            st.events.popleft()
        errors = sum(not good for _, good in st.events)
        if errors >= cfg.open_errors and errors / len(st.events) >= cfg.open_rate:
            st.state, st.opened_at = "open", now
            log.warning("sync circuit for app %s opened (%d errors)", key, errors)


class SyncCaller:
    """Sends one sync event to its webhooks concurrently and collects the answers.

    With ``cache_ttl`` set, answers are cached per webhook and body for that many seconds of
    the kit's ``clock`` (failures for ``failure_ttl``), at most ``cache_size`` of them: the
    least recently used answer is dropped first.
    """

    def __init__(
        self,
        *,
        router: TransportRouter,
        clock: Clock,
        message: MessageFactory,
        cache_ttl: float | None = None,
        failure_ttl: float = 1.0,
        breaker: CircuitBreaker | None = None,
        body_limit: int = 1 << 20,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 1:
            raise ConfigurationError("cache_size: must be an integer >= 1", field="cache_size")
        self._router = router
        self._clock = clock
        self._message = message
        self._cache_ttl = cache_ttl
        self._failure_ttl = failure_ttl
        self.breaker = breaker
        self._body_limit = body_limit
        self._cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], tuple[datetime, SyncResponse]] = OrderedDict()
        self.calls = 0

    @property
    def cache_len(self) -> int:
        """How many answers the cache holds now (expired ones included until touched)."""
        return len(self._cache)

    async def call_all(
        self, event: str, groups: list[tuple[bytes, list[tuple[Webhook, App]]]]
    ) -> list[SyncResponse]:
        tasks = [
            self.call(event, body, webhook, app)
            for body, targets in groups
            for webhook, app in targets
        ]
        return list(await asyncio.gather(*tasks))

    def _cached(self, key: tuple[str, str]) -> SyncResponse | None:
        hit = self._cache.get(key)
        if hit is None:
            return None
        if hit[0] <= self._clock.now():
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return _replace_cached(hit[1])

    def _remember(self, key: tuple[str, str], response: SyncResponse) -> None:
        assert self._cache_ttl is not None
        ttl = self._cache_ttl if response.error is None else self._failure_ttl
        self._cache[key] = (self._clock.now() + timedelta(seconds=ttl), response)
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def call(self, event: str, body: bytes, webhook: Webhook, app: App) -> SyncResponse:
        key = (webhook.id, hashlib.sha256(body).hexdigest())
        if self._cache_ttl is not None:
            hit = self._cached(key)
            if hit is not None:
                return hit
        if self.breaker is not None and not self.breaker.allow(app.id):
            return SyncResponse(webhook.id, app.id, None, skipped="circuit open for this app")
        scheme = webhook.target_url.split(":", 1)[0].lower()
        if scheme not in ("http", "https"):
            return SyncResponse(
                webhook.id, app.id, None, skipped=f"sync webhooks need HTTP(S), not {scheme}"
            )
        response = await self._send(event, body, webhook, app)
        if self.breaker is not None:
            self.breaker.record(app.id, response.error is None)
        if self._cache_ttl is not None:
            self._remember(key, response)
        return response

    async def _send(self, event: str, body: bytes, webhook: Webhook, app: App) -> SyncResponse:
        self.calls += 1
        now = self._clock.now()
        payload = Payload(id=new_id(), event=event, body=body, created_at=now)
        try:
            message = self._message(payload, webhook, payload.id, body_limit=self._body_limit)
            result = await self._router.for_url(webhook.target_url).send(message)
        except (DeliveryError, WebhookKitError) as exc:
            log.warning("sync %s to webhook %s failed: %s", event, webhook.id, exc)
            return SyncResponse(webhook.id, app.id, None, error=f"{type(exc).__name__}: {exc}")
        if not result.ok:
            return SyncResponse(
                webhook.id, app.id, None, result.status_code, error=f"HTTP {result.status_code}"
            )
        if result.body is None:
            return SyncResponse(webhook.id, app.id, None, result.status_code, error="no body read")
        if len(result.body) >= self._body_limit:
            return SyncResponse(
                webhook.id, app.id, None, result.status_code, error="answer too large"
            )
        try:
            data = json.loads(result.body)
        except (ValueError, RecursionError):
            return SyncResponse(webhook.id, app.id, None, result.status_code, error="not JSON")
        return SyncResponse(webhook.id, app.id, data, result.status_code)


def _replace_cached(response: SyncResponse) -> SyncResponse:
    return SyncResponse(
        response.webhook_id,
        response.app_id,
        response.data,
        response.status_code,
        response.error,
        cached=True,
        skipped=response.skipped,
    )
