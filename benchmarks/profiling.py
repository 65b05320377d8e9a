"""Scenario 6, a cProfile summary of the memory-store pipeline, per delivery.

``events`` triggers fanned out to ``webhooks`` webhooks on the ``noop://`` transport (no
network: what is left is the kit's own work), profiled from the first trigger until the kit
counted every delivery; the top functions by own time (tottime), in microseconds per delivery.
cProfile roughly doubles the cost of Python calls, so the shares matter, not the totals.
"""

from __future__ import annotations

import cProfile
import pstats
from dataclasses import dataclass

from benchmarks._kit import NoopTransport, make_kit, wait_counted


@dataclass(frozen=True)
class ProfileRow:
    function: str
    calls_per_delivery: float
    own_us: float  # tottime per delivery
    cumulative_us: float


async def _pipeline(events: int, webhooks: int, profiler: cProfile.Profile) -> int:
    kit = make_kit(extra_transports=[NoopTransport()], max_queued=None)
    app = await kit.apps.create("bench", permissions=["MANAGE_ORDERS"])
    for w in range(webhooks):
        await kit.webhooks.create(
            app, target_url=f"noop://sink/{w}", events=["ORDER_CREATED"], secret_key="s"
        )
    expected = events * webhooks
    async with kit:
        profiler.enable()
        for n in range(events):
            await kit.trigger("ORDER_CREATED", payload={"order": {"number": str(n)}})
        await wait_counted(kit, expected)
        profiler.disable()
    if kit.stats.successes != expected:
        raise RuntimeError(f"profile: {kit.stats.successes} of {expected} succeeded")
    return expected


def _name(key: tuple[str, int, str]) -> str:
    path, line, func = key
    if path == "~":
        return func  # a builtin: "<built-in method ...>"
    for marker in ("site-packages/", "webhookkit/", "lib/python3"):
        if marker in path:
            path = path[path.index(marker) :]
            break
    return f"{path}:{line}({func})"


async def run(events: int, webhooks: int, top: int = 15) -> tuple[int, float, list[ProfileRow]]:
    """(deliveries, total profiled seconds per delivery in µs, top rows)."""
    profiler = cProfile.Profile()
    deliveries = await _pipeline(events, webhooks, profiler)
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(value[2] for value in entries.values())
    ranked = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:top]
    rows = [
        ProfileRow(
            _name(key),
            value[1] / deliveries,
            value[2] / deliveries * 1e6,
            value[3] / deliveries * 1e6,
        )
        for key, value in ranked
    ]
    return deliveries, total / deliveries * 1e6, rows
