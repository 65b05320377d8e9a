"""Retry policies built from tenacity's wait and stop strategies.

The default follows Saleor's documents: a delivery is tried at most five times, waiting
``10 * 2**n`` seconds before retry ``n`` (10, 20, 40, 80 s). Saleor's code makes one more
attempt (160 s later); :meth:`RetryPolicy.saleor` takes ``max_attempts=6`` for that.
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import tenacity
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from ..exceptions import ConfigurationError

__all__ = ["SALEOR_DOCUMENTED_ATTEMPTS", "Outcome", "RetryPolicy", "parse_retry_after"]

#: "The delivery is triggered a maximum of five times" (Saleor's documents).
SALEOR_DOCUMENTED_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one failed attempt produced, as far as retrying is concerned."""

    status_code: int | None
    retryable: bool
    retry_after: float | None = None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a failed delivery again: ``wait`` gives the delay, ``stop`` gives up.

    Both are tenacity strategies and compose with ``|`` and ``+``, for example
    ``stop=stop_after_attempt(5) | stop_after_delay(3600)``. Beyond Saleor's rules (retry
    connection errors, timeouts and 5xx; never 3xx/4xx):

    - ``retry_statuses``: more statuses to retry, such as 408 and 429;
    - ``honor_retry_after``: on 429/503 wait what the receiver's ``Retry-After`` asks,
      clamped to ``[1 s, max_retry_after]``;
    - ``deactivate_on_gone``: a 410 Gone deactivates the webhook (its later events are not
      queued);
    - ``max_age``: a delivery older than this fails instead of being retried.
    """

    wait: wait_base = field(default_factory=lambda: tenacity.wait_exponential(multiplier=10))
    stop: stop_base = field(
        default_factory=lambda: tenacity.stop_after_attempt(SALEOR_DOCUMENTED_ATTEMPTS)
    )

    @classmethod
    def saleor(cls, max_attempts: int = SALEOR_DOCUMENTED_ATTEMPTS) -> RetryPolicy:
        """Saleor's schedule (10 * 2**n s, no jitter) with ``max_attempts`` tries in all."""
        if max_attempts < 1:
            raise ConfigurationError("retry: max_attempts must be at least 1", field="retry")
        return cls(
            wait=tenacity.wait_exponential(multiplier=10),
            stop=tenacity.stop_after_attempt(max_attempts),
        )

    retry_statuses: frozenset[int] = frozenset()
    honor_retry_after: bool = False
    max_retry_after: float = 3600.0
    deactivate_on_gone: bool = False
    max_age: timedelta | None = None

    def __post_init__(self) -> None:
        if not all(400 <= s < 500 for s in self.retry_statuses):
            raise ConfigurationError(
                "retry: retry_statuses may only add 4xx codes (5xx are always retried)",
                field="retry",
            )
        if self.max_retry_after < 1:
            raise ConfigurationError("retry: max_retry_after must be >= 1 s", field="retry")

    @classmethod
    def status_aware(
        cls,
        max_attempts: int = SALEOR_DOCUMENTED_ATTEMPTS,
        *,
        retry_statuses: Iterable[int] = (408, 429),
        max_age: timedelta | None = None,
        jitter: float = 0.0,
    ) -> RetryPolicy:
        """Saleor's schedule plus 408/429 retried, ``Retry-After`` honoured, 410 deactivating
        the webhook; ``jitter`` adds up to that many random seconds to each wait."""
        wait: wait_base = tenacity.wait_exponential(multiplier=10)
        if jitter > 0:
            wait = wait + tenacity.wait_random(0, jitter)
        return cls(
            wait=wait,
            stop=tenacity.stop_after_attempt(max_attempts),
            retry_statuses=frozenset(retry_statuses),
            honor_retry_after=True,
            deactivate_on_gone=True,
            max_age=max_age,
        )

    def is_retryable(self, outcome: Outcome) -> bool:
        return outcome.retryable or outcome.status_code in self.retry_statuses

    def decide(self, outcome: Outcome, attempts_made: int, elapsed: float) -> float | None:
        """Seconds until the next try after this failed ``outcome``, or None to give up."""
        if not self.is_retryable(outcome):
            return None
        delay = self.next_delay(attempts_made, elapsed)
        if delay is None:
            return None
        if (
            self.honor_retry_after
            and outcome.retry_after is not None
            and outcome.status_code in (429, 503)
        ):
            delay = min(max(outcome.retry_after, 1.0), self.max_retry_after)
        if self.max_age is not None and elapsed + delay > self.max_age.total_seconds():
            return None
        return delay

    @classmethod
    def never(cls) -> RetryPolicy:
        """One attempt only."""
        return cls(wait=tenacity.wait_none(), stop=tenacity.stop_after_attempt(1))

    def next_delay(self, attempts_made: int, elapsed: float) -> float | None:
        """Seconds until the next try after ``attempts_made`` tries spanning ``elapsed``
        seconds since the delivery was created, or None to give up."""
        state = tenacity.RetryCallState(cast(Any, None), None, (), {})
        state.attempt_number = attempts_made
        state.outcome_timestamp = state.start_time + max(elapsed, 0.0)
        state.idle_for = 0.0
        if self.stop(state):
            return None
        return max(float(self.wait(state)), 0.0)

    def __repr__(self) -> str:
        return f"RetryPolicy(wait={self.wait!r}, stop={self.stop!r})"
