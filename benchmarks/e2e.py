"""Scenario 1, end to end over HTTP: every store against raw aiohttp and ``requests``.

Run by the harness in a subprocess per event loop (``--loop asyncio`` or ``--loop uvloop``)
against a receiver it started (``--url``); prints one JSON line with every run. In each
kit run, ``events`` triggers of one prebuilt JSON body fan out to ``webhooks`` webhooks (one
app, one path each on the receiver): timed from the first ``kit.trigger`` until the kit
counted every delivery as a success, while its scheduler claims, signs, sends and finishes.
The raw baseline POSTs the same bodies to the same paths, in the same order, with
``concurrency`` requests in flight on one ``aiohttp.ClientSession`` whose connector allows
``concurrency`` connections (the kit's HTTP transport gets the same limit). It runs before
the first kit run and after every kit run, followed each time by the sequential
``requests.Session`` sample when one is asked for; a kit run's ratios divide by the mean of
the baselines just before and just after it. The receiver's own count must match every
run's deliveries. Each kit run starts clean of the ones before it: dirty pages are written
back (``sync``) before its clock starts, and a PostgreSQL run's database is dropped after it
(its autovacuum would otherwise run during the next one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import aiohttp

from benchmarks._kit import make_kit, wait_counted
from benchmarks._pg import create_database, drop_database
from benchmarks._receiver import ReceiverStats, read_stats

SECRET = "benchmark-secret"


@dataclass(frozen=True)
class Run:
    side: str  # "raw aiohttp", "requests.Session", "kit"
    loop: str
    store: str  # "-" for the baselines
    signing: str
    deliveries: int
    seconds: float
    receiver_cpu: float  # percent of one core during the run
    #: This process's CPU (every thread, user + system) over the timed part, percent of its
    #: wall time: near 100 the sender is CPU-bound; well below, it waits (on its store).
    client_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.deliveries / self.seconds


def bodies(events: int) -> list[bytes]:
    """One distinct ORDER_CREATED-like body per event (about 200 bytes)."""
    return [
        json.dumps(
            {
                "order": {
                    "id": f"T3JkZXI6{n:08d}",
                    "number": str(n),
                    "status": "UNFULFILLED",
                    "total": {"gross": {"amount": "42.00", "currency": "USD"}},
                    "userEmail": "customer@example.com",
                    "lines": [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}],
                }
            },
            separators=(",", ":"),
        ).encode()
        for n in range(events)
    ]


def _plan(base: str, events: int, webhooks: int) -> Iterator[tuple[str, bytes, dict[str, str]]]:
    """The raw sides' requests: URL, body and Saleor-like headers, in trigger order."""
    for body in bodies(events):
        headers = {
            "Content-Type": "application/json",
            "Saleor-Event": "order_created",
            "Saleor-Domain": "shop.example.com",
            "Saleor-Api-Url": "https://shop.example.com/graphql/",
            "Saleor-Signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
        }
        for w in range(webhooks):
            yield f"{base}/hook/{w}", body, headers


def _cpu() -> float:
    return time.process_time()  # every thread's user + system time, finer than os.times


def _check(url: str, before: ReceiverStats, count: int, what: str) -> ReceiverStats:
    after = read_stats(url)
    if after.count - before.count != count:
        raise RuntimeError(f"{what}: receiver counted {after.count - before.count} of {count}")
    return after


async def raw_aiohttp(url: str, events: int, webhooks: int, concurrency: int, loop: str) -> Run:
    plan = list(_plan(url, events, webhooks))
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=20, sock_connect=2)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        pending = iter(plan)

        async def sender() -> None:
            for target, body, headers in pending:
                async with session.post(
                    target, data=body, headers=headers, allow_redirects=False
                ) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"receiver answered {response.status}")

        before = read_stats(url)
        cpu = _cpu()
        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = _cpu() - cpu
    after = _check(url, before, len(plan), "raw aiohttp")
    return Run(
        "raw aiohttp",
        loop,
        "-",
        "HMAC",
        len(plan),
        elapsed,
        after.cpu_percent(before),
        cpu / elapsed * 100,
    )


def requests_session(url: str, count: int, webhooks: int) -> Run:
    """Sequential ``requests.Session`` POSTs of the first ``count`` planned requests."""
    import requests

    events = -(-count // webhooks)
    plan = list(_plan(url, events, webhooks))[:count]
    with requests.Session() as session:
        before = read_stats(url)
        started = time.perf_counter()
        for target, body, headers in plan:
            response = session.post(target, data=body, headers=headers, timeout=20)
            if response.status_code != 200:
                raise RuntimeError(f"receiver answered {response.status_code}")
        elapsed = time.perf_counter() - started
    after = _check(url, before, len(plan), "requests")
    return Run("requests.Session", "-", "-", "HMAC", len(plan), elapsed, after.cpu_percent(before))


async def kit_run(
    url: str, store: str, events: int, webhooks: int, concurrency: int, jws: bool, loop: str
) -> Run:
    """Deliveries/s of ``events`` triggers x ``webhooks`` through a kit on ``store``."""
    kit = make_kit(store=store, concurrency=concurrency)
    try:
        await kit.store.open()
        app = await kit.apps.create("bench", permissions=["MANAGE_ORDERS"])
        for w in range(webhooks):
            await kit.webhooks.create(
                app,
                target_url=f"{url}/hook/{w}",
                events=["ORDER_CREATED"],
                secret_key=None if jws else SECRET,  # no secret key: JWS signatures
            )
        await kit.start()
        payloads = bodies(events)
        expected = events * webhooks
        # Write back what earlier runs left dirty (an SQLite file, a PostgreSQL checkpoint)
        # now, not during this run, where it would slow this store's own fsyncs.
        await asyncio.to_thread(os.sync)
        before = read_stats(url)
        cpu = _cpu()
        started = time.perf_counter()
        queued = 0
        for body in payloads:
            queued += len(await kit.trigger("ORDER_CREATED", payload=body))
        await wait_counted(kit, expected)
        elapsed = time.perf_counter() - started
        cpu = _cpu() - cpu
        after = _check(url, before, expected, f"kit on {store}")
        if queued != expected or kit.stats.successes != expected:
            raise RuntimeError(f"kit on {store}: {kit.stats.successes} of {expected} succeeded")
    finally:
        await kit.aclose()
    kind = store.split(":", 1)[0]
    signing = "JWS RS256" if jws else "HMAC"
    return Run(
        "kit",
        loop,
        kind,
        signing,
        expected,
        elapsed,
        after.cpu_percent(before),
        cpu / elapsed * 100,
    )


async def _store_url(kind: str, admin_dsn: str | None, tmp: str) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        fd, path = tempfile.mkstemp(suffix=".db", dir=tmp)
        os.close(fd)
        os.unlink(path)
        return f"sqlite:///{path}"
    assert admin_dsn is not None
    return (await create_database(admin_dsn, "e2e"))[1]


async def run_all(args: argparse.Namespace) -> list[Run]:
    """Baselines between every two kit runs: raw aiohttp, then (with ``--requests``) the
    ``requests.Session`` sample. A shared machine's speed drifts within seconds, so each kit
    run is compared with the baselines measured just before and just after it."""
    loop = args.loop
    runs: list[Run] = []
    kinds = ["memory", "sqlite"] + (["postgresql"] if args.pg else [])

    async def baselines() -> None:
        runs.append(await raw_aiohttp(args.url, args.events, args.webhooks, args.concurrency, loop))
        if args.requests:
            # In a thread: the event loop has nothing else to do meanwhile.
            runs.append(
                await asyncio.to_thread(requests_session, args.url, args.requests, args.webhooks)
            )

    with tempfile.TemporaryDirectory(prefix="webhookkit-bench-") as tmp:
        # Warm-up (imports, first connections, first JWS key), not reported.
        await raw_aiohttp(args.url, 2, args.webhooks, args.concurrency, loop)
        await kit_run(args.url, "memory://", 2, args.webhooks, args.concurrency, True, loop)
        await baselines()
        for kind in kinds:
            events = args.events if kind == "memory" else args.sql_events
            for jws in (False, True):
                store = await _store_url(kind, args.pg, tmp)
                runs.append(
                    await kit_run(
                        args.url, store, events, args.webhooks, args.concurrency, jws, loop
                    )
                )
                if kind == "postgresql":
                    await drop_database(args.pg, store)
                await baselines()
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.e2e", description=__doc__)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--url", required=True, help="the receiver, http://127.0.0.1:PORT")
    parser.add_argument("--pg", help="admin DSN of the PostgreSQL server (omit: no PostgreSQL)")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--sql-events", type=int, default=200, help="events for SQL stores")
    parser.add_argument("--webhooks", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument(
        "--requests", type=int, default=0, help="requests.Session sample beside each kit run"
    )
    args = parser.parse_args(argv)
    logging.getLogger("webhookkit").setLevel(logging.ERROR)
    runs: list[Run] = []
    if args.loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    runs += asyncio.run(run_all(args))
    print(json.dumps([asdict(r) for r in runs]), flush=True)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
