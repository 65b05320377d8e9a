"""The HTTP transport's send path against raw ``aiohttp.ClientSession.post``.

Run from the project root: ``python -m benchmarks.bench_http`` (about 30 s). It starts the
raw asyncio receiver of ``benchmarks/_receiver.py`` in its own process, then, in this one
process, POSTs the same ``requests`` bodies (the end-to-end scenario's ORDER_CREATED bodies
to 100 paths, with their HMAC signatures) with ``concurrency`` requests in flight on both
sides:

- raw aiohttp: one ``ClientSession`` whose ``TCPConnector`` allows ``concurrency``
  connections, ``session.post(...)`` and ``await response.read()`` per request;
- webhookkit: ``HTTPTransport.send`` of a prebuilt ``OutboundMessage`` per request (with
  Saleor's nine headers, the SSRF guard on with loopback allowed, the attempt record built).

Sides alternate for ``rounds`` rounds after a warm-up; each side's median round is printed as
wall time and client CPU time (this process's user + system time) per request, with the
ratio. The receiver must count every request of every round.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from benchmarks._kit import LOOPBACK
from benchmarks._receiver import Receiver, read_stats
from benchmarks.e2e import _plan
from webhookkit import HTTPTransport, OutboundMessage, Timeouts


@dataclass(frozen=True)
class Round:
    side: str
    requests: int
    wall: float
    cpu: float

    @property
    def wall_us(self) -> float:
        return 1e6 * self.wall / self.requests

    @property
    def cpu_us(self) -> float:
        return 1e6 * self.cpu / self.requests


def plan(url: str, requests: int) -> list[tuple[str, bytes, dict[str, str]]]:
    webhooks = 100
    events = -(-requests // webhooks)
    return list(_plan(url, events, webhooks))[:requests]


async def _run(
    side: str, url: str, count: int, concurrency: int, send: Callable[[int], Awaitable[None]]
) -> Round:
    pending = iter(range(count))

    async def worker() -> None:
        for index in pending:
            await send(index)

    before = read_stats(url)
    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    after = read_stats(url)
    if after.count - before.count != count:
        raise RuntimeError(f"{side}: the receiver counted {after.count - before.count} of {count}")
    return Round(side, count, wall, cpu)


async def raw_aiohttp(url: str, requests: int, concurrency: int) -> Round:
    requests_ = plan(url, requests)
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=20, sock_connect=2)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def send(index: int) -> None:
            target, body, headers = requests_[index]
            async with session.post(
                target, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"receiver answered {response.status}")

        return await _run("raw aiohttp", url, requests, concurrency, send)


async def transport_send(url: str, requests: int, concurrency: int) -> Round:
    timeouts = Timeouts(connect=2, total=20)
    messages = [
        OutboundMessage(
            url=target,
            body=body,
            event="order_created",
            domain="shop.example.com",
            api_url="https://shop.example.com/graphql/",
            signature=headers["Saleor-Signature"],
            timeouts=timeouts,
        )
        for target, body, headers in plan(url, requests)
    ]
    transport = HTTPTransport(
        allow_addresses=LOOPBACK, limit=concurrency, limit_per_host=concurrency
    )
    try:

        async def send(index: int) -> None:
            result = await transport.send(messages[index])
            if not result.ok:
                raise RuntimeError(f"receiver answered {result.status_code}")

        return await _run("HTTPTransport.send", url, requests, concurrency, send)
    finally:
        await transport.aclose()


async def main_async(args: argparse.Namespace, url: str) -> list[Round]:
    sides = [raw_aiohttp, transport_send]
    for side in sides:  # warm-up: imports, first connections, caches
        await side(url, min(2000, args.requests), args.concurrency)
    rounds: list[Round] = []
    for n in range(args.rounds):
        for side in sides if n % 2 == 0 else sides[::-1]:
            rounds.append(await side(url, args.requests, args.concurrency))
    return rounds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_http", description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args(argv)
    if args.loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    with Receiver() as receiver:
        before = receiver.stats()
        rounds = asyncio.run(main_async(args, receiver.url))
        after = receiver.stats()
    print(
        f"{args.requests:,} POSTs per round, {args.concurrency} in flight, {args.rounds} rounds "
        f"(sides alternating), loop {args.loop}, Python {sys.version.split()[0]}, "
        f"aiohttp {aiohttp.__version__}; receiver CPU {after.cpu_percent(before):.0f}% of a core"
    )
    print()
    print("| side | median wall µs/request | median client CPU µs/request | requests/s |")
    print("|---|---:|---:|---:|")
    medians: dict[str, tuple[float, float]] = {}
    for side in ("raw aiohttp", "HTTPTransport.send"):
        mine = [r for r in rounds if r.side == side]
        wall = statistics.median(r.wall_us for r in mine)
        cpu = statistics.median(r.cpu_us for r in mine)
        medians[side] = (wall, cpu)
        print(f"| {side} | {wall:.1f} | {cpu:.1f} | {1e6 / wall:,.0f} |")
    raw, ours = medians["raw aiohttp"], medians["HTTPTransport.send"]
    print()
    print(
        f"HTTPTransport.send vs raw aiohttp: {raw[0] / ours[0]:.2f}x faster per request "
        f"(wall), {raw[1] / ours[1]:.2f}x less client CPU per request (target: at least 2x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
