"""``trigger``, ``deliveries list|show|resend``, ``apps list|show``, ``webhooks list|show``:
the records in a store, read and requeued through the kit (a ``worker`` does the sending)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import fields
from typing import Any

from .._secret import REDACTED, redact_url
from ..apps import Webhook
from ..delivery.records import Delivery, DeliveryStatus
from ..dispatcher import WebhookKit
from ..exceptions import ConfigurationError, WebhookKitError
from ..stores import DeliveryQuery
from ._common import Progress, open_kit, parse_time, read_payload, table, when

__all__ = ["register"]

_PAGE = 500
_HAS_APP_FILTER = "app_id" in {f.name for f in fields(DeliveryQuery)}


def _store(args: argparse.Namespace) -> str:
    store: str | None = args.store or os.environ.get("WEBHOOKKIT_STORE")
    if not store:
        raise ConfigurationError(
            "store: pass --store URL (or set WEBHOOKKIT_STORE), e.g. sqlite:////srv/hooks.db",
            field="store",
        )
    return store


def _run(coro_fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        code: int = asyncio.run(coro_fn(args))
        return code

    return run


# -- trigger ---------------------------------------------------------------------------------
async def _trigger(args: argparse.Namespace) -> int:
    payload = read_payload(args.payload)
    async with open_kit(_store(args)) as kit:
        ids = await kit.trigger(args.event, payload=payload, app=args.app)
    for delivery_id in ids:
        print(delivery_id)
    if not ids:
        print(f"no active webhook receives {args.event}; nothing queued", file=sys.stderr)
    else:
        print(
            f"queued {len(ids)} delivery(ies); a worker on this store sends them", file=sys.stderr
        )
    return 0


# -- deliveries ------------------------------------------------------------------------------
def _filters(args: argparse.Namespace, kit: WebhookKit, *, status: str | None) -> dict[str, Any]:
    query: dict[str, Any] = {}
    if args.webhook:
        query["webhook_id"] = args.webhook
    if status:
        query["status"] = DeliveryStatus(status)
    if args.event:
        query["event"] = kit.registry.get(args.event).value
    if getattr(args, "since", None):
        query["created_after"] = parse_time(args.since, field="since")
    if getattr(args, "until", None):
        query["created_before"] = parse_time(args.until, field="until")
    if args.app and _HAS_APP_FILTER:
        query["app_id"] = args.app
    return query


async def _matching(
    kit: WebhookKit, query: dict[str, Any], app: str | None, limit: int | None
) -> list[Delivery]:
    """Deliveries matching ``query``, page by page, up to ``limit`` (None: all)."""
    found: list[Delivery] = []
    offset = 0
    while limit is None or len(found) < limit:
        page = await kit.list_deliveries(DeliveryQuery(**query, limit=_PAGE, offset=offset))
        # Until every DeliveryQuery has ``app_id``, the app filter is applied here.
        found += [d for d in page if app is None or d.app_id == app]
        if len(page) < _PAGE:
            break
        offset += _PAGE
    return found if limit is None else found[:limit]


def _delivery_json(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "event": d.event,
        "status": d.status.value,
        "attempts": d.attempts,
        "webhook_id": d.webhook_id,
        "app_id": d.app_id,
        "created_at": when(d.created_at),
        "updated_at": when(d.updated_at),
        "next_try_at": when(d.next_try_at),
        "last_error": d.last_error,
    }


async def _deliveries_list(args: argparse.Namespace) -> int:
    async with open_kit(_store(args)) as kit:
        query = _filters(args, kit, status=args.status)
        rows = await _matching(kit, query, args.app, args.limit)
    if args.json:
        for d in rows:
            print(json.dumps(_delivery_json(d)))
        return 0
    header = ["ID", "CREATED", "EVENT", "STATUS", "TRIES", "WEBHOOK", "APP", "LAST ERROR"]
    table(
        [header]
        + [
            [
                d.id,
                when(d.created_at),
                d.event,
                d.status.value,
                str(d.attempts),
                d.webhook_id,
                d.app_id,
                (d.last_error or "")[:60],
            ]
            for d in rows
        ]
    )
    print(f"{len(rows)} delivery(ies)", file=sys.stderr)
    return 0


async def _deliveries_show(args: argparse.Namespace) -> int:
    async with open_kit(_store(args)) as kit:
        delivery = await kit.get_delivery(args.id)
        if delivery is None:
            raise ConfigurationError(f"id: no delivery {args.id!r} in this store", field="id")
        attempts = await kit.list_attempts(delivery.id)
        payload = await kit.store.get_payload(delivery.payload_id)
    doc = _delivery_json(delivery)
    if args.json:
        doc["attempts"] = [
            {
                "number": a.number,
                "created_at": when(a.created_at),
                "status": a.status.value,
                "status_code": a.response_status_code,
                "duration": a.duration,
                "error": a.error,
                "response": a.response_excerpt,
            }
            for a in attempts
        ]
        print(json.dumps(doc, indent=1))
        return 0
    for key, value in doc.items():
        print(f"{key + ':':<13} {'-' if value is None else value}")
    for a in attempts:
        code = a.response_status_code if a.response_status_code is not None else "-"
        print(
            f"attempt {a.number}: {when(a.created_at)} {a.status.value} {code} "
            f"{a.duration * 1000:.0f} ms {a.error or ''}".rstrip()
        )
        if a.response_excerpt:
            print(f"  response: {a.response_excerpt[:200]}")
    if payload is not None:
        try:
            text = json.dumps(json.loads(payload.body), indent=2)
        except ValueError:
            text = payload.body.decode("utf-8", "replace")
        print("payload:")
        print("\n".join("  " + line for line in text.splitlines()))
    return 0


async def _deliveries_resend(args: argparse.Namespace) -> int:
    if bool(args.ids) == bool(args.failed_since):
        raise ConfigurationError(
            "resend: give delivery ids or --failed-since T, not both or neither", field="ids"
        )
    async with open_kit(_store(args)) as kit:
        if args.ids:
            targets = list(dict.fromkeys(args.ids))
        else:
            since = parse_time(args.failed_since, field="failed_since")
            query = _filters(args, kit, status=DeliveryStatus.FAILED.value)
            failed = await _matching(kit, query, args.app, None)
            # "Failed since T": the delivery's last change (its final failure) is after T.
            targets = [d.id for d in failed if (d.updated_at or d.created_at) >= since]
        if args.dry_run:
            for delivery_id in targets:
                print(delivery_id)
            print(f"dry run: {len(targets)} delivery(ies) would be resent", file=sys.stderr)
            return 0
        progress = Progress(len(targets), "resend")
        errors = 0
        for delivery_id in targets:
            try:
                await kit.retry_delivery(delivery_id)
            except WebhookKitError as exc:
                errors += 1
                print(f"error: {exc}", file=sys.stderr)
            else:
                print(delivery_id)
            progress.advance()
        progress.finish(f"{errors} error(s)" if errors else "requeued; a worker sends them")
    return 1 if errors else 0


# -- apps and webhooks -----------------------------------------------------------------------
async def _apps_list(args: argparse.Namespace) -> int:
    async with open_kit(_store(args)) as kit:
        apps = await kit.apps.list()
    table(
        [["ID", "NAME", "ACTIVE", "PERMISSIONS"]]
        + [
            [a.id, a.name, "yes" if a.is_active else "no", ",".join(sorted(a.permissions))]
            for a in apps
        ]
    )
    return 0


async def _apps_show(args: argparse.Namespace) -> int:
    async with open_kit(_store(args)) as kit:
        app = await kit.apps.get(args.id)
        webhooks = await kit.webhooks.list(app)
        tokens = await kit.apps.list_tokens(app.id)
    print(f"id:          {app.id}")
    print(f"name:        {app.name}")
    print(f"active:      {'yes' if app.is_active else 'no'}")
    print(f"identifier:  {app.identifier or '-'}")
    print(f"permissions: {', '.join(sorted(app.permissions)) or '-'}")
    print(f"created:     {when(app.created_at)}")
    print(f"tokens:      {len(tokens)}")
    print(f"webhooks:    {len(webhooks)}")
    for w in webhooks:
        print(f"  {w.id}  {redact_url(w.target_url)}  {','.join(sorted(w.subscribed_events))}")
    return 0


def _headers_shown(webhook: Webhook) -> list[tuple[str, str]]:
    return [
        (k, REDACTED if k.startswith("authorization") or k == "brokerproperties" else v)
        for k, v in webhook.custom_headers
    ]


async def _webhooks_list(args: argparse.Namespace) -> int:
    async with open_kit(_store(args)) as kit:
        webhooks = await kit.webhooks.list(args.app)
    table(
        [["ID", "APP", "ACTIVE", "TARGET", "EVENTS"]]
        + [
            [
                w.id,
                w.app_id,
                "yes" if w.is_active else "no",
                redact_url(w.target_url),
                ",".join(sorted(w.subscribed_events)),
            ]
            for w in webhooks
        ]
    )
    return 0


async def _webhooks_show(args: argparse.Namespace) -> int:
    async with open_kit(_store(args)) as kit:
        w = await kit.webhooks.get(args.id)
    print(f"id:        {w.id}")
    print(f"app:       {w.app_id}")
    print(f"name:      {w.name or '-'}")
    print(f"active:    {'yes' if w.is_active else 'no'}")
    print(f"target:    {redact_url(w.target_url)}")
    print(f"events:    {', '.join(sorted(w.subscribed_events)) or '-'}")
    print(f"signing:   {w.signing_profile}" + (" (HMAC secret key)" if w.secret_key else ""))
    print(f"secret:    {REDACTED if w.secret_key else '-'}")
    for key, value in _headers_shown(w):
        print(f"header:    {key}: {value}")
    if w.subscription_query:
        print("query:")
        print("\n".join("  " + line for line in w.subscription_query.strip().splitlines()))
    return 0


# -- parsers ---------------------------------------------------------------------------------
def _store_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store", metavar="URL", help="sqlite:///path or postgresql://... (or $WEBHOOKKIT_STORE)"
    )


def _filter_options(p: argparse.ArgumentParser, *, times: bool = True) -> None:
    p.add_argument("--webhook", metavar="ID", help="only this webhook's deliveries")
    p.add_argument("--app", metavar="ID", help="only this app's deliveries")
    p.add_argument("--event", help="only this event (name or value)")
    if times:
        p.add_argument("--since", metavar="T", help="created at or after T (ISO-8601 or 2h, 1d)")
        p.add_argument("--until", metavar="T", help="created before T (ISO-8601 or 2h, 1d)")


def _group(sub: Any, name: str, help_text: str) -> Any:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    return parser.add_subparsers(dest=f"{name}_command", required=True)


def register(sub: Any) -> None:
    trigger = sub.add_parser(
        "trigger",
        help="queue an event for the stored webhooks",
        description="Queue EVENT for every stored webhook that receives it; prints delivery ids.",
    )
    trigger.add_argument("event", help="event name or value: ORDER_CREATED")
    trigger.add_argument("--payload", metavar="FILE", help="JSON body from FILE, or - for stdin")
    trigger.add_argument("--app", metavar="ID", help="the affected app (app lifecycle events)")
    _store_option(trigger)
    trigger.set_defaults(func=_run(_trigger))

    deliveries = _group(sub, "deliveries", "list, show and resend deliveries in a store")
    listing = deliveries.add_parser(
        "list",
        help="list deliveries, newest first",
        description=("List deliveries matching every filter given."),
    )
    _store_option(listing)
    _filter_options(listing)
    listing.add_argument("--status", choices=[s.value for s in DeliveryStatus])
    listing.add_argument("--limit", type=int, default=100, help="at most N rows (default 100)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=_run(_deliveries_list))

    show = deliveries.add_parser(
        "show",
        help="one delivery with its attempts and payload",
        description="Show one delivery, its attempts and its payload.",
    )
    show.add_argument("id")
    _store_option(show)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_run(_deliveries_show))

    resend = deliveries.add_parser(
        "resend",
        help="requeue deliveries by id, or every delivery failed since T",
        description=(
            "Requeue finished deliveries with a fresh retry budget (Saleor's eventDeliveryRetry). "
            "--failed-since T takes every delivery that failed at or after T (with the other "
            "filters); --dry-run only lists them. A worker on the store sends them."
        ),
    )
    resend.add_argument("ids", nargs="*", metavar="ID")
    resend.add_argument("--failed-since", metavar="T", help="ISO-8601 or an age like 2h, 1d")
    resend.add_argument("--dry-run", action="store_true", help="list, change nothing")
    _store_option(resend)
    _filter_options(resend, times=False)
    resend.set_defaults(func=_run(_deliveries_resend))

    apps = _group(sub, "apps", "list and show apps in a store")
    apps_list = apps.add_parser("list", help="every app", description="List every app.")
    _store_option(apps_list)
    apps_list.set_defaults(func=_run(_apps_list))
    apps_show = apps.add_parser(
        "show", help="one app and its webhooks", description="Show one app and its webhooks."
    )
    apps_show.add_argument("id")
    _store_option(apps_show)
    apps_show.set_defaults(func=_run(_apps_show))

    webhooks = _group(sub, "webhooks", "list and show webhooks in a store (secrets redacted)")
    wh_list = webhooks.add_parser("list", help="every webhook", description="List webhooks.")
    _store_option(wh_list)
    wh_list.add_argument("--app", metavar="ID", help="only this app's webhooks")
    wh_list.set_defaults(func=_run(_webhooks_list))
    wh_show = webhooks.add_parser("show", help="one webhook", description="Show one webhook.")
    wh_show.add_argument("id")
    _store_option(wh_show)
    wh_show.set_defaults(func=_run(_webhooks_show))
