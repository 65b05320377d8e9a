"""``python -m webhookkit``: list events, make keys, print a JWKS, run a delivery worker."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta

from .events import EventKind, EventRegistry
from .exceptions import WebhookKitError
from .signing import KeySet, generate_key, load_key

__all__ = ["main"]


def _key_set(args: argparse.Namespace) -> KeySet | None:
    if args.signing_key_file:
        with open(args.signing_key_file, "rb") as fh:
            return KeySet.of(load_key(fh.read()))
    if args.signing_key_env:
        import os

        value = os.environ.get(args.signing_key_env)
        if not value:
            raise WebhookKitError(f"signing key: ${args.signing_key_env} is not set")
        return KeySet.of(load_key(value))
    return None


def _events(args: argparse.Namespace) -> int:
    registry = EventRegistry.saleor()
    rows = [e for e in registry if args.kind is None or e.kind is EventKind(args.kind)]
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": e.name,
                        "value": e.value,
                        "kind": e.kind.value,
                        "permission": e.permission,
                        "subscription_type": e.subscription_type,
                    }
                    for e in rows
                ],
                indent=1,
            )
        )
    else:
        for e in rows:
            print(f"{e.name:<45} {e.kind.value:<5} {e.permission or '-':<38} {e.description}")
    return 0


def _keys(args: argparse.Namespace) -> int:
    key = generate_key(args.alg)
    sys.stdout.write(key.private_pem().decode("ascii"))
    return 0


def _jwks(args: argparse.Namespace) -> int:
    keys = _key_set(args)
    if keys is None:
        raise WebhookKitError("jwks: pass --signing-key-file or --signing-key-env")
    print(json.dumps(keys.jwks(), indent=1))
    return 0


async def _run_worker(args: argparse.Namespace) -> int:
    from .dispatcher import WebhookKit

    kit = WebhookKit(
        domain=args.domain,
        store=args.store,
        signing_key=_key_set(args),
        concurrency=args.concurrency,
        allow_addresses=args.allow or (),
        lease=timedelta(seconds=args.lease),
        poll_interval=args.poll,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with kit:
        logging.getLogger("webhookkit").info("worker started on %s", kit.store)
        print("worker ready", flush=True)
        await stop.wait()
    return 0


def _worker(args: argparse.Namespace) -> int:
    return asyncio.run(_run_worker(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m webhookkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    events = sub.add_parser("events", help="list the event catalogue")
    events.add_argument("--kind", choices=["async", "sync"])
    events.add_argument("--json", action="store_true")
    events.set_defaults(func=_events)

    keys = sub.add_parser("keys", help="print a new private key (PEM) to stdout")
    keys.add_argument("--alg", default="RS256", choices=["RS256", "ES256", "EdDSA"])
    keys.set_defaults(func=_keys)

    def key_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--signing-key-file", help="PEM private key used for JWS signatures")
        p.add_argument("--signing-key-env", help="environment variable holding that PEM")

    jwks = sub.add_parser("jwks", help="print the JWKS document of a signing key")
    key_options(jwks)
    jwks.set_defaults(func=_jwks)

    worker = sub.add_parser("worker", help="send due deliveries from a shared store")
    worker.add_argument("--store", required=True, help="sqlite:///path or postgresql://...")
    worker.add_argument("--domain", default="localhost")
    worker.add_argument("--concurrency", type=int, default=100)
    worker.add_argument("--lease", type=float, default=300.0, help="seconds a claim is held")
    worker.add_argument("--poll", type=float, default=1.0, help="seconds between store polls")
    worker.add_argument(
        "--allow", action="append", help="network the SSRF guard lets through (repeatable)"
    )
    key_options(worker)
    worker.set_defaults(func=_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        code: int = args.func(args)
    except WebhookKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code
