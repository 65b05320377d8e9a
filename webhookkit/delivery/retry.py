"""Retry policies built from tenacity's wait and stop strategies.

The default follows Saleor's documents: a delivery is tried at most five times, waiting
``10 * 2**n`` seconds before retry ``n`` (10, 20, 40, 80 s). Saleor's code makes one more
attempt (160 s later); :meth:`RetryPolicy.saleor` takes ``max_attempts=6`` for that.
"""

from __future__ import annotations

import email.utils
import math
import re
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
#: The longest wait :func:`parse_retry_after` reports (a year); policies clamp further.
RETRY_AFTER_CEILING = 365 * 24 * 3600.0
# delay-seconds is ASCII digits (RFC 9110); a decimal fraction is tolerated. str.isdigit()
# would also accept "²" or "٣", which float() refuses.
_DELAY = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)
_MAX_HEADER = 64


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one failed attempt produced, as far as retrying is concerned."""

    status_code: int | None
    retryable: bool
    retry_after: float | None = None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP-date.

    Never raises: a missing, negative or unparsable value gives None; a date in the past gives
    0; anything else is clamped to ``[0, RETRY_AFTER_CEILING]`` (always finite).
    """
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > _MAX_HEADER:
        return None
    if _DELAY.fullmatch(value):
        seconds = float(value)
        return min(seconds, RETRY_AFTER_CEILING) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CEILING)


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
        _check_attempts(max_attempts)
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
        if not isinstance(self.wait, wait_base) or not isinstance(self.stop, stop_base):
            raise ConfigurationError(
                "retry: wait and stop must be tenacity wait/stop strategies", field="retry"
            )
        statuses = self.retry_statuses
        if (
            isinstance(statuses, str | bytes)
            or not isinstance(statuses, Iterable)
            or not all(_is_int(s) and 400 <= s < 500 for s in statuses)
        ):
            raise ConfigurationError(
                "retry: retry_statuses may only add 4xx codes (5xx are always retried)",
                field="retry",
            )
        if not isinstance(statuses, frozenset):
            object.__setattr__(self, "retry_statuses", frozenset(statuses))
        if not _is_number(self.max_retry_after) or not 1 <= self.max_retry_after < math.inf:
            raise ConfigurationError(
                "retry: max_retry_after must be a finite number of seconds >= 1", field="retry"
            )
        for name in ("honor_retry_after", "deactivate_on_gone"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"retry: {name} must be True or False", field="retry")
        if self.max_age is not None and (
            not isinstance(self.max_age, timedelta) or self.max_age <= timedelta(0)
        ):
            raise ConfigurationError(
                "retry: max_age must be a positive timedelta or None", field="retry"
            )

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
        _check_attempts(max_attempts)
        if not _is_number(jitter) or not 0 <= jitter < math.inf:
            raise ConfigurationError("retry: jitter must be a finite number >= 0", field="retry")
        if isinstance(retry_statuses, str | bytes) or not isinstance(retry_statuses, Iterable):
            raise ConfigurationError(
                "retry: retry_statuses must be a list of 4xx codes", field="retry"
            )
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


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def _check_attempts(max_attempts: object) -> None:
    if (
        isinstance(max_attempts, bool)
        or not isinstance(max_attempts, int)
        or not (1 <= max_attempts <= 1000)
    ):
        raise ConfigurationError(
            "retry: max_attempts must be an integer from 1 to 1000", field="retry"
        )
