"""``worker``: send due deliveries from a shared store until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from datetime import timedelta
from typing import Any

from ..config import DeliveryConfig
from ..transports.http import HTTPTransport
from ._common import add_key_options, key_set, make_kit

__all__ = ["register", "stop_signals"]


def stop_signals() -> asyncio.Event:
    """An event set on SIGINT or SIGTERM (loop handlers, so no KeyboardInterrupt). Call it
    before announcing readiness: a signal that arrives earlier would kill the process."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def _run_worker(args: argparse.Namespace) -> int:
    stop = stop_signals()
    kit = make_kit(
        args.store,
        domain=args.domain,
        signing_key=key_set(args),
        transports=[HTTPTransport(allow_addresses=args.allow or ())],
        delivery=DeliveryConfig(
            concurrency=args.concurrency,
            lease=timedelta(seconds=args.lease),
            poll_interval=args.poll,
        ),
    )
    async with kit:
        logging.getLogger("webhookkit").info("worker started on %s", kit.store)
        print("worker ready", flush=True)
        await stop.wait()
    return 0


def _worker(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return asyncio.run(_run_worker(args))


def register(sub: Any) -> None:
    worker = sub.add_parser(
        "worker",
        help="send due deliveries from a shared store",
        description="Send due deliveries from a shared store until SIGINT or SIGTERM.",
    )
    worker.add_argument("--store", required=True, help="sqlite:///path or postgresql://...")
    worker.add_argument("--domain", default="localhost", help="Saleor-Domain header value")
    worker.add_argument("--concurrency", type=int, default=100, help="sends in flight at most")
    worker.add_argument("--lease", type=float, default=300.0, help="seconds a claim is held")
    worker.add_argument("--poll", type=float, default=1.0, help="seconds between store polls")
    worker.add_argument(
        "--allow", action="append", help="network the SSRF guard lets through (repeatable)"
    )
    add_key_options(worker)
    worker.set_defaults(func=_worker)
