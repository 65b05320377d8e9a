"""HTTP transport throughput: the WebhookKit pipeline against raw aiohttp POSTs.

Every side posts to the same loopback aiohttp receiver (a child process, so its work is not
counted against anyone), with the same connection limit (10 per host, HTTPTransport's
default) and the same number of requests in flight, in the same run:

* raw: ``ClientSession.post`` of one prebuilt body with Saleor's headers;
* transport: ``HTTPTransport.send`` of a prebuilt :class:`OutboundMessage` (headers built,
  SSRF check, attempt-record headers and excerpt), without the scheduler;
* delivery: the outbox already holds the deliveries (``kit.trigger`` ran before the kit
  started); timed from ``kit.start()`` until every delivery is recorded as a success: the
  scheduler claims, signs (HMAC, or JWS with ``--jws``), sends through HTTPTransport (SSRF
  guard on, 127.0.0.1 allowed), records the attempt and finishes the delivery in the store;
* end-to-end: the same, with the ``kit.trigger`` calls (one event each, payload serialised,
  outbox write) inside the timed window while the scheduler sends.

Rounds alternate between the sides. Each pipeline figure is divided by the raw figure of
its own round (other load on the machine hits both alike), and the median of those ratios
is reported, with the median rates.
Run: ``python -m benchmarks.bench_transport`` (``--help`` for the knobs).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection

import aiohttp
from aiohttp import web

from webhookkit import WebhookKit
from webhookkit.delivery.isolation import IsolationConfig
from webhookkit.signing.hmac import hmac_signature
from webhookkit.transports.base import OutboundMessage
from webhookkit.transports.http import DEFAULT_USER_AGENT, HTTPTransport, saleor_headers

LIMIT_PER_HOST = 10  # HTTPTransport's default, used by every side
SECRET = "benchmark-secret"
TARGET = 0.8


@dataclass(frozen=True)
class Options:
    count: int = 1500
    rounds: int = 5
    concurrency: int = 50
    jws: bool = False
    default_isolation: bool = False


def _serve(conn: Connection) -> None:
    """The receiver: answers every POST with 200 after reading the body."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        conn.send(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


BODY = b'{"order":{"id":"T3JkZXI6MQ==","number":"1"}}'


def _message(url: str) -> OutboundMessage:
    return OutboundMessage(
        url=url,
        body=BODY,
        event="order_created",
        domain="shop.example.com",
        api_url="https://shop.example.com/graphql/",
        signature=hmac_signature(BODY, SECRET),
    )


async def run_raw(url: str, opts: Options, count: int) -> float:
    """Deliveries/s of plain aiohttp POSTs with Saleor's headers."""
    body = BODY
    message = _message(url)
    headers = saleor_headers(message)
    connector = aiohttp.TCPConnector(limit=100, limit_per_host=LIMIT_PER_HOST)
    timeout = aiohttp.ClientTimeout(total=20, sock_connect=2)
    async with aiohttp.ClientSession(
        connector=connector, headers={"User-Agent": DEFAULT_USER_AGENT}
    ) as session:
        semaphore = asyncio.Semaphore(opts.concurrency)

        async def post() -> None:
            async with (
                semaphore,
                session.post(
                    url, data=body, headers=headers, timeout=timeout, allow_redirects=False
                ) as response,
            ):
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"receiver answered {response.status}")

        started = time.perf_counter()
        await asyncio.gather(*(post() for _ in range(count)))
        return count / (time.perf_counter() - started)


async def run_transport(url: str, opts: Options, count: int) -> float:
    """Deliveries/s of HTTPTransport.send alone, with as many messages in flight."""
    transport = HTTPTransport(allow_addresses=["127.0.0.1/32"], limit_per_host=LIMIT_PER_HOST)
    message = _message(url)
    semaphore = asyncio.Semaphore(opts.concurrency)

    async def send() -> None:
        async with semaphore:
            result = await transport.send(message)
            if not result.ok:
                raise RuntimeError(f"receiver answered {result.status_code}")

    try:
        started = time.perf_counter()
        await asyncio.gather(*(send() for _ in range(count)))
        return count / (time.perf_counter() - started)
    finally:
        await transport.aclose()


async def run_pipeline(url: str, opts: Options, count: int, *, end_to_end: bool) -> float:
    """Deliveries/s through WebhookKit (see the module docstring for the two variants)."""
    # One endpoint gets every delivery. The endpoint gate lets ``per_endpoint`` of them be
    # in flight; raw keeps ``concurrency`` requests queued on the same 10 connections.
    isolation = None if opts.default_isolation else IsolationConfig(per_endpoint=opts.concurrency)
    kit = WebhookKit(
        domain="shop.example.com",
        allow_addresses=["127.0.0.1/32"],
        concurrency=opts.concurrency,
        isolation=isolation,
    )
    try:
        app = await kit.apps.create("bench", permissions=["MANAGE_ORDERS"])
        await kit.webhooks.create(
            app, target_url=url, events=["ORDER_CREATED"], secret_key=None if opts.jws else SECRET
        )

        async def trigger_all() -> int:
            queued = 0
            for n in range(count):
                payload = {"order": {"id": "T3JkZXI6MQ==", "number": str(n)}}
                queued += len(await kit.trigger("ORDER_CREATED", payload=payload))
            return queued

        queued = 0 if end_to_end else await trigger_all()
        started = time.perf_counter()
        await kit.start()
        if end_to_end:
            queued = await trigger_all()
        # Poll the counters, not wait_for (it re-reads every id after each attempt) nor
        # wait_idle (it returns while postponed deliveries are waiting for their time).
        deadline = started + 300
        while kit.stats.successes + kit.stats.failures < count:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{kit.stats.successes} of {count} done after 300 s")
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
    finally:
        await kit.aclose()
    if queued != count or kit.stats.successes != count:
        raise RuntimeError(f"{count - kit.stats.successes} of {count} deliveries failed")
    return count / elapsed


async def bench(opts: Options) -> dict[str, list[float]]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(child,), daemon=True)
    server.start()
    results: dict[str, list[float]] = {"raw": [], "transport": [], "delivery": [], "end-to-end": []}
    try:
        if not parent.poll(30):
            raise RuntimeError("the receiver process did not start")
        url = f"http://127.0.0.1:{parent.recv()}/hook"
        warm = min(opts.count, 300)  # imports, first connections, the receiver's first calls
        await run_raw(url, opts, warm)
        await run_transport(url, opts, warm)
        await run_pipeline(url, opts, warm, end_to_end=True)
        for _ in range(opts.rounds):
            results["raw"].append(await run_raw(url, opts, opts.count))
            results["transport"].append(await run_transport(url, opts, opts.count))
            results["delivery"].append(await run_pipeline(url, opts, opts.count, end_to_end=False))
            results["end-to-end"].append(await run_pipeline(url, opts, opts.count, end_to_end=True))
    finally:
        server.terminate()
        server.join(10)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=Options.count, help="deliveries per round")
    parser.add_argument("--rounds", type=int, default=Options.rounds, help="rounds per side")
    parser.add_argument(
        "--concurrency", type=int, default=Options.concurrency, help="requests in flight"
    )
    parser.add_argument("--jws", action="store_true", help="sign with JWS (RS256), not HMAC")
    parser.add_argument(
        "--default-isolation",
        action="store_true",
        help="keep the endpoint gate's default per-endpoint limit instead of --concurrency",
    )
    args = parser.parse_args(argv)
    opts = Options(args.count, args.rounds, args.concurrency, args.jws, args.default_isolation)
    logging.getLogger("webhookkit").setLevel(logging.ERROR)
    started = time.perf_counter()
    results = asyncio.run(bench(opts))
    signing = "JWS RS256" if opts.jws else "HMAC-SHA256"
    print(
        f"HTTP transport: {opts.count} deliveries x {opts.rounds} rounds, "
        f"{opts.concurrency} in flight, {LIMIT_PER_HOST} connections, {signing}"
    )
    print(f"  {'side':<34} {'median/s':>9} {'best/s':>8} {'vs raw':>7}")
    labels = {
        "raw": "raw aiohttp POSTs",
        "transport": "HTTPTransport.send alone",
        "delivery": "WebhookKit, outbox -> receiver",
        "end-to-end": "WebhookKit, trigger -> receiver",
    }
    ratios = {
        key: statistics.median(r / b for r, b in zip(results[key], results["raw"], strict=True))
        for key in labels
    }
    for key, label in labels.items():
        median = statistics.median(results[key])
        print(f"  {label:<34} {median:9.0f} {max(results[key]):8.0f} {ratios[key]:6.2f}x")
    # The target is the transport's rate against raw aiohttp; the full pipeline
    # (claim, sign, send, record, finish) is reported beside it, with no target of its own.
    ratio = ratios["transport"]
    verdict = "ok" if ratio >= TARGET else "BELOW TARGET"
    print(f"  transport / raw = {ratio:.2f}x (target >= {TARGET}x): {verdict}")
    print(f"  full pipeline / raw = {ratios['delivery']:.2f}x (recorded, no target)")
    print(f"  took {time.perf_counter() - started:.1f} s")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
