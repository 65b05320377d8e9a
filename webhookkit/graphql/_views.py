"""webhookkit's values as the dictionaries the GraphQL types read; lazy fields are callables,
which graphql-core's default resolver calls with ``info`` and the field's arguments."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from graphql import GraphQLResolveInfo

from .._secret import REDACTED, redact_headers, redact_url
from ..apps import App, AppToken, Webhook
from ..delivery.records import Attempt, Delivery, DeliveryStatus
from ..events import ANY_EVENTS
from ..installations import AppInstallation, InstallationStatus
from ..stores.base import DeliveryQuery
from ._context import requestor_of
from ._errors import PermissionDenied
from ._ids import to_global_id
from ._relay import connection
from ._rules import manages_apps

if TYPE_CHECKING:
    from ..dispatcher import WebhookKit

__all__ = ["Views", "iso", "permission_view"]

#: Deliveries read per webhook for ``eventDeliveries`` (pages are cut from them).
MAX_DELIVERIES = 10_000


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def permission_view(code: str) -> dict[str, str]:
    """Saleor's ``Permission``: the code and a readable name (``MANAGE_APPS`` -> "Manage apps.")."""
    return {"code": code, "name": code.replace("_", " ").capitalize() + "."}


def _status(value: str) -> str:
    return value.upper()


def _headers_json(headers: Iterable[tuple[str, str]]) -> str:
    # Custom headers may be any ``Authorization*`` key (Saleor's rule): hide all of them.
    shown = [
        (k, REDACTED if k.lower().startswith("authorization") else v)
        for k, v in redact_headers(list(headers))
    ]
    return json.dumps(dict(shown))


class Views:
    """Builds the views; holds the kit for the lazy fields (an app's webhooks, deliveries)."""

    def __init__(self, kit: WebhookKit) -> None:
        self.kit = kit

    # -- events ------------------------------------------------------------------------------
    def event_view(self, value: str) -> dict[str, str]:
        if value == ANY_EVENTS:
            return {"name": "Any events", "eventType": ANY_EVENTS.upper()}
        event = self.kit.registry.get(value)
        return {"name": event.description or event.name, "eventType": event.name}

    def _events(self, webhook: Webhook, *, kind: str | None) -> list[dict[str, str]]:
        out = []
        for value in sorted(webhook.subscribed_events):
            is_async = value == ANY_EVENTS or self.kit.registry.get(value).is_async
            if kind is None or (kind == "async") == is_async:
                out.append(self.event_view(value))
        return out

    # -- webhooks ----------------------------------------------------------------------------
    def webhook(self, webhook: Webhook) -> dict[str, Any]:
        async def app(info: GraphQLResolveInfo[Any]) -> dict[str, Any] | None:
            found = await self.kit.store.get_app(webhook.app_id)
            return self.app(found) if found is not None else None

        async def deliveries(info: GraphQLResolveInfo[Any], **args: Any) -> dict[str, Any]:
            flt = args.get("filter") or {}
            status = flt.get("status")
            event = flt.get("eventType")
            found = await self.kit.list_deliveries(
                DeliveryQuery(
                    webhook_id=webhook.id,
                    status=None if status is None else _delivery_status(status),
                    event=None if event is None else event.lower(),
                    limit=MAX_DELIVERIES,
                )
            )
            # Newest first unless asked otherwise (the store lists oldest first).
            if (args.get("sortBy") or {}).get("direction") != "ASC":
                found.reverse()
            return connection(
                found,
                self.delivery,
                name="eventDeliveries",
                first=args.get("first"),
                last=args.get("last"),
                after=args.get("after"),
                before=args.get("before"),
            )

        return {
            "id": to_global_id("Webhook", webhook.id),
            "name": webhook.name,
            "identifier": None,
            "events": self._events(webhook, kind=None),
            "asyncEvents": self._events(webhook, kind="async"),
            "syncEvents": self._events(webhook, kind="sync"),
            "app": app,
            "eventDeliveries": deliveries,
            "targetUrl": redact_url(webhook.target_url),
            "isActive": webhook.is_active,
            # Secrets are never shown again, as tokens are not.
            "secretKey": None,
            "subscriptionQuery": webhook.subscription_query,
            "customHeaders": _headers_json(webhook.custom_headers)
            if webhook.custom_headers
            else None,
        }

    # -- deliveries --------------------------------------------------------------------------
    def delivery(self, delivery: Delivery) -> dict[str, Any]:
        async def payload(info: GraphQLResolveInfo[Any]) -> str | None:
            row = await self.kit.store.get_payload(delivery.payload_id)
            return row.body.decode("utf-8", "replace") if row is not None else None

        async def attempts(info: GraphQLResolveInfo[Any], **args: Any) -> dict[str, Any]:
            found = await self.kit.list_attempts(delivery.id)
            if (args.get("sortBy") or {}).get("direction") == "DESC":
                found.reverse()
            return connection(
                found,
                self.attempt,
                name="attempts",
                first=args.get("first"),
                last=args.get("last"),
                after=args.get("after"),
                before=args.get("before"),
            )

        return {
            "id": to_global_id("EventDelivery", delivery.id),
            "createdAt": iso(delivery.created_at),
            "status": _status(delivery.status.value),
            "eventType": delivery.event.upper(),
            "attempts": attempts,
            "payload": payload,
        }

    def attempt(self, attempt: Attempt) -> dict[str, Any]:
        return {
            "id": to_global_id("EventDeliveryAttempt", attempt.id),
            "createdAt": iso(attempt.created_at),
            "taskId": None,
            "duration": attempt.duration,
            "response": attempt.response_excerpt,
            "responseHeaders": _headers_json(attempt.response_headers),
            "responseStatusCode": attempt.response_status_code,
            "requestHeaders": _headers_json(attempt.request_headers),
            "status": _status(attempt.status.value),
        }

    # -- apps ----------------------------------------------------------------------------------
    def app(self, app: App) -> dict[str, Any]:
        def check(info: GraphQLResolveInfo[Any]) -> None:
            requestor = requestor_of(info.context)
            if isinstance(requestor, App) and requestor.id == app.id:
                return
            if not manages_apps(requestor):
                raise PermissionDenied(["MANAGE_APPS", "OWNER"])

        async def tokens(info: GraphQLResolveInfo[Any]) -> list[dict[str, Any]]:
            check(info)
            return [self.token(t) for t in await self.kit.store.list_tokens(app.id)]

        async def webhooks(info: GraphQLResolveInfo[Any]) -> list[dict[str, Any]]:
            check(info)
            return [self.webhook(w) for w in await self.kit.store.list_webhooks(app.id)]

        return {
            "id": to_global_id("App", app.id),
            "metadata": [],
            "privateMetadata": [],
            "identifier": app.identifier,
            "permissions": [permission_view(p) for p in sorted(app.permissions)],
            "created": iso(app.created_at),
            "isActive": app.is_active,
            "name": app.name,
            "type": "LOCAL",
            "tokens": tokens,
            "webhooks": webhooks,
            "aboutApp": None,
            "dataPrivacyUrl": None,
            "homepageUrl": None,
            "supportUrl": None,
            "appUrl": None,
            "manifestUrl": None,
            "version": None,
            "accessToken": None,
            "author": None,
        }

    @staticmethod
    def token(token: AppToken) -> dict[str, Any]:
        # ``authToken`` of a stored token is its last four characters, as in Saleor.
        return {
            "id": to_global_id("AppToken", token.id),
            "name": token.name,
            "authToken": token.last_4,
        }

    @staticmethod
    def installation(installation: AppInstallation) -> dict[str, Any]:
        status = {
            InstallationStatus.PENDING: "PENDING",
            InstallationStatus.INSTALLED: "SUCCESS",
            InstallationStatus.FAILED: "FAILED",
        }[installation.status]
        return {
            "id": to_global_id("AppInstallation", installation.id),
            "status": status,
            "createdAt": iso(installation.created_at),
            "updatedAt": iso(installation.updated_at),
            "message": installation.message,
            "appName": installation.app_name,
            "manifestUrl": redact_url(installation.manifest_url),
        }


def _delivery_status(name: str) -> DeliveryStatus:
    return DeliveryStatus(name.lower())
