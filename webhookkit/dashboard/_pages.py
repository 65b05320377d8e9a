"""The dashboard's pages: one async function per route, each taking a :class:`Context`."""

from __future__ import annotations

import dataclasses
import inspect
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from .._secret import REDACTED, SENSITIVE_HEADERS, redact_url
from ..apps import MAX_CUSTOM_HEADERS, App, Webhook
from ..delivery.records import AttemptStatus, Delivery, DeliveryStatus
from ..events import ANY_EVENTS, EventKind
from ..exceptions import InvalidFieldError, InvalidQueryError, NotFoundError, WebhookKitError
from ..stores.base import DeliveryQuery
from ._core import OBSERVE, Context, DashboardResponse, Route

__all__ = ["ROUTES"]

_STATIC = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}
#: Rows of recent deliveries per endpoint the health page reads attempts of.
HEALTH_WINDOW = 50
#: How many ids a "replay failed" collects at most per request.
REPLAY_LIMIT = 1000


def is_secret_header(key: str) -> bool:
    """Saleor's custom ``Authorization*`` headers and the usual sensitive ones."""
    lower = key.lower()
    return lower.startswith("authorization") or lower in SENSITIVE_HEADERS


def shown_headers(headers: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    return [(k, REDACTED if is_secret_header(k) else v) for k, v in headers]


# -- misc ----------------------------------------------------------------------------------


async def index(ctx: Context) -> DashboardResponse:
    return ctx.redirect("/apps" if ctx.can_manage else "/deliveries")


async def static(ctx: Context) -> DashboardResponse:
    name = ctx.params["name"]
    if name not in _STATIC:
        raise NotFoundError(f"static: no file {name!r}", field="static")
    body = resources.files("webhookkit.dashboard").joinpath("static", name).read_bytes()
    return DashboardResponse(200, body, [("Content-Type", f"{_STATIC[name]}; charset=utf-8")])


# -- apps and tokens -------------------------------------------------------------------------


async def apps_list(ctx: Context, *, status: int = 200, **form: Any) -> DashboardResponse:
    apps = await ctx.kit.apps.list()
    hooks = await ctx.kit.webhooks.list()
    counts = {a.id: sum(1 for w in hooks if w.app_id == a.id) for a in apps}
    values = {"name": "", "permissions": [], "full_access": False, "is_active": True, "error": ""}
    values.update(form)
    return ctx.render(
        "apps.html",
        status,
        apps=sorted(apps, key=lambda a: (a.name.lower(), a.id)),
        webhook_counts=counts,
        all_permissions=sorted(ctx.kit.registry.permissions),
        form=values,
    )


async def apps_create(ctx: Context) -> DashboardResponse:
    request = ctx.request
    full = request.value("full_access") == "on"
    chosen = request.values("permissions")
    permissions = sorted(ctx.kit.registry.permissions) if full else chosen
    active = request.value("is_active") == "on"
    try:
        app = await ctx.kit.apps.create(
            request.value("name").strip(), permissions=permissions, is_active=active
        )
    except WebhookKitError as exc:
        return await apps_list(
            ctx,
            status=400,
            name=request.value("name"),
            permissions=chosen,
            full_access=full,
            is_active=active,
            error=str(exc),
        )
    ctx.flash("ok", f"App {app.name!r} created.")
    return ctx.redirect(f"/apps/{app.id}")


async def app_detail(ctx: Context) -> DashboardResponse:
    app = await ctx.kit.apps.get(ctx.params["app_id"])
    tokens = await ctx.kit.apps.list_tokens(app.id)
    webhooks = await ctx.kit.webhooks.list(app.id)
    full = app.permissions >= ctx.kit.registry.permissions
    return ctx.render(
        "app.html",
        app=app,
        full_access=full,
        tokens=sorted(tokens, key=lambda t: t.created_at or datetime.min.replace(tzinfo=UTC)),
        webhooks=webhooks,
        all_permissions=sorted(ctx.kit.registry.permissions),
    )


async def app_update(ctx: Context) -> DashboardResponse:
    """Rename the app or change its permissions (full access: every known permission)."""
    request = ctx.request
    app = await ctx.kit.apps.get(ctx.params["app_id"])
    full = request.value("full_access") == "on"
    permissions = sorted(ctx.kit.registry.permissions) if full else request.values("permissions")
    try:
        app = await ctx.kit.apps.update(
            app.id, name=request.value("name").strip(), permissions=permissions
        )
    except WebhookKitError as exc:
        ctx.flash("error", str(exc))
    else:
        ctx.flash("ok", f"App {app.name!r} saved.")
    return ctx.redirect(f"/apps/{app.id}")


async def app_active(ctx: Context) -> DashboardResponse:
    active = ctx.request.value("is_active") == "1"
    app = await ctx.kit.apps.update(ctx.params["app_id"], is_active=active)
    ctx.flash("ok", f"App {app.name!r} {'activated' if active else 'deactivated'}.")
    return ctx.redirect(_back(ctx, f"/apps/{app.id}"))


async def app_delete_confirm(ctx: Context) -> DashboardResponse:
    app = await ctx.kit.apps.get(ctx.params["app_id"])
    webhooks = await ctx.kit.webhooks.list(app.id)
    return ctx.render(
        "confirm.html",
        what=f"app {app.name!r}",
        details=f"Its {len(webhooks)} webhook(s) and all its tokens are deleted with it.",
        action=ctx.url(f"/apps/{app.id}/delete"),
        cancel=ctx.url(f"/apps/{app.id}"),
    )


async def app_delete(ctx: Context) -> DashboardResponse:
    app = await ctx.kit.apps.get(ctx.params["app_id"])
    await ctx.kit.apps.delete(app.id)
    ctx.flash("ok", f"App {app.name!r} deleted.")
    return ctx.redirect("/apps")


async def token_create(ctx: Context) -> DashboardResponse:
    app = await ctx.kit.apps.get(ctx.params["app_id"])
    try:
        new = await ctx.kit.apps.create_token(app.id, name=ctx.request.value("name").strip())
    except WebhookKitError as exc:
        ctx.flash("error", str(exc))
    else:
        # The only copy of the raw token: a flash is shown on the next page, then forgotten.
        ctx.flash("token", new.raw.reveal())
    return ctx.redirect(f"/apps/{app.id}")


async def token_delete(ctx: Context) -> DashboardResponse:
    app = await ctx.kit.apps.get(ctx.params["app_id"])
    tokens = {t.id: t for t in await ctx.kit.apps.list_tokens(app.id)}
    token = tokens.get(ctx.params["token_id"])
    if token is None:
        raise NotFoundError("token: no such token of this app", field="token")
    await ctx.kit.apps.revoke_token(token.id)
    ctx.flash("ok", f"Token {token.name or '(unnamed)'} ending in {token.last_4} deleted.")
    return ctx.redirect(f"/apps/{app.id}")


# -- webhooks --------------------------------------------------------------------------------


@dataclass
class WebhookForm:
    """What the webhook form shows; never holds a secret key or Authorization value."""

    webhook_id: str = ""
    app_id: str = ""
    name: str = ""
    target_url: str = ""
    has_secret: bool = False
    headers: list[tuple[str, str, bool]] = dataclasses.field(default_factory=list)
    events: set[str] = dataclasses.field(default_factory=set)
    subscription_query: str = ""
    is_active: bool = False
    object_id: str = ""

    @classmethod
    def of(cls, webhook: Webhook) -> WebhookForm:
        return cls(
            webhook_id=webhook.id,
            app_id=webhook.app_id,
            name=webhook.name,
            target_url=redact_url(webhook.target_url),
            has_secret=webhook.secret_key is not None,
            headers=[
                (k, "" if is_secret_header(k) else v, is_secret_header(k))
                for k, v in webhook.custom_headers
            ],
            events=set(webhook.events),
            subscription_query=webhook.subscription_query or "",
            is_active=webhook.is_active,
        )


async def webhooks_list(ctx: Context) -> DashboardResponse:
    apps = {a.id: a for a in await ctx.kit.apps.list()}
    webhooks = await ctx.kit.webhooks.list()
    return ctx.render(
        "webhooks.html",
        webhooks=sorted(webhooks, key=lambda w: (w.name.lower(), w.id)),
        apps=apps,
        redact_url=redact_url,
    )


async def _render_form(
    ctx: Context,
    form: WebhookForm,
    *,
    status: int = 200,
    error: str = "",
    query_error: InvalidQueryError | None = None,
    dry_run: str | None = None,
) -> DashboardResponse:
    app = await ctx.kit.apps.get(form.app_id)
    events = sorted(ctx.kit.registry, key=lambda e: e.name)
    lines = form.subscription_query.split("\n") if form.subscription_query else [""]
    rows = form.headers + [("", "", False)] * (MAX_CUSTOM_HEADERS - len(form.headers))
    return ctx.render(
        "webhook_form.html",
        status,
        app=app,
        form=form,
        header_rows=rows[:MAX_CUSTOM_HEADERS],
        async_events=[e for e in events if e.kind is EventKind.ASYNC],
        sync_events=[e for e in events if e.kind is EventKind.SYNC],
        any_events=ANY_EVENTS,
        line_count=len(lines),
        error=error,
        query_error=query_error,
        dry_run=dry_run,
        can_dry_run=ctx.dashboard.object_loader is not None,
        retype=_dropped_secrets(ctx),
    )


def _dropped_secrets(ctx: Context) -> list[str]:
    """Write-only fields typed into a form that is shown again: they must be typed again."""
    request = ctx.request
    if request.method != "POST":
        return []
    dropped = ["secret key"] if request.value("secret_key") else []
    for i in range(MAX_CUSTOM_HEADERS):
        key = request.value(f"header_key_{i}").strip()
        if key and is_secret_header(key) and request.value(f"header_value_{i}"):
            dropped.append(f"value of {key}")
    return dropped


async def webhook_new(ctx: Context) -> DashboardResponse:
    app = await ctx.kit.apps.get(ctx.request.arg("app"))
    return await _render_form(ctx, WebhookForm(app_id=app.id))


def _form_from_request(ctx: Context, old: Webhook | None) -> WebhookForm:
    request = ctx.request
    headers: list[tuple[str, str, bool]] = []
    for i in range(MAX_CUSTOM_HEADERS):
        key = request.value(f"header_key_{i}").strip()
        if key:
            secret = is_secret_header(key)
            headers.append((key, "" if secret else request.value(f"header_value_{i}"), secret))
    return WebhookForm(
        webhook_id=old.id if old else "",
        app_id=old.app_id if old else request.value("app_id"),
        name=request.value("name"),
        target_url=request.value("target_url").strip(),
        has_secret=old is not None and old.secret_key is not None,
        headers=headers,
        events=set(request.values("events")),
        subscription_query=request.value("subscription_query").replace("\r\n", "\n"),
        is_active=request.value("is_active") == "on",
        object_id=request.value("object_id"),
    )


def _changes(ctx: Context, old: Webhook | None) -> dict[str, Any]:
    """Keyword arguments for create/update from the posted form; write-only fields left
    empty keep their stored value."""
    request = ctx.request
    old_headers = dict(old.custom_headers) if old else {}
    headers: list[tuple[str, str]] = []
    for i in range(MAX_CUSTOM_HEADERS):
        key = request.value(f"header_key_{i}").strip()
        value = request.value(f"header_value_{i}")
        if not key:
            continue
        if not value and is_secret_header(key) and key.lower() in old_headers:
            value = old_headers[key.lower()]  # write-only: blank keeps the stored value
        headers.append((key, value))
    events = request.values("events")
    if ANY_EVENTS in events:
        events = [ANY_EVENTS]
    query = request.value("subscription_query").replace("\r\n", "\n").strip()
    changes: dict[str, Any] = {
        "name": request.value("name").strip(),
        "events": events,
        "subscription_query": query or None,
        "custom_headers": headers,
        "is_active": request.value("is_active") == "on",
    }
    target = request.value("target_url").strip()
    if old is None or target != redact_url(old.target_url):
        changes["target_url"] = target  # the form shows the URL with its password redacted
    secret = request.value("secret_key")
    if request.value("clear_secret") == "on":
        changes["secret_key"] = None
    elif secret or old is None:
        changes["secret_key"] = secret or None
    return changes


async def webhook_create(ctx: Context) -> DashboardResponse:
    app = await ctx.kit.apps.get(ctx.request.value("app_id"))
    try:
        if not app.is_active:
            raise InvalidFieldError(
                "app: activate the app before creating webhooks for it", field="app"
            )
        webhook = await ctx.kit.webhooks.create(app, **_changes(ctx, None))
    except WebhookKitError as exc:
        return await _form_error(ctx, _form_from_request(ctx, None), exc)
    ctx.flash("ok", f"Webhook {webhook.name or webhook.id!r} created.")
    return ctx.redirect(f"/webhooks/{webhook.id}")


async def _form_error(ctx: Context, form: WebhookForm, exc: WebhookKitError) -> DashboardResponse:
    query_error = exc if isinstance(exc, InvalidQueryError) else None
    return await _render_form(ctx, form, status=400, error=str(exc), query_error=query_error)


async def webhook_edit(ctx: Context) -> DashboardResponse:
    webhook = await ctx.kit.webhooks.get(ctx.params["webhook_id"])
    return await _render_form(ctx, WebhookForm.of(webhook))


async def webhook_update(ctx: Context) -> DashboardResponse:
    old = await ctx.kit.webhooks.get(ctx.params["webhook_id"])
    try:
        webhook = await ctx.kit.webhooks.update(old.id, **_changes(ctx, old))
    except WebhookKitError as exc:
        return await _form_error(ctx, _form_from_request(ctx, old), exc)
    ctx.flash("ok", f"Webhook {webhook.name or webhook.id!r} saved.")
    return ctx.redirect(f"/webhooks/{webhook.id}")


async def webhook_dry_run(ctx: Context) -> DashboardResponse:
    """Render the posted query for one object the host loads; nothing is stored or sent."""
    request = ctx.request
    webhook_id = request.value("webhook_id")
    old = await ctx.kit.webhooks.get(webhook_id) if webhook_id else None
    form = _form_from_request(ctx, old)
    app = await ctx.kit.apps.get(form.app_id)
    loader = ctx.dashboard.object_loader
    try:
        if loader is None:
            raise InvalidFieldError(
                "object_id: the host gave the dashboard no object_loader", field="object_id"
            )
        if not form.subscription_query.strip():
            raise InvalidFieldError(
                "subscription_query: write a query to dry-run", field="subscription_query"
            )
        if not form.object_id.strip():
            raise InvalidFieldError("object_id: give an object id", field="object_id")
        subject = loader(form.object_id.strip())
        if inspect.isawaitable(subject):
            subject = await subject
        if subject is None:
            raise NotFoundError(
                f"object_id: no object {form.object_id.strip()!r}", field="object_id"
            )
        chosen = [e for e in form.events if e != ANY_EVENTS]
        body = await ctx.kit.dry_run(
            form.subscription_query,
            subject=subject,
            event=chosen[0] if len(chosen) == 1 else None,
            app=app,
        )
    except WebhookKitError as exc:
        return await _form_error(ctx, form, exc)
    shown = "(no delivery: the query selects nothing for this object)"
    if body is not None:
        shown = _pretty(body)
    return await _render_form(ctx, form, dry_run=shown)


async def webhook_active(ctx: Context) -> DashboardResponse:
    active = ctx.request.value("is_active") == "1"
    webhook = await ctx.kit.webhooks.update(ctx.params["webhook_id"], is_active=active)
    ctx.flash(
        "ok", f"Webhook {webhook.name or webhook.id!r} {'activated' if active else 'deactivated'}."
    )
    return ctx.redirect(_back(ctx, "/webhooks"))


async def webhook_delete_confirm(ctx: Context) -> DashboardResponse:
    webhook = await ctx.kit.webhooks.get(ctx.params["webhook_id"])
    return ctx.render(
        "confirm.html",
        what=f"webhook {webhook.name or webhook.id!r}",
        details="Its pending deliveries fail unsent; delivered records stay in the log.",
        action=ctx.url(f"/webhooks/{webhook.id}/delete"),
        cancel=ctx.url(f"/webhooks/{webhook.id}"),
    )


async def webhook_delete(ctx: Context) -> DashboardResponse:
    webhook = await ctx.kit.webhooks.get(ctx.params["webhook_id"])
    await ctx.kit.webhooks.delete(webhook.id)
    ctx.flash("ok", f"Webhook {webhook.name or webhook.id!r} deleted.")
    return ctx.redirect("/webhooks")


def _back(ctx: Context, default: str) -> str:
    """The page below the mount point the form asked to return to (``next``), else
    ``default``; never another site."""
    target = ctx.request.value("next")
    ok = target.startswith("/") and not target.startswith("//") and "\\" not in target
    return target if ok else default


# -- deliveries ------------------------------------------------------------------------------


def _pretty(body: bytes) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False, sort_keys=False)
    except ValueError:
        return body.decode("utf-8", "replace")


def _parse_time(value: str, field: str) -> datetime | None:
    """``YYYY-MM-DDTHH:MM[:SS]`` (an HTML datetime-local input), read as UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidFieldError(
            f"{field}: {value!r} is not a time such as 2026-03-01T12:30", field=field
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_QUERY_FIELDS = {f.name for f in dataclasses.fields(DeliveryQuery)}


async def _find_deliveries(
    ctx: Context, filters: dict[str, str], offset: int, limit: int
) -> list[Delivery]:
    status = DeliveryStatus(filters["status"]) if filters["status"] else None
    query: dict[str, Any] = {
        "webhook_id": filters["webhook"] or None,
        "status": status,
        "event": filters["event"] or None,
        "created_after": _parse_time(filters["since"], "since"),
        "created_before": _parse_time(filters["until"], "until"),
        "limit": limit,
        "offset": offset,
    }
    app = filters["app"]
    if app and "app_id" in _QUERY_FIELDS:
        query["app_id"] = app
    elif app:
        # Stores without an app filter: read the newest 10,000 and filter here.
        query.update(limit=10_000, offset=0)
        rows = await ctx.kit.list_deliveries(DeliveryQuery(**query))
        return [d for d in rows if d.app_id == app][offset : offset + limit]
    return await ctx.kit.list_deliveries(DeliveryQuery(**query))


_FILTERS = ("webhook", "app", "event", "status", "since", "until")


async def deliveries_list(ctx: Context) -> DashboardResponse:
    filters = {name: ctx.request.arg(name) for name in _FILTERS}
    try:
        page = max(int(ctx.request.arg("page", "1") or "1"), 1)
    except ValueError:
        page = 1
    size = ctx.dashboard.page_size
    error = ""
    rows: list[Delivery] = []
    try:
        if filters["status"] and filters["status"] not in set(DeliveryStatus):
            raise InvalidFieldError(f"status: {filters['status']!r} is unknown", field="status")
        rows = await _find_deliveries(ctx, filters, (page - 1) * size, size + 1)
    except WebhookKitError as exc:
        error = str(exc)
    apps = {a.id: a for a in await ctx.kit.apps.list()}
    webhooks = {w.id: w for w in await ctx.kit.webhooks.list()}
    return ctx.render(
        "deliveries.html",
        status=400 if error else 200,
        deliveries=rows[:size],
        has_next=len(rows) > size,
        page=page,
        filters=filters,
        apps=apps,
        webhooks=webhooks,
        events=sorted(e.value for e in ctx.kit.registry if e.is_async),
        statuses=[s.value for s in DeliveryStatus],
        error=error,
    )


async def delivery_detail(ctx: Context) -> DashboardResponse:
    delivery = await ctx.kit.get_delivery(ctx.params["delivery_id"])
    if delivery is None:
        raise NotFoundError("delivery: no such delivery", field="delivery")
    payload = await ctx.kit.store.get_payload(delivery.payload_id)
    attempts = await ctx.kit.list_attempts(delivery.id)
    webhook = await ctx.kit.store.get_webhook(delivery.webhook_id)
    app = await ctx.kit.store.get_app(delivery.app_id)
    return ctx.render(
        "delivery.html",
        delivery=delivery,
        payload=_pretty(payload.body) if payload is not None else None,
        attempts=[(a, shown_headers(a.request_headers)) for a in attempts],
        webhook=webhook,
        app=app,
    )


async def delivery_resend(ctx: Context) -> DashboardResponse:
    """Send again through the kit's own scheduler and guarded transports."""
    delivery_id = ctx.params["delivery_id"]
    try:
        await ctx.kit.retry_delivery(delivery_id)
    except WebhookKitError as exc:
        ctx.flash("error", str(exc))
    else:
        ctx.flash("ok", "Delivery queued again; its next attempt appears below.")
    return ctx.redirect(f"/deliveries/{delivery_id}")


async def deliveries_replay(ctx: Context) -> DashboardResponse:
    """Queue again every failed delivery created since a time (optionally of one webhook)."""
    request = ctx.request
    try:
        since = _parse_time(request.value("since").strip(), "since")
        if since is None:
            raise InvalidFieldError("since: give the time to replay failures from", field="since")
        ids: list[str] = []
        while len(ids) < REPLAY_LIMIT:
            batch = await ctx.kit.list_deliveries(
                DeliveryQuery(
                    webhook_id=request.value("webhook") or None,
                    status=DeliveryStatus.FAILED,
                    created_after=since,
                    limit=min(200, REPLAY_LIMIT - len(ids)),
                    offset=len(ids),
                )
            )
            ids += [d.id for d in batch]
            if len(batch) < 200:
                break
        for delivery_id in ids:
            await ctx.kit.retry_delivery(delivery_id)
    except WebhookKitError as exc:
        ctx.flash("error", str(exc))
    else:
        ctx.flash("ok", f"{len(ids)} failed deliveries queued again.")
    return ctx.redirect("/deliveries", status="", since=request.value("since"))


# -- health ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    webhook: Webhook
    app: App | None
    attempts: int
    success_rate: float | None
    mean_ms: float | None
    p95_ms: float | None
    last_status: str
    breaker: str
    pending: int
    in_flight: int


async def health(ctx: Context) -> DashboardResponse:
    kit = ctx.kit
    now = kit.clock.now()
    apps = {a.id: a for a in await kit.apps.list()}
    rows: list[EndpointHealth] = []
    for webhook in sorted(await kit.webhooks.list(), key=lambda w: (w.name.lower(), w.id)):
        recent = await kit.list_deliveries(
            DeliveryQuery(webhook_id=webhook.id, limit=HEALTH_WINDOW)
        )
        attempts = [a for d in recent for a in await kit.list_attempts(d.id)]
        attempts.sort(key=lambda a: a.created_at)
        durations = sorted(a.duration * 1000 for a in attempts)
        ok = sum(1 for a in attempts if a.status is AttemptStatus.SUCCESS)
        pending = await kit.list_deliveries(
            DeliveryQuery(webhook_id=webhook.id, status=DeliveryStatus.PENDING, limit=10_000)
        )
        # In flight: claimed by some worker (of any process) and its lease still running.
        leased = sum(1 for d in pending if d.lease_until is not None and d.lease_until > now)
        rows.append(
            EndpointHealth(
                webhook=webhook,
                app=apps.get(webhook.app_id),
                attempts=len(attempts),
                success_rate=ok / len(attempts) if attempts else None,
                mean_ms=sum(durations) / len(durations) if durations else None,
                p95_ms=durations[min(len(durations) - 1, int(len(durations) * 0.95))]
                if durations
                else None,
                last_status=attempts[-1].status.value if attempts else "",
                breaker=kit.scheduler.gate.state(webhook.id, now),
                pending=len(pending) - leased,
                in_flight=leased,
            )
        )
    return ctx.render(
        "health.html",
        rows=rows,
        window=HEALTH_WINDOW,
        pending=sum(r.pending for r in rows),
        in_flight=sum(r.in_flight for r in rows),
        stats=kit.stats,
    )


ROUTES: tuple[Route, ...] = (
    Route("GET", "/", index, OBSERVE),
    Route("GET", "/static/{name}", static, OBSERVE),
    Route("GET", "/apps", apps_list),
    Route("POST", "/apps", apps_create),
    Route("GET", "/apps/{app_id}", app_detail),
    Route("POST", "/apps/{app_id}", app_update),
    Route("POST", "/apps/{app_id}/active", app_active),
    Route("GET", "/apps/{app_id}/delete", app_delete_confirm),
    Route("POST", "/apps/{app_id}/delete", app_delete),
    Route("POST", "/apps/{app_id}/tokens", token_create),
    Route("POST", "/apps/{app_id}/tokens/{token_id}/delete", token_delete),
    Route("GET", "/webhooks", webhooks_list),
    Route("GET", "/webhooks/new", webhook_new),
    Route("POST", "/webhooks/new", webhook_create),
    Route("POST", "/webhooks/dry-run", webhook_dry_run),
    Route("GET", "/webhooks/{webhook_id}", webhook_edit),
    Route("POST", "/webhooks/{webhook_id}", webhook_update),
    Route("POST", "/webhooks/{webhook_id}/active", webhook_active),
    Route("GET", "/webhooks/{webhook_id}/delete", webhook_delete_confirm),
    Route("POST", "/webhooks/{webhook_id}/delete", webhook_delete),
    Route("GET", "/deliveries", deliveries_list, OBSERVE),
    Route("POST", "/deliveries/replay", deliveries_replay),
    Route("GET", "/deliveries/{delivery_id}", delivery_detail, OBSERVE),
    Route("POST", "/deliveries/{delivery_id}/resend", delivery_resend),
    Route("GET", "/health", health, OBSERVE),
)
