"""Test doubles shipped as features: a clock you move by hand and an in-memory transport."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from .transports.base import OutboundMessage, Transport, TransportResult

__all__ = ["FakeClock", "MemoryTransport"]


class FakeClock:
    """A clock that only moves when told: ``await clock.advance(10)`` runs due retries."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start if start is not None else datetime(2026, 1, 1, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock: start must be timezone-aware")
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    async def wait(self, event: asyncio.Event, timeout: float | None) -> None:
        if (timeout is not None and timeout <= 0) or event.is_set():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = None
        if timeout is not None:
            entry = (self._now + timedelta(seconds=timeout), waiter)
            self._sleepers.append(entry)
        event_task = asyncio.ensure_future(_until_set(event))
        try:
            await asyncio.wait([waiter, event_task], return_when=asyncio.FIRST_COMPLETED)
        finally:
            event_task.cancel()
            waiter.cancel()
            if entry is not None:
                with contextlib.suppress(ValueError):
                    self._sleepers.remove(entry)

    async def advance(self, seconds: float) -> None:
        """Move time forward and wake everything whose wait has run out."""
        if seconds < 0:
            raise ValueError("FakeClock: cannot go back in time")
        self._now += timedelta(seconds=seconds)
        for deadline, waiter in list(self._sleepers):
            if deadline <= self._now and not waiter.done():
                waiter.set_result(None)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"FakeClock({self._now.isoformat()})"


async def _until_set(event: asyncio.Event) -> None:
    await event.wait()


Responder = Callable[[OutboundMessage], int]


class MemoryTransport(Transport):
    """Keeps messages in ``sent`` instead of sending; answers with scripted status codes.

    ``statuses`` are used in order, then ``default_status`` for every later message.
    """

    schemes = frozenset({"memory"})

    def __init__(
        self,
        statuses: Iterable[int] = (),
        *,
        default_status: int = 200,
        responder: Responder | None = None,
    ) -> None:
        self.sent: list[OutboundMessage] = []
        self._statuses = list(statuses)
        self._default = default_status
        self._responder = responder

    async def send(self, message: OutboundMessage) -> TransportResult:
        self.sent.append(message)
        if self._responder is not None:
            status = self._responder(message)
        elif self._statuses:
            status = self._statuses.pop(0)
        else:
            status = self._default
        return TransportResult(ok=200 <= status < 300, status_code=status, retryable=status >= 500)

    def __repr__(self) -> str:
        return f"MemoryTransport(sent={len(self.sent)})"


# Helpers for host test suites (a recording receiver, assert_delivered, run_retries).
from .testing_fixtures import (  # noqa: E402 - re-exported below the test doubles
    ReceivedRequest,
    RecordingReceiver,
    assert_delivered,
    run_retries,
)

__all__ += ["ReceivedRequest", "RecordingReceiver", "assert_delivered", "run_retries"]
