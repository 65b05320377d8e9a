"""Test helpers for hosts: a recording loopback receiver, ``assert_delivered`` and
``run_retries``. Re-exported by :mod:`webhookkit.testing`; the pytest fixtures built on them
live in :mod:`webhookkit.pytest_plugin`."""

from __future__ import annotations

import asyncio
import json as jsonlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from aiohttp import web

from .events import EventRegistry
from .exceptions import WebhookKitError

if TYPE_CHECKING:
    from .dispatcher import WebhookKit
    from .testing import FakeClock, MemoryTransport

__all__ = ["ReceivedRequest", "RecordingReceiver", "assert_delivered", "run_retries"]


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as a :class:`RecordingReceiver` saw it (headers in wire order)."""

    method: str
    url: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        lower = name.lower()
        return next((v for k, v in self.headers if k.lower() == lower), None)

    def json(self) -> Any:
        return jsonlib.loads(self.body)

    @property
    def event(self) -> str | None:
        return self.header("Saleor-Event")


@dataclass
class RecordingReceiver:
    """A real aiohttp server on 127.0.0.1 (a free port) that records every request.

    ``statuses`` are answered in order, then ``default_status``. Use ``async with`` or
    ``await start()`` / ``await stop()``; ``url`` is ``http://127.0.0.1:PORT``.
    """

    statuses: list[int] = field(default_factory=list)
    default_status: int = 200
    received: list[ReceivedRequest] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = field(default=None, repr=False)
    _arrived: asyncio.Condition | None = field(default=None, repr=False)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(
            ReceivedRequest(
                method=request.method,
                url=self.url + request.path_qs,
                path=request.path_qs,
                headers=tuple((k.decode(), v.decode()) for k, v in request.raw_headers),
                body=body,
            )
        )
        if self._arrived is not None:
            async with self._arrived:
                self._arrived.notify_all()
        status = self.statuses.pop(0) if self.statuses else self.default_status
        return web.Response(status=status, text="ok" if status < 300 else "not ok")

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._arrived = asyncio.Condition()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def wait_for(self, count: int = 1, *, timeout: float = 10.0) -> list[ReceivedRequest]:
        """Wait until at least ``count`` requests have arrived; returns them all."""
        assert self._arrived is not None, "RecordingReceiver: start() it first"
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)
        return list(self.received)


@dataclass(frozen=True)
class _Seen:
    event: str
    url: str
    body: bytes
    original: Any


def _seen(source: Any) -> list[_Seen]:
    # Imported here: webhookkit.testing re-exports this module's names at its end.
    from .testing import MemoryTransport

    if isinstance(source, MemoryTransport):
        return [_Seen(m.event, m.url, m.body, m) for m in source.sent]
    if isinstance(source, RecordingReceiver):
        return [_Seen(r.event or "", r.url, r.body, r) for r in source.received]
    router = getattr(source, "router", None)
    if router is not None:
        memories = {id(t): t for t in router.mounted.values() if isinstance(t, MemoryTransport)}
        if memories:
            return [s for t in memories.values() for s in _seen(t)]
        raise TypeError(
            "assert_delivered: this kit has no MemoryTransport mounted; pass the transport "
            "or the RecordingReceiver that got the webhooks"
        )
    raise TypeError(
        f"assert_delivered: expected a WebhookKit, MemoryTransport or RecordingReceiver, "
        f"got {type(source).__name__}"
    )


def _event_value(source: Any, event: str) -> str:
    registry = getattr(source, "registry", None)
    if not isinstance(registry, EventRegistry):
        registry = EventRegistry.saleor()
    try:
        return registry.get(event).value
    except WebhookKitError:
        return event


def _describe(items: Sequence[_Seen]) -> str:
    if not items:
        return "nothing was sent"
    shown = [f"  {s.event} -> {s.url}: {s.body[:120]!r}" for s in items[:20]]
    more = [f"  ... and {len(items) - 20} more"] if len(items) > 20 else []
    return "sent:\n" + "\n".join(shown + more)


_ANY: Any = object()


def assert_delivered(
    source: WebhookKit | MemoryTransport | RecordingReceiver,
    event: str,
    *,
    to: str | None = None,
    body: bytes | str | None = None,
    json: Any = _ANY,
    count: int | None = None,
) -> list[Any]:
    """Assert that ``event`` was sent (at least once, or exactly ``count`` times) and return
    the matching messages (``OutboundMessage`` or :class:`ReceivedRequest`).

    ``source``: a kit (its mounted :class:`~webhookkit.testing.MemoryTransport`), a transport
    or a receiver. ``to``: the target URL, or a path starting with ``/``. ``body``: the exact
    bytes; ``json``: the body parsed as JSON equals this.
    """
    seen = _seen(source)
    value = _event_value(source, event)
    expected = body.encode() if isinstance(body, str) else body

    def matches(s: _Seen) -> bool:
        if s.event != value:
            return False
        if to is not None:
            path = "/" + s.url.split("://", 1)[-1].partition("/")[2]
            if s.url != to and not (to.startswith("/") and path == to):
                return False
        if expected is not None and s.body != expected:
            return False
        if json is not _ANY:
            try:
                return bool(jsonlib.loads(s.body) == json)
            except ValueError:
                return False
        return True

    found = [s for s in seen if matches(s)]
    wanted = [f"event {value}"]
    wanted += [f"to {to}"] if to is not None else []
    wanted += [f"body {expected!r}"] if expected is not None else []
    wanted += [f"json {json!r}"] if json is not _ANY else []
    if not found or (count is not None and len(found) != count):
        times = f"{count} time(s)" if count is not None else "at least once"
        raise AssertionError(
            f"expected {', '.join(wanted)} {times}; matched {len(found)}; {_describe(seen)}"
        )
    return [s.original for s in found]


async def run_retries(kit: WebhookKit, clock: FakeClock, *, max_steps: int = 1000) -> int:
    """Run the retry schedule to the end: move ``clock`` to each next due time until no
    delivery is pending. Returns how far the clock moved, in whole seconds."""
    start = clock.now()
    for _ in range(max_steps):
        await kit.wait_idle()
        due = await kit.store.next_due()
        if due is None:
            return int((clock.now() - start).total_seconds())
        await clock.advance(max(0.0, (due - clock.now()).total_seconds()))
    raise AssertionError(f"run_retries: deliveries still pending after {max_steps} steps")
