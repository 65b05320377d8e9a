"""Retry policies built from tenacity's wait and stop strategies.

The default follows Saleor's documents: a delivery is tried at most five times, waiting
``10 * 2**n`` seconds before retry ``n`` (10, 20, 40, 80 s). Saleor's code makes one more
attempt (160 s later); :meth:`RetryPolicy.saleor` takes ``max_attempts=6`` for that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import tenacity
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from ..exceptions import ConfigurationError

__all__ = ["SALEOR_DOCUMENTED_ATTEMPTS", "RetryPolicy"]

#: "The delivery is triggered a maximum of five times" (Saleor's documents).
SALEOR_DOCUMENTED_ATTEMPTS = 5


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a failed delivery again: ``wait`` gives the delay, ``stop`` gives up.

    Both are tenacity strategies and compose with ``|`` and ``+``, for example
    ``stop=stop_after_attempt(5) | stop_after_delay(3600)``.
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
