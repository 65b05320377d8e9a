"""Configuration values grouped by concern, each validated where it is defined.

These are frozen dataclasses shared by several parts (the dispatcher, the scheduler, the
transports and the stores), so they live here, at the package top, and no part imports another
part only for a value type. httpx's ``Timeout`` and ``Limits`` are the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .exceptions import InvalidFieldError

if TYPE_CHECKING:
    from .delivery.sync import BreakerConfig

__all__ = ["DeliveryConfig", "IsolationConfig", "RateLimit", "SyncConfig", "Timeouts"]


def _number(value: Any, name: str, *, minimum: float, inclusive: bool = False) -> float:
    """``value`` as a finite float above ``minimum`` (or at it when ``inclusive``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidFieldError(
            f"{name}: must be a number, got {type(value).__name__}", field=name.split(".")[0]
        )
    number = float(value)
    low_ok = number >= minimum if inclusive else number > minimum
    if not math.isfinite(number) or not low_ok:
        bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
        raise InvalidFieldError(
            f"{name}: must be a finite number {bound}, got {value!r}", field=name.split(".")[0]
        )
    return number


def _integer(value: Any, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidFieldError(
            f"{name}: must be an integer >= {minimum}, got {value!r}", field=name.split(".")[0]
        )
    return value


#: No duration option goes beyond this: a clock plus it must stay a valid datetime.
_MAX_DURATION = timedelta(days=3650)


def _duration(value: Any, name: str) -> timedelta:
    """A strictly positive ``timedelta`` of at most ten years; numbers are refused so units
    are never guessed."""
    if not isinstance(value, timedelta):
        raise InvalidFieldError(
            f"{name}: must be a datetime.timedelta (e.g. timedelta(seconds=30)), "
            f"got {type(value).__name__}",
            field=name.split(".")[0],
        )
    if value <= timedelta(0) or value > _MAX_DURATION:
        raise InvalidFieldError(
            f"{name}: must be positive and at most {_MAX_DURATION.days} days, got {value!r}",
            field=name.split(".")[0],
        )
    return value


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Connect and total budget in seconds (Saleor: 2 s to connect, 20 s in all)."""

    connect: float = 2.0
    total: float = 20.0

    def __post_init__(self) -> None:
        connect = _number(self.connect, "timeouts.connect", minimum=0)
        total = _number(self.total, "timeouts.total", minimum=0)
        if connect > total:
            raise InvalidFieldError(
                f"timeouts: need 0 < connect ({self.connect}) <= total ({self.total})",
                field="timeouts",
            )


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``per_second`` deliveries a second to one webhook, with bursts of up to
    ``burst`` (default: one second's worth, at least 1). A token bucket: deliveries over the
    limit stay pending in the store, are never failed and spend no retry budget."""

    per_second: float
    burst: int | None = None

    def __post_init__(self) -> None:
        # At least one delivery in 1,000 s: the wait for a token stays a sane duration.
        _number(self.per_second, "rate_limit.per_second", minimum=0.001, inclusive=True)
        if self.per_second > 100_000:
            raise InvalidFieldError("rate_limit.per_second: at most 100000", field="rate_limit")
        if self.burst is not None:
            _integer(self.burst, "rate_limit.burst", minimum=1)

    @property
    def capacity(self) -> int:
        return self.burst if self.burst is not None else max(1, math.ceil(self.per_second))

    def to_json(self) -> dict[str, float | int | None]:
        return {"per_second": self.per_second, "burst": self.burst}


@dataclass(frozen=True, slots=True)
class IsolationConfig:
    """Per-endpoint fairness: at most ``per_endpoint`` sends in flight to one webhook; after
    ``failure_threshold`` unhealthy answers in a row its breaker opens for ``cooldown``."""

    per_endpoint: int = 10
    failure_threshold: int = 5
    cooldown: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        _integer(self.per_endpoint, "isolation.per_endpoint", minimum=1)
        _integer(self.failure_threshold, "isolation.failure_threshold", minimum=1)
        _duration(self.cooldown, "isolation.cooldown")


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """How the scheduler claims and sends asynchronous deliveries.

    - ``concurrency``: sends in flight at once in this process;
    - ``batch_size``: deliveries one claim may take from the store, and how many this process
      holds at most, in flight or waiting in its local queue (refilled before it runs dry);
      ``None`` picks ``4 * concurrency``: a claim then starts while a concurrency's worth
      still waits, which covers a claim's round trip to a busy database;
    - ``lease``: how long a claimed delivery is reserved for this process; a crashed worker's
      deliveries come back when it ends;
    - ``poll_interval``: seconds between looks at the store for work queued by other processes
      (``None``: 1 s on durable stores, never on the memory store);
    - ``flush_interval``: durable stores write finished attempts in batches. ``0`` (the
      default): a write starts as soon as the previous one ended, with every attempt finished
      meanwhile (group commit: batches grow with the load and no attempt waits for a timer);
      a positive value makes each attempt wait up to that many seconds for others. A crash
      before the write only lets the lease run out (at-least-once);
    - ``max_queued``: back-pressure: ``trigger`` waits while the store holds this many pending
      deliveries (``None``: never waits);
    - ``drain_timeout``: seconds ``aclose`` waits for sends in flight;
    - ``timeouts``: default per-attempt budget (a webhook's own ``timeouts`` win);
    - ``isolation``: per-endpoint limits and breaker.
    """

    concurrency: int = 100
    batch_size: int | None = None
    lease: timedelta = timedelta(minutes=5)
    poll_interval: float | None = None
    flush_interval: float = 0.0
    max_queued: int | None = 100_000
    drain_timeout: float = 30.0
    timeouts: Timeouts = field(default_factory=Timeouts)
    isolation: IsolationConfig = field(default_factory=IsolationConfig)
    #: A webhook failing without a break this long is disabled (Svix: 5 days; None: never);
    #: warnings at these fractions of it first (Outpost warns at 50/70/90 %).
    disable_after: timedelta | None = timedelta(days=5)
    disable_warnings: tuple[float, ...] = (0.5, 0.7, 0.9)

    def __post_init__(self) -> None:
        _integer(self.concurrency, "delivery.concurrency", minimum=1)
        if self.disable_after is not None:
            _duration(self.disable_after, "delivery.disable_after")
        if not isinstance(self.disable_warnings, tuple) or not all(
            isinstance(f, int | float) and not isinstance(f, bool) and 0 < f < 1
            for f in self.disable_warnings
        ):
            raise InvalidFieldError(
                "delivery.disable_warnings: a tuple of fractions between 0 and 1",
                field="delivery",
            )
        if self.batch_size is not None:
            _integer(self.batch_size, "delivery.batch_size", minimum=1)
        _duration(self.lease, "delivery.lease")
        if self.lease < timedelta(seconds=1):
            raise InvalidFieldError(
                f"delivery.lease: must be at least 1 second, got {self.lease!r}", field="delivery"
            )
        if self.poll_interval is not None:
            _number(self.poll_interval, "delivery.poll_interval", minimum=0.001, inclusive=True)
        _number(self.flush_interval, "delivery.flush_interval", minimum=0, inclusive=True)
        if self.flush_interval > 10:
            raise InvalidFieldError("delivery.flush_interval: at most 10 seconds", field="delivery")
        if self.max_queued is not None:
            _integer(self.max_queued, "delivery.max_queued", minimum=1)
        _number(self.drain_timeout, "delivery.drain_timeout", minimum=0, inclusive=True)
        if not isinstance(self.timeouts, Timeouts):
            raise InvalidFieldError("delivery.timeouts: must be a Timeouts", field="delivery")
        if not isinstance(self.isolation, IsolationConfig):
            raise InvalidFieldError(
                "delivery.isolation: must be an IsolationConfig", field="delivery"
            )

    @property
    def claim_size(self) -> int:
        return self.batch_size if self.batch_size is not None else 4 * self.concurrency


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """Sync webhooks (``kit.request``): Saleor's optional response cache (``cache_ttl``
    seconds, ``None``: off; at most ``cache_size`` answers kept) and a per-app ``breaker``
    (``None``: off)."""

    cache_ttl: float | None = None
    cache_size: int = 10_000
    breaker: BreakerConfig | None = None

    def __post_init__(self) -> None:
        if self.cache_ttl is not None:
            _number(self.cache_ttl, "sync.cache_ttl", minimum=0)
        _integer(self.cache_size, "sync.cache_size", minimum=1)
        if self.breaker is not None:
            from .delivery.sync import BreakerConfig

            if not isinstance(self.breaker, BreakerConfig):
                raise InvalidFieldError("sync.breaker: must be a BreakerConfig", field="sync")
