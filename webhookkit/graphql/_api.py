"""The resolvers of the management API: Saleor's authorisation, then the kit's managers.

Bad input comes back as error entries in the payload (``errors`` and the deprecated
``webhookErrors``/``appErrors``); a missing permission as Saleor's ``PermissionDenied``
GraphQL error. Nothing a client sends makes a resolver fail with a server error.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from graphql import GraphQLError, GraphQLResolveInfo

from .._ids import new_id
from ..apps import App, Webhook
from ..delivery.records import Delivery, Payload
from ..events import ANY_EVENTS
from ..exceptions import ConfigurationError
from ._context import Requestor, StaffUser, requestor_of
from ._errors import ErrorEntry, MutationError, PermissionDenied, entry, from_exception
from ._ids import from_global_id, to_global_id
from ._relay import connection
from ._rules import check_grant, check_scope, manages_apps
from ._views import Views

if TYPE_CHECKING:
    from ..dispatcher import WebhookKit
    from ._install import Installer

__all__ = ["ManagementAPI", "ObjectLoader", "PrincipalOf"]

log = logging.getLogger("webhookkit.graphql")

#: ``(type_name, pk)`` of a global ID -> the host's object (or None); sync or async.
ObjectLoader: TypeAlias = Callable[[str, str], Any]
#: The requestor as the ``issuingPrincipal`` of a dry run's payload.
PrincipalOf: TypeAlias = Callable[[Requestor], Any]

Resolver: TypeAlias = Callable[..., Awaitable[Any]]


def default_principal(requestor: Requestor) -> Any:
    """An app as itself; a staff user as a ``User`` mapping (``__typename``, ``id``, ``email``)."""
    if isinstance(requestor, StaffUser):
        return {
            "__typename": "User",
            "id": to_global_id("User", requestor.id),
            "email": requestor.email,
        }
    return requestor


def _pk(global_id: str, type_name: str, field: str, code: str = "GRAPHQL_ERROR") -> str:
    try:
        found, pk = from_global_id(global_id)
    except ValueError:
        raise MutationError(entry(code, f"Couldn't resolve id: {global_id}.", field)) from None
    if found != type_name:
        raise MutationError(
            entry(
                code, f"Invalid ID: {global_id}. Expected: {type_name}, received: {found}.", field
            )
        )
    return pk


def _not_found(global_id: str, field: str) -> MutationError:
    return MutationError(entry("NOT_FOUND", f"Couldn't resolve to a node: {global_id}", field))


def _need_requestor(requestor: Requestor, *permissions: str) -> None:
    if requestor is None:
        raise PermissionDenied(permissions)


def _need_manage_apps(requestor: Requestor, *, staff_only: bool = False) -> None:
    if staff_only and not isinstance(requestor, StaffUser):
        raise PermissionDenied(["AUTHENTICATED_STAFF_USER", "MANAGE_APPS"])
    if not manages_apps(requestor):
        raise PermissionDenied(["MANAGE_APPS"])


def _custom_headers(raw: str | None) -> dict[str, str] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise MutationError(
            entry(
                "INVALID_CUSTOM_HEADERS",
                "Custom headers must be a JSON object of strings.",
                "customHeaders",
            )
        )
    return value


def _events(data: Mapping[str, Any]) -> list[str]:
    """Saleor's precedence: ``events`` if non-empty, else ``asyncEvents + syncEvents``."""
    explicit = list(data.get("events") or [])
    chosen = explicit or [*(data.get("asyncEvents") or []), *(data.get("syncEvents") or [])]
    return list(dict.fromkeys(chosen))


class ManagementAPI:
    """Resolvers bound to one kit; :func:`webhookkit.graphql.extend_schema` wires them."""

    def __init__(
        self,
        kit: WebhookKit,
        *,
        installer: Installer,
        get_requestor: Callable[[Any], Requestor] = requestor_of,
        load_object: ObjectLoader | None = None,
        principal_of: PrincipalOf = default_principal,
    ) -> None:
        self.kit = kit
        self.views = Views(kit)
        self.installer = installer
        self.get_requestor = get_requestor
        self.load_object = load_object
        self.principal_of = principal_of

    def requestor(self, info: GraphQLResolveInfo[Any]) -> Requestor:
        return self.get_requestor(info.context)

    # -- wiring ------------------------------------------------------------------------------
    def resolvers(self) -> dict[str, dict[str, Resolver]]:
        """``{"query": {field: resolver}, "mutation": {...}}``."""
        return {
            "query": {
                "webhook": self.q_webhook,
                "webhookEvents": self.q_webhook_events,
                "app": self.q_app,
                "apps": self.q_apps,
                "appsInstallations": self.q_installations,
            },
            "mutation": {
                "webhookCreate": self._mutation(self.webhook_create, "webhookErrors", "webhook"),
                "webhookUpdate": self._mutation(self.webhook_update, "webhookErrors", "webhook"),
                "webhookDelete": self._mutation(self.webhook_delete, "webhookErrors", "webhook"),
                "webhookDryRun": self._mutation(self.webhook_dry_run, None, "payload", "dry_run"),
                "webhookTrigger": self._mutation(self.webhook_trigger, None, "delivery", "dry_run"),
                "eventDeliveryRetry": self._mutation(self.delivery_retry, None, "delivery"),
                "appCreate": self._mutation(self.app_create, "appErrors", "app", "app"),
                "appUpdate": self._mutation(self.app_update, "appErrors", "app", "app"),
                "appDelete": self._mutation(self.app_delete, "appErrors", "app", "app"),
                "appActivate": self._mutation(self.app_activate, "appErrors", "app", "app"),
                "appDeactivate": self._mutation(self.app_deactivate, "appErrors", "app", "app"),
                "appTokenCreate": self._mutation(self.token_create, "appErrors", "appToken", "app"),
                "appTokenDelete": self._mutation(self.token_delete, "appErrors", "appToken", "app"),
                "appTokenVerify": self._mutation(self.token_verify, "appErrors", "valid", "app"),
                "appInstall": self._mutation(
                    self.installer.app_install, "appErrors", "appInstallation", "app"
                ),
                "appFetchManifest": self._mutation(
                    self.installer.app_fetch_manifest, "appErrors", "manifest", "app"
                ),
            },
        }

    def _mutation(
        self,
        body: Callable[..., Awaitable[dict[str, Any]]],
        legacy: str | None,
        main: str,
        kind: str = "webhook",
    ) -> Resolver:
        """A resolver answering ``{main: ..., errors: [...], <legacy>: [...]}``: refusals by
        webhookkit and :class:`MutationError` become error entries."""

        async def resolve(root: Any, info: GraphQLResolveInfo[Any], **args: Any) -> Any:
            errors: list[ErrorEntry] = []
            try:
                result = await body(info, **args)
            except MutationError as exc:
                errors, result = exc.entries, {}
            except ConfigurationError as exc:
                errors, result = [from_exception(exc, kind=kind)], {}
            result.setdefault(main, False if main == "valid" else None)
            result["errors"] = errors
            if legacy is not None:
                result[legacy] = errors
            return result

        return resolve

    async def _fire(self, event: str, app: App) -> None:
        """An app lifecycle event to the app's own webhooks; a failure to queue it is logged,
        never turned into an error of the mutation that already happened."""
        try:
            await self.kit.trigger(event, subject=app, app=app)
        except Exception:
            log.exception("%s for app %s could not be queued", event, app.id)

    # -- webhooks ----------------------------------------------------------------------------
    async def _owner_for_create(self, requestor: Requestor, app_id: str | None) -> App:
        if isinstance(requestor, App):
            return requestor  # an app always creates its own webhooks; ``app`` is ignored
        if app_id is None:
            raise MutationError(entry("INVALID", "Missing token or app", "app"))
        pk = _pk(app_id, "App", "app")
        app = await self.kit.store.get_app(pk)
        if app is None or not app.is_active:
            raise MutationError(entry("NOT_FOUND", "App doesn't exist or is disabled", "app"))
        return app

    def _webhook_access(self, requestor: Requestor) -> None:
        _need_requestor(requestor, "MANAGE_APPS", "AUTHENTICATED_APP")
        if isinstance(requestor, StaffUser) and not manages_apps(requestor):
            raise PermissionDenied(["MANAGE_APPS", "AUTHENTICATED_APP"])

    async def _find_webhook(
        self, requestor: Requestor, webhook_id: str | None, identifier: str | None
    ) -> Webhook:
        if webhook_id is not None and identifier is not None:
            raise MutationError(
                entry("GRAPHQL_ERROR", "Argument 'id' cannot be combined with 'identifier'", "id")
            )
        if webhook_id is None and identifier is None:
            raise MutationError(
                entry(
                    "GRAPHQL_ERROR",
                    "At least one of arguments is required: 'id', 'identifier'.",
                    "id",
                )
            )
        if webhook_id is None:
            raise MutationError(
                entry(
                    "NOT_FOUND", "Webhook identifiers are not stored by this server.", "identifier"
                )
            )
        pk = _pk(webhook_id, "Webhook", "id")
        webhook = await self.kit.store.get_webhook(pk)
        # Another app's webhook is invisible to an app, as in Saleor.
        if webhook is None or (isinstance(requestor, App) and webhook.app_id != requestor.id):
            raise _not_found(webhook_id, "id")
        return webhook

    async def webhook_create(self, info: GraphQLResolveInfo[Any], input: dict[str, Any]) -> Any:
        requestor = self.requestor(info)
        self._webhook_access(requestor)
        owner = await self._owner_for_create(requestor, input.get("app"))
        if not input.get("targetUrl"):
            raise MutationError(entry("REQUIRED", "This field is required.", "targetUrl"))
        if input.get("identifier"):
            raise MutationError(
                entry("INVALID", "Webhook identifiers are not stored by this server.", "identifier")
            )
        webhook = await self.kit.webhooks.create(
            owner,
            target_url=input["targetUrl"],
            events=_events(input),
            name=input.get("name") or "",
            is_active=input.get("isActive", True) is not False,
            subscription_query=input.get("query") or None,
            secret_key=input.get("secretKey") or None,
            custom_headers=_custom_headers(input.get("customHeaders")),
        )
        return {"webhook": self.views.webhook(webhook)}

    async def webhook_update(
        self,
        info: GraphQLResolveInfo[Any],
        input: dict[str, Any],
        id: str | None = None,
        identifier: str | None = None,
    ) -> Any:
        requestor = self.requestor(info)
        self._webhook_access(requestor)
        webhook = await self._find_webhook(requestor, id, identifier)
        changes: dict[str, Any] = {}
        if "targetUrl" in input:
            changes["target_url"] = input["targetUrl"] or ""
        if "name" in input:
            changes["name"] = input["name"] or ""
        if "isActive" in input and input["isActive"] is not None:
            changes["is_active"] = bool(input["isActive"])
        if "query" in input:
            changes["subscription_query"] = input["query"] or None
        if "secretKey" in input:
            changes["secret_key"] = input["secretKey"] or None
        if "customHeaders" in input:
            changes["custom_headers"] = _custom_headers(input["customHeaders"])
        if "app" in input and input["app"] is not None and not isinstance(requestor, App):
            raise MutationError(
                entry("INVALID", "A webhook cannot be moved to another app.", "app")
            )
        events = _events(input)
        if events:
            changes["events"] = events
        elif changes.get("subscription_query"):
            changes["events"] = []  # a new query with no events: its inferred events apply
        updated = await self.kit.webhooks.update(webhook.id, **changes)
        return {"webhook": self.views.webhook(updated)}

    async def webhook_delete(
        self, info: GraphQLResolveInfo[Any], id: str | None = None, identifier: str | None = None
    ) -> Any:
        requestor = self.requestor(info)
        self._webhook_access(requestor)
        webhook = await self._find_webhook(requestor, id, identifier)
        await self.kit.webhooks.delete(webhook.id)
        return {"webhook": self.views.webhook(webhook)}

    # -- dry run and trigger ---------------------------------------------------------------
    async def _object(self, object_id: str) -> Any:
        try:
            type_name, pk = from_global_id(object_id)
        except ValueError:
            raise MutationError(
                entry("INVALID_ID", f"Couldn't resolve id: {object_id}.", "objectId")
            ) from None
        found = None
        if self.load_object is not None:
            found = self.load_object(type_name, pk)
            if inspect.isawaitable(found):
                found = await found
        if found is None:
            raise MutationError(
                entry("NOT_FOUND", f"Couldn't resolve to a node: {object_id}", "objectId")
            )
        return found

    def _event_for(self, requestor: StaffUser, events: frozenset[str]) -> str:
        if not events:
            raise MutationError(entry("MISSING_EVENT", "Can't find a single event.", "query"))
        value = sorted(events)[0]
        if value == ANY_EVENTS:
            raise MutationError(
                entry("TYPE_NOT_SUPPORTED", "ANY_EVENTS cannot be dry-run.", "query")
            )
        event = self.kit.registry.get(value)
        if event.permission is not None and not requestor.has_permission(event.permission):
            raise MutationError(
                entry(
                    "MISSING_PERMISSION",
                    f"The user doesn't have required permission: {event.permission}.",
                    None,
                )
            )
        return event.value

    def _staff(self, info: GraphQLResolveInfo[Any]) -> StaffUser:
        requestor = self.requestor(info)
        if not isinstance(requestor, StaffUser) or not requestor.is_active:
            raise PermissionDenied(["AUTHENTICATED_STAFF_USER"])
        return requestor

    async def webhook_dry_run(
        self, info: GraphQLResolveInfo[Any], objectId: str, query: str
    ) -> Any:
        staff = self._staff(info)
        events = self.kit.payloads.prepare_query(query, self.kit.registry)
        event = self._event_for(staff, events)
        subject = await self._object(objectId)
        body = await self.kit.dry_run(
            query, subject=subject, event=event, requestor=self.principal_of(staff)
        )
        return {"payload": body.decode("utf-8") if body is not None else None}

    async def webhook_trigger(
        self, info: GraphQLResolveInfo[Any], objectId: str, webhookId: str
    ) -> Any:
        staff = self._staff(info)
        pk = _pk(webhookId, "Webhook", "webhookId", "INVALID_ID")
        webhook = await self.kit.store.get_webhook(pk)
        owner = await self.kit.store.get_app(webhook.app_id) if webhook is not None else None
        if webhook is None or owner is None:
            raise MutationError(
                entry("NOT_FOUND", f"Couldn't resolve to a node: {webhookId}", "webhookId")
            )
        if not webhook.subscription_query:
            raise MutationError(
                entry("MISSING_QUERY", "Missing subscription query for given webhook.", "webhookId")
            )
        event = self._event_for(staff, webhook.subscribed_events)
        subject = await self._object(objectId)
        body = await self.kit.dry_run(
            webhook.subscription_query,
            subject=subject,
            event=event,
            app=owner,
            requestor=self.principal_of(staff),
        )
        if body is None:
            raise MutationError(
                entry("MISSING_EVENT", "The query gives no payload for this object.", "objectId")
            )
        delivery = await self._queue_one(webhook, event, body)
        return {"delivery": self.views.delivery(delivery)}

    async def _queue_one(self, webhook: Webhook, event: str, body: bytes) -> Delivery:
        """One delivery to one webhook (``kit.trigger`` fans out to every subscriber)."""
        kit = self.kit
        now = kit.clock.now()
        payload = Payload(id=new_id(), event=event, body=body, created_at=now)
        delivery = Delivery(
            id=new_id(),
            payload_id=payload.id,
            webhook_id=webhook.id,
            app_id=webhook.app_id,
            event=event,
            created_at=now,
            next_try_at=now,
        )
        await kit.scheduler.reserve(1)
        await kit.store.add_deliveries([payload], [delivery])
        if kit.scheduler.running:
            kit.scheduler.notify()
        return delivery

    async def delivery_retry(self, info: GraphQLResolveInfo[Any], id: str) -> Any:
        _need_manage_apps(self.requestor(info))
        pk = _pk(id, "EventDelivery", "id")
        found = await self.kit.get_delivery(pk)
        if found is None:
            raise _not_found(id, "id")
        if not found.is_final:
            raise MutationError(entry("INVALID", "The delivery is still pending.", "id"))
        delivery = await self.kit.retry_delivery(pk)
        return {"delivery": self.views.delivery(delivery)}

    # -- apps ----------------------------------------------------------------------------------
    async def _app(self, global_id: str, field: str = "id") -> App:
        pk = _pk(global_id, "App", field)
        app = await self.kit.store.get_app(pk)
        if app is None:
            raise _not_found(global_id, field)
        return app

    async def app_create(self, info: GraphQLResolveInfo[Any], input: dict[str, Any]) -> Any:
        requestor = self.requestor(info)
        _need_manage_apps(requestor, staff_only=True)
        if not (input.get("name") or "").strip():
            raise MutationError(entry("REQUIRED", "This field is required.", "name"))
        permissions = frozenset(input.get("permissions") or ())
        check_grant(requestor, permissions)
        app = await self.kit.apps.create(
            input["name"], permissions=permissions, identifier=input.get("identifier") or None
        )
        token = await self.kit.apps.create_token(app.id, name="Default")
        await self._fire("APP_INSTALLED", app)
        return {"app": self.views.app(app), "authToken": token.raw.reveal()}

    async def app_update(
        self, info: GraphQLResolveInfo[Any], id: str, input: dict[str, Any]
    ) -> Any:
        requestor = self.requestor(info)
        _need_manage_apps(requestor)
        app = await self._app(id)
        check_scope(requestor, app)
        changes: dict[str, Any] = {}
        if input.get("name") is not None:
            if not input["name"].strip():
                raise MutationError(entry("REQUIRED", "This field cannot be blank.", "name"))
            changes["name"] = input["name"]
        if "identifier" in input:
            changes["identifier"] = input["identifier"] or None
        if input.get("permissions") is not None:
            permissions = frozenset(input["permissions"])
            check_grant(requestor, permissions - app.permissions)
            changes["permissions"] = permissions
        updated = await self.kit.apps.update(app.id, **changes)
        await self._fire("APP_UPDATED", updated)
        return {"app": self.views.app(updated)}

    async def app_delete(self, info: GraphQLResolveInfo[Any], id: str) -> Any:
        requestor = self.requestor(info)
        _need_manage_apps(requestor)
        app = await self._app(id)
        check_scope(requestor, app)
        await self.kit.apps.delete(app.id)
        return {"app": self.views.app(app)}

    async def _set_active(self, info: GraphQLResolveInfo[Any], id: str, active: bool) -> Any:
        requestor = self.requestor(info)
        _need_manage_apps(requestor)
        app = await self._app(id)
        check_scope(requestor, app)
        updated = await self.kit.apps.update(app.id, is_active=active)
        if updated.is_active != app.is_active:
            await self._fire("APP_STATUS_CHANGED", updated)
        return {"app": self.views.app(updated)}

    async def app_activate(self, info: GraphQLResolveInfo[Any], id: str) -> Any:
        return await self._set_active(info, id, True)

    async def app_deactivate(self, info: GraphQLResolveInfo[Any], id: str) -> Any:
        return await self._set_active(info, id, False)

    async def token_create(self, info: GraphQLResolveInfo[Any], input: dict[str, Any]) -> Any:
        requestor = self.requestor(info)
        _need_manage_apps(requestor)
        app = await self._app(input["app"], "app")
        check_scope(requestor, app, "app")
        created = await self.kit.apps.create_token(app.id, name=input.get("name") or "")
        return {"appToken": self.views.token(created.token), "authToken": created.raw.reveal()}

    async def token_delete(self, info: GraphQLResolveInfo[Any], id: str) -> Any:
        requestor = self.requestor(info)
        _need_manage_apps(requestor)
        pk = _pk(id, "AppToken", "id")
        for app in await self.kit.store.list_apps():
            for token in await self.kit.store.list_tokens(app.id):
                if token.id == pk:
                    check_scope(requestor, app)
                    await self.kit.apps.revoke_token(token.id)
                    return {"appToken": self.views.token(token)}
        raise _not_found(id, "id")

    async def token_verify(self, info: GraphQLResolveInfo[Any], token: str) -> Any:
        return {"valid": bool(token) and await self.kit.apps.authenticate(token) is not None}

    # -- queries ---------------------------------------------------------------------------------
    async def q_webhook(self, root: Any, info: GraphQLResolveInfo[Any], id: str) -> Any:
        requestor = self.requestor(info)
        _need_requestor(requestor, "MANAGE_APPS", "OWNER")
        if isinstance(requestor, StaffUser) and not manages_apps(requestor):
            raise PermissionDenied(["MANAGE_APPS", "OWNER"])
        pk = _query_pk(id, "Webhook")
        webhook = await self.kit.store.get_webhook(pk)
        if webhook is None or await self.kit.store.get_app(webhook.app_id) is None:
            return None
        if (
            isinstance(requestor, App)
            and webhook.app_id != requestor.id
            and not manages_apps(requestor)
        ):
            return None
        return self.views.webhook(webhook)

    async def q_webhook_events(self, root: Any, info: GraphQLResolveInfo[Any]) -> Any:
        _need_manage_apps(self.requestor(info))
        values = [ANY_EVENTS, *sorted(e.value for e in self.kit.registry)]
        return [self.views.event_view(v) for v in values]

    async def q_app(self, root: Any, info: GraphQLResolveInfo[Any], id: str | None = None) -> Any:
        requestor = self.requestor(info)
        _need_requestor(requestor, "MANAGE_APPS", "AUTHENTICATED_APP")
        if id is None:
            if isinstance(requestor, App):
                return self.views.app(requestor)
            return None
        pk = _query_pk(id, "App")
        if not (isinstance(requestor, App) and requestor.id == pk) and not manages_apps(requestor):
            raise PermissionDenied(["MANAGE_APPS"])
        app = await self.kit.store.get_app(pk)
        return self.views.app(app) if app is not None else None

    async def q_apps(self, root: Any, info: GraphQLResolveInfo[Any], **args: Any) -> Any:
        _need_manage_apps(self.requestor(info))
        flt = args.get("filter") or {}
        sort = args.get("sortBy") or {}
        apps = await self.kit.store.list_apps()
        if sort.get("field") == "CREATION_DATE":
            apps.sort(key=lambda a: (a.created_at.timestamp() if a.created_at else 0.0, a.id))
        else:
            apps.sort(key=lambda a: (a.name.lower(), a.id))
        if sort.get("direction") == "DESC":
            apps.reverse()
        search = (flt.get("search") or "").lower()
        if search:
            apps = [a for a in apps if search in a.name.lower()]
        if flt.get("isActive") is not None:
            apps = [a for a in apps if a.is_active is flt["isActive"]]
        if flt.get("type") == "THIRDPARTY":
            apps = []  # every app here is LOCAL: manifests' extras are not kept
        return connection(
            apps,
            self.views.app,
            name="apps",
            first=args.get("first"),
            last=args.get("last"),
            after=args.get("after"),
            before=args.get("before"),
        )

    async def q_installations(self, root: Any, info: GraphQLResolveInfo[Any]) -> Any:
        _need_manage_apps(self.requestor(info))
        return [self.views.installation(i) for i in await self.kit.store.list_installations()]


def _query_pk(global_id: str, type_name: str) -> str:
    """A query argument's pk; a malformed or foreign ID is a GraphQL error, as in Saleor."""
    try:
        found, pk = from_global_id(global_id)
    except ValueError:
        raise GraphQLError(f"Couldn't resolve id: {global_id}.") from None
    if found != type_name:
        raise GraphQLError(f"Must receive a {type_name} id.")
    return pk
