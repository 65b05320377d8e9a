"""pytest plugin (entry point ``pytest11``, loaded once webhookkit is installed).

Fixtures: ``webhook_clock`` (a :class:`~webhookkit.testing.FakeClock`), ``memory_transport``
(a :class:`~webhookkit.testing.MemoryTransport`), ``webhook_receiver`` (a started
:class:`~webhookkit.testing.RecordingReceiver` on 127.0.0.1) and ``webhook_kit`` (a started
kit on ``webhook_clock`` that sends http(s) targets into ``memory_transport``). Mark a test
``@pytest.mark.webhookkit(deliver_to="receiver")`` to send over real HTTP to
``webhook_receiver`` instead; ``statuses=[500, 503]`` scripts the memory transport's answers
(then ``default_status``, 200); any other keyword goes to ``WebhookKit``.

The async fixtures are plain async generators: pytest-asyncio runs them in ``auto`` mode,
anyio's plugin runs them for ``@pytest.mark.anyio`` tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from .dispatcher import WebhookKit
from .testing import FakeClock, MemoryTransport
from .testing_fixtures import RecordingReceiver
from .transports import HTTPTransport

__all__ = ["memory_transport", "webhook_clock", "webhook_kit", "webhook_receiver"]

#: Receivers listen on loopback, which the SSRF guard refuses unless allowed.
LOOPBACK = ("127.0.0.1/32",)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "webhookkit(deliver_to='memory'|'receiver', statuses=[...], **kit_options): how the "
        "webhook_kit and memory_transport fixtures are built",
    )


def _kit(
    clock: FakeClock,
    transport: MemoryTransport,
    deliver_to: str = "memory",
    **options: Any,
) -> WebhookKit:
    """The one place the fixture builds a kit."""
    options.setdefault("domain", "shop.example.com")
    if deliver_to == "receiver":
        kit = WebhookKit(
            clock=clock, transports=[HTTPTransport(allow_addresses=LOOPBACK)], **options
        )
    elif deliver_to == "memory":
        kit = WebhookKit(clock=clock, **options)
        kit.mount(transport, ["http", "https"])
    else:
        raise ValueError(f"webhookkit marker: deliver_to={deliver_to!r}: 'memory' or 'receiver'")
    return kit


@pytest.fixture
def webhook_clock() -> FakeClock:
    """A clock that moves only when told: ``await webhook_clock.advance(10)``."""
    return FakeClock()


def _marker_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("webhookkit")
    return dict(marker.kwargs) if marker is not None else {}


@pytest.fixture
def memory_transport(request: pytest.FixtureRequest) -> MemoryTransport:
    """Records messages in ``.sent``; answers the marker's ``statuses`` in order, then 200."""
    options = _marker_options(request)
    return MemoryTransport(
        options.get("statuses", ()), default_status=options.get("default_status", 200)
    )


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[RecordingReceiver]:
    """A recording aiohttp server on 127.0.0.1; ``.url``, ``.received``, ``.statuses``."""
    async with RecordingReceiver() as receiver:
        yield receiver


@pytest.fixture
async def webhook_kit(
    request: pytest.FixtureRequest, webhook_clock: FakeClock, memory_transport: MemoryTransport
) -> AsyncIterator[WebhookKit]:
    """A started WebhookKit on ``webhook_clock``, sending into ``memory_transport``."""
    options = _marker_options(request)
    options.pop("statuses", None)
    options.pop("default_status", None)
    kit = _kit(webhook_clock, memory_transport, **options)
    async with kit:
        yield kit
