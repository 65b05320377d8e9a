"""Time as the scheduler sees it: a protocol so tests can swap in :class:`FakeClock`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def wait(self, event: asyncio.Event, timeout: float | None) -> None:
        """Return when ``event`` is set or ``timeout`` seconds of this clock have passed."""
        ...


class SystemClock:
    """Wall-clock time and real sleeping."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def wait(self, event: asyncio.Event, timeout: float | None) -> None:
        if timeout is not None and timeout <= 0:
            return
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            pass

    def __repr__(self) -> str:
        return "SystemClock()"
