"""``send``: one signed delivery with Saleor's headers, through the kit's HTTP transport."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from .._ids import new_id
from .._secret import Secret
from ..apps import Webhook, validate_target_url
from ..delivery.records import Payload
from ..events import EventRegistry
from ..exceptions import BlockedAddressError, ConfigurationError
from ..signing import JWSSigner, KeySet, sign_delivery
from ..transports import HTTPTransport, OutboundMessage, Timeouts
from ._common import compact_json, read_payload, signing_key

__all__ = ["register"]


def _webhook(args: argparse.Namespace, url: str) -> Webhook:
    """An unsaved webhook carrying the signing choice, so signing is exactly the scheduler's."""
    if args.standard_secret:
        return Webhook(
            id="cli",
            app_id="cli",
            target_url=url,
            secret_key=Secret(args.standard_secret),
            signing_profile="standard-webhooks",
        )
    secret = Secret(args.secret) if args.secret else None
    return Webhook(id="cli", app_id="cli", target_url=url, secret_key=secret)


async def _send(args: argparse.Namespace) -> int:
    url = validate_target_url(args.url, HTTPTransport.schemes)
    event = EventRegistry.saleor().get(args.event)
    document = read_payload(args.payload)
    body = compact_json(document if document is not None else {})
    now = datetime.now(UTC)
    key = signing_key(args)
    if key is None and not (args.secret or args.standard_secret):
        print(
            "note: signed with a throwaway RS256 key; pass --key-file (JWS), --secret (HMAC) "
            "or --standard-secret for a signature the receiver can check",
            file=sys.stderr,
        )
    keys = KeySet.of(key)
    payload = Payload(id=new_id(), event=event.value, body=body, created_at=now)
    webhook = _webhook(args, url)
    delivery_id = new_id()
    signed = sign_delivery(
        payload,
        webhook,
        delivery_id=delivery_id,
        now=now,
        jws=JWSSigner(keys),
        cache=OrderedDict(),
    )
    domain = args.domain
    message = OutboundMessage(
        url=url,
        body=body,
        event=event.value,
        domain=domain,
        api_url=args.api_url or f"https://{domain}/graphql/",
        signature=signed.signature,
        signature_headers=signed.headers,
        delivery_id=delivery_id,
        webhook_id=webhook.id,
        timeouts=Timeouts(connect=min(args.timeout, 2.0), total=args.timeout),
    )
    transport = HTTPTransport(allow_addresses=args.allow_address or ())
    started = time.perf_counter()
    try:
        result = await transport.send(message)
    except BlockedAddressError as exc:
        raise BlockedAddressError(
            f"{exc} (pass --allow-address with its network to send there)",
            host=exc.host,
        ) from None
    finally:
        await transport.aclose()
    took = (time.perf_counter() - started) * 1000
    print(f"POST {message.target}  {event.value}  {len(body)} bytes")
    for name, value in result.request_headers:
        print(f"  > {name}: {value}")
    print(f"  < {result.status_code} in {took:.0f} ms")
    if result.response_excerpt:
        print(f"  < {result.response_excerpt}")
    return 0 if result.ok else 1


def _run(args: argparse.Namespace) -> int:
    if sum(bool(x) for x in (args.secret, args.standard_secret, args.signing_key_file)) > 1:
        raise ConfigurationError(
            "send: give at most one of --secret, --standard-secret and --key-file", field="secret"
        )
    return asyncio.run(_send(args))


def register(sub: Any) -> None:
    send = sub.add_parser(
        "send",
        help="send one signed webhook to a URL",
        description=(
            "Send one webhook with Saleor's headers, signed as webhookkit signs deliveries: "
            "HMAC with --secret, JWS with --key-file, Standard Webhooks with --standard-secret. "
            "Exit 0 when the receiver answers 2xx, 1 otherwise."
        ),
    )
    send.add_argument("url", help="target URL (http or https)")
    send.add_argument("--event", required=True, help="event name or value: ORDER_CREATED")
    send.add_argument("--payload", metavar="FILE", help="JSON body from FILE, or - for stdin")
    send.add_argument("--secret", help="HMAC secret key (Saleor-Signature: hex HMAC-SHA256)")
    send.add_argument(
        "--key-file", dest="signing_key_file", metavar="PEM", help="private key for JWS RS256"
    )
    send.add_argument("--standard-secret", metavar="WHSEC", help="Standard Webhooks secret")
    send.add_argument("--domain", default="localhost", help="Saleor-Domain (default localhost)")
    send.add_argument("--api-url", help="Saleor-Api-Url (default https://DOMAIN/graphql/)")
    send.add_argument(
        "--allow-address",
        action="append",
        metavar="CIDR",
        help="network the SSRF guard lets through, such as 127.0.0.1/32 (repeatable)",
    )
    send.add_argument("--timeout", type=float, default=20.0, help="seconds in all (default 20)")
    send.set_defaults(func=_run)
