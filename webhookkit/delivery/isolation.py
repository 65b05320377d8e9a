"""Per-endpoint isolation: concurrency limits and a breaker that holds deliveries.

An endpoint is one webhook. A slow or dead endpoint may occupy at most ``per_endpoint``
send slots; while it is full the scheduler claims none of its deliveries (they stay pending
in the store), so deliveries to every other endpoint keep flowing. After
``failure_threshold`` consecutive connection errors, timeouts or 5xx answers the endpoint's
breaker opens: its deliveries stay pending (no attempt is recorded, no retry budget is spent)
until ``cooldown`` has passed and one probe delivery succeeds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..config import IsolationConfig, RateLimit
from .records import Delivery

__all__ = ["EndpointGate", "IsolationConfig"]


@dataclass
class _Bucket:
    """A token bucket: ``tokens`` as of ``at``, refilled at the limit's rate."""

    limit: RateLimit
    tokens: float
    at: datetime


@dataclass
class _Endpoint:
    active: int = 0
    held: deque[Delivery] = field(default_factory=deque)
    failures: int = 0
    open_until: datetime | None = None
    probing: bool = False
    bucket: _Bucket | None = None
    #: Rate-limited until then (no token left).
    throttled_until: datetime | None = None


class EndpointGate:
    """Decides, per claimed delivery, whether to send now, hold locally or postpone."""

    def __init__(self, config: IsolationConfig | None = None) -> None:
        self.config = config or IsolationConfig()
        self._endpoints: dict[str, _Endpoint] = {}
        self._holding: dict[str, _Endpoint] = {}  # endpoints with held deliveries, in order
        self.held_count = 0
        self.postponed = 0
        self.breaker_opened = 0
        self.breaker_closed = 0
        self.throttled = 0

    def _ep(self, key: str) -> _Endpoint:
        ep = self._endpoints.get(key)
        if ep is None:  # setdefault() would build an _Endpoint on every call
            ep = self._endpoints[key] = _Endpoint()
        return ep

    def state(self, key: str, now: datetime) -> str:
        ep = self._endpoints.get(key)
        if ep is None or ep.open_until is None:
            return "closed"
        return "open" if now < ep.open_until else "half-open"

    def blocked(self, now: datetime) -> set[str]:
        """Endpoints whose deliveries must not be claimed now: full, held back, or open."""
        out = set()
        for key, ep in self._endpoints.items():
            state = self.state(key, now)
            if (
                ep.held
                or ep.active >= self.config.per_endpoint
                or state == "open"
                or (state == "half-open" and ep.probing)
                or (ep.throttled_until is not None and ep.throttled_until > now)
            ):
                out.add(key)
        return out

    def next_reopen(self, now: datetime) -> datetime | None:
        """The earliest time an open breaker lets a probe through, or a rate-limited
        endpoint gets its next token."""
        times = [
            when
            for ep in self._endpoints.values()
            for when in (ep.open_until, ep.throttled_until)
            if when is not None and when > now
        ]
        return min(times, default=None)

    def _token(self, ep: _Endpoint, limit: RateLimit | None, now: datetime) -> bool:
        """Take one send token of the endpoint's rate limit; False (and the time of the next
        token in ``ep.throttled_until``) when none is left."""
        if limit is None:
            ep.bucket = ep.throttled_until = None
            return True
        bucket = ep.bucket
        if bucket is None or bucket.limit != limit:
            bucket = ep.bucket = _Bucket(limit, float(limit.capacity), now)
        elapsed = (now - bucket.at).total_seconds()
        if elapsed > 0:
            bucket.tokens = min(float(limit.capacity), bucket.tokens + elapsed * limit.per_second)
            bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            ep.throttled_until = None
            return True
        wait = (1 - bucket.tokens) / limit.per_second
        ep.throttled_until = now + timedelta(seconds=wait)
        self.throttled += 1
        return False

    def throttle_time(self, key: str) -> datetime | None:
        ep = self._endpoints.get(key)
        return ep.throttled_until if ep else None

    def admit(
        self, delivery: Delivery, now: datetime, slots_free: bool, limit: RateLimit | None = None
    ) -> str:
        """``"send"``, ``"hold"`` (wait locally for a slot), ``"excess"`` (the endpoint's local
        queue is full: back to the store now), ``"throttle"`` (its rate limit has no token:
        back to the store until the next one) or ``"postpone"`` (breaker open: back to the
        store until it may probe) for a delivery just claimed."""
        ep = self._ep(delivery.webhook_id)
        state = self.state(delivery.webhook_id, now)
        if state == "open":
            self.postponed += 1
            return "postpone"
        if ep.throttled_until is not None and ep.throttled_until > now:
            return "throttle"
        if state == "half-open" and not ep.probing and slots_free:
            if not self._token(ep, limit, now):
                return "throttle"
            ep.probing = True
            ep.active += 1
            return "send"
        if state == "closed" and slots_free and ep.active < self.config.per_endpoint:
            if not self._token(ep, limit, now):
                return "throttle"
            ep.active += 1
            return "send"
        if len(ep.held) >= self.config.per_endpoint:
            # A full local queue: holding more would only keep the claim room from endpoints
            # that can take deliveries now (a hanging endpoint must not stall the others).
            return "excess"
        ep.held.append(delivery)
        self._holding[delivery.webhook_id] = ep
        self.held_count += 1
        return "hold"

    def next_ready(self, now: datetime) -> Delivery | None:
        """A held delivery whose endpoint may take one more send now."""
        for key, ep in self._holding.items():  # only endpoints holding deliveries
            state = self.state(key, now)
            probe = state == "half-open" and not ep.probing
            if not probe and (state != "closed" or ep.active >= self.config.per_endpoint):
                continue
            if not self._token(ep, ep.bucket.limit if ep.bucket else None, now):
                continue  # rate-limited: the loop wakes when the next token comes
            ep.probing = ep.probing or probe
            ep.active += 1
            self.held_count -= 1
            delivery = ep.held.popleft()
            if not ep.held:
                del self._holding[key]
            return delivery
        return None

    def release_blocked(self, now: datetime) -> list[Delivery]:
        """Held deliveries of endpoints whose breaker is open: they go back to the store."""
        out: list[Delivery] = []
        for key, ep in list(self._holding.items()):
            if self.state(key, now) == "open":
                out += ep.held
                self.held_count -= len(ep.held)
                ep.held.clear()
                del self._holding[key]
        return out

    def take_all_held(self) -> list[Delivery]:
        out = [d for ep in self._endpoints.values() for d in ep.held]
        for ep in self._endpoints.values():
            ep.held.clear()
        self._holding.clear()
        self.held_count = 0
        return out

    def done(
        self, key: str, healthy: bool | None, now: datetime, retry_at: datetime | None = None
    ) -> str | None:
        """A send finished; ``healthy`` is None when nothing was sent; ``retry_at`` is when
        the failed delivery is due again, if it is retried.

        An opening breaker stays open for ``cooldown`` or until the failed delivery's own next
        try, whichever comes first: that delivery is then the probe, so the breaker never
        moves a lone failing delivery off its retry schedule. Returns ``"open"`` or
        ``"closed"`` when the breaker changed state.
        """
        ep = self._ep(key)
        ep.active = max(ep.active - 1, 0)
        probing, ep.probing = ep.probing, False
        if healthy is None:
            return None
        if healthy:
            was_open = ep.open_until is not None
            ep.failures, ep.open_until = 0, None
            if was_open:
                self.breaker_closed += 1
                return "closed"
            return None
        ep.failures += 1
        if probing or ep.failures >= self.config.failure_threshold:
            until = now + self.config.cooldown
            if retry_at is not None and retry_at < until:
                until = max(retry_at, now)
            opened = ep.open_until is None
            ep.open_until = until
            if opened:
                self.breaker_opened += 1
                return "open"
        return None

    def open_count(self, now: datetime) -> int:
        """How many endpoints' breakers are open now."""
        return sum(1 for key in self._endpoints if self.state(key, now) == "open")

    def reopen_time(self, key: str) -> datetime | None:
        ep = self._endpoints.get(key)
        return ep.open_until if ep else None
