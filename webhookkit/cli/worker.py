"""``worker``: send due deliveries from a shared store until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from datetime import timedelta
from typing import Any

from ..config import DeliveryConfig
from ..exceptions import ConfigurationError
from ..stores.memory import MemoryStore
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
        api_url=args.api_url,
        signing_key=key_set(args),
        transports=[HTTPTransport(allow_addresses=args.allow or ())],
        delivery=DeliveryConfig(
            concurrency=args.concurrency,
            lease=timedelta(seconds=args.lease),
            poll_interval=args.poll,
        ),
    )
    if isinstance(kit.store, MemoryStore):
        raise ConfigurationError(
            "store: a worker needs a shared store (sqlite:///path or postgresql://...); a "
            "memory store holds nothing another process queued",
            field="store",
        )
    async with kit:
        logging.getLogger("webhookkit").info(
            "worker started on %s as %s (%s), signing with %s",
            kit.store,
            kit.domain,
            kit.api_url,
            ", ".join(k.kid for k in kit.keys.published()) or "no key",
        )
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
    worker.add_argument(
        "--domain",
        default=os.environ.get("WEBHOOKKIT_DOMAIN"),
        required="WEBHOOKKIT_DOMAIN" not in os.environ,
        help="Saleor-Domain header value, the shop's host name (default: $WEBHOOKKIT_DOMAIN)",
    )
    worker.add_argument(
        "--api-url",
        default=os.environ.get("WEBHOOKKIT_API_URL"),
        help="Saleor-Api-Url header value (default: $WEBHOOKKIT_API_URL, else "
        "https://DOMAIN/graphql/); receivers fetch the JWKS from its origin",
    )
    worker.add_argument("--concurrency", type=int, default=100, help="sends in flight at most")
    worker.add_argument("--lease", type=float, default=300.0, help="seconds a claim is held")
    worker.add_argument("--poll", type=float, default=1.0, help="seconds between store polls")
    worker.add_argument(
        "--allow", action="append", help="network the SSRF guard lets through (repeatable)"
    )
    add_key_options(worker)
    worker.set_defaults(func=_worker)
