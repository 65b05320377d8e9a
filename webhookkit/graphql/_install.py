"""Installing a Saleor app from its manifest: fetch (through the SSRF-guarded HTTP transport),
validate, create the app with its webhooks and a token, hand the token to ``tokenTargetUrl``.

Each installation is recorded in the store (pending, then installed or failed with the
reason). A failure at any step deletes whatever was created, so no half-made app remains.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from graphql import GraphQLResolveInfo

from .._ids import new_id
from .._secret import redact_url
from ..apps import App, validate_target_url
from ..exceptions import ConfigurationError, TransportError, WebhookKitError
from ..installations import AppInstallation, InstallationStatus
from ..transports.http import HTTPTransport
from ._context import Requestor, requestor_of
from ._errors import MutationError, PermissionDenied, entry, from_exception
from ._rules import check_grant, manages_apps
from ._semver import satisfies
from ._views import Views, permission_view

if TYPE_CHECKING:
    from ..dispatcher import WebhookKit

__all__ = ["Installer", "Manifest", "ManifestWebhook"]

log = logging.getLogger("webhookkit.graphql")

#: What ``requiredSaleorVersion`` is checked against, and ``Saleor-Schema-Version``.
SALEOR_VERSION: Final = "3.24.0"
SCHEMA_VERSION: Final = "3.24"
MANIFEST_LIMIT: Final = 1_048_576


@dataclass(frozen=True, slots=True)
class ManifestWebhook:
    name: str
    target_url: str
    query: str
    async_events: tuple[str, ...]
    sync_events: tuple[str, ...]
    is_active: bool


@dataclass(frozen=True, slots=True)
class Manifest:
    """The parts of an ``AppManifest`` (as ``@saleor/app-sdk`` types it) the host uses."""

    id: str
    version: str
    name: str
    token_target_url: str
    permissions: tuple[str, ...]
    webhooks: tuple[ManifestWebhook, ...]
    raw: Mapping[str, Any]
    required_saleor_version: str | None = None


def _invalid(message: str, field: str | None = None) -> MutationError:
    return MutationError(entry("INVALID_MANIFEST_FORMAT", message, field))


def _text(raw: Mapping[str, Any], key: str, *, required: bool) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            raise _invalid(f"Field required: {key}.", key)
        return None
    if not isinstance(value, str):
        raise _invalid(f"{key} must be a string.", key)
    return value


class Installer:
    """``appInstall`` and ``appFetchManifest`` for one kit."""

    def __init__(
        self, kit: WebhookKit, *, get_requestor: Callable[[Any], Requestor] = requestor_of
    ) -> None:
        self.kit = kit
        self.views = Views(kit)
        self.get_requestor = get_requestor

    # -- HTTP --------------------------------------------------------------------------------
    def _transport(self) -> HTTPTransport:
        transport = self.kit.router.mounted.get("https")
        if not isinstance(transport, HTTPTransport):
            raise MutationError(
                entry("MANIFEST_URL_CANT_CONNECT", "No HTTP transport is mounted.", None)
            )
        return transport

    def _headers(self) -> list[tuple[str, str]]:
        api_url = self.kit.api_url
        assert api_url is not None, "WebhookKit always sets api_url"
        return [
            ("Saleor-Domain", self.kit.domain),
            ("Saleor-Api-Url", api_url),
            ("Saleor-Schema-Version", SCHEMA_VERSION),
        ]

    async def _request(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        extra: Sequence[tuple[str, str]] = (),
    ) -> tuple[int, bytes]:
        response = await self._transport().request(
            method, url, body=body, headers=[*self._headers(), *extra], limit=MANIFEST_LIMIT
        )
        return response.status, response.body

    # -- manifest ----------------------------------------------------------------------------
    def _check_url(self, url: str, field: str) -> None:
        try:
            validate_target_url(url, {"http", "https"})
        except ConfigurationError:
            raise MutationError(
                entry("INVALID_URL_FORMAT", f"Enter a valid URL: {redact_url(url)}", field)
            ) from None

    async def fetch_manifest(self, manifest_url: str) -> Manifest:
        self._check_url(manifest_url, "manifestUrl")
        try:
            status, body = await self._request("GET", manifest_url)
        except (TransportError, ConfigurationError) as exc:
            raise MutationError(
                entry(
                    "MANIFEST_URL_CANT_CONNECT",
                    f"Can't connect to the manifest URL: {exc}",
                    "manifestUrl",
                )
            ) from None
        if status != 200:
            raise MutationError(
                entry(
                    "MANIFEST_URL_CANT_CONNECT",
                    f"The manifest URL answered HTTP {status}.",
                    "manifestUrl",
                )
            )
        try:
            raw = json.loads(body)
        except ValueError:
            raise _invalid("The manifest is not valid JSON.", "manifestUrl") from None
        if not isinstance(raw, dict):
            raise _invalid("The manifest must be a JSON object.", "manifestUrl")
        return self.parse_manifest(raw)

    def parse_manifest(self, raw: Mapping[str, Any]) -> Manifest:
        """Saleor's manifest checks; webhooks are validated as ``webhookCreate`` would."""
        identifier = _text(raw, "id", required=True)
        version = _text(raw, "version", required=True)
        name = _text(raw, "name", required=True)
        token_target_url = _text(raw, "tokenTargetUrl", required=True)
        assert identifier and version and name and token_target_url
        self._check_url(token_target_url, "tokenTargetUrl")
        permissions = raw.get("permissions") or []
        if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
            raise _invalid("permissions must be a list of permission names.", "permissions")
        unknown = sorted(set(permissions) - self.kit.registry.permissions)
        if unknown:
            raise MutationError(
                # Not listed in ``permissions``: PermissionEnum has no value for them.
                entry(
                    "INVALID_PERMISSION",
                    f"Given permissions don't exist: {', '.join(unknown)}.",
                    "permissions",
                )
            )
        required = raw.get("requiredSaleorVersion")
        if required is not None:
            if not isinstance(required, str):
                raise _invalid("requiredSaleorVersion must be a string.", "requiredSaleorVersion")
            try:
                ok = satisfies(SALEOR_VERSION, required)
            except ValueError:
                raise _invalid(
                    f"Incorrect value for required Saleor version: {required}",
                    "requiredSaleorVersion",
                ) from None
            if not ok:
                raise MutationError(
                    entry(
                        "UNSUPPORTED_SALEOR_VERSION",
                        f"Saleor {SALEOR_VERSION} does not satisfy {required}.",
                        "requiredSaleorVersion",
                    )
                )
        webhooks = raw.get("webhooks") or []
        if not isinstance(webhooks, list):
            raise _invalid("webhooks must be a list.", "webhooks")
        parsed = tuple(self._webhook(w) for w in webhooks)
        return Manifest(
            id=identifier,
            version=version,
            name=name,
            token_target_url=token_target_url,
            permissions=tuple(permissions),
            webhooks=parsed,
            raw=dict(raw),
            required_saleor_version=required,
        )

    def _webhook(self, raw: Any) -> ManifestWebhook:
        if not isinstance(raw, dict):
            raise _invalid("Each webhook must be an object.", "webhooks")
        name = _text(raw, "name", required=True)
        target = _text(raw, "targetUrl", required=True)
        query = _text(raw, "query", required=True)
        assert name and target and query
        events: dict[str, tuple[str, ...]] = {}
        for key, want_async in (("asyncEvents", True), ("syncEvents", False)):
            names = raw.get(key) or []
            if not isinstance(names, list):
                raise _invalid(f"{key} must be a list.", "webhooks")
            for event_name in names:
                try:
                    event = self.kit.registry.get(str(event_name), field="webhooks")
                except ConfigurationError:
                    raise _invalid(f"Invalid event: {event_name}.", "webhooks") from None
                if event.is_async is not want_async:
                    raise _invalid(f"{event_name} is not an event of {key}.", "webhooks")
            events[key] = tuple(str(n).upper() for n in names)
        try:
            validate_target_url(target, self.kit.router.schemes)
            self.kit.router.validate(target)
            inferred = self.kit.payloads.prepare_query(query, self.kit.registry)
        except ConfigurationError as exc:
            error = from_exception(exc, kind="app", field="webhooks")
            error["code"] = "INVALID_MANIFEST_FORMAT"
            raise MutationError(error) from None
        if not events["asyncEvents"] and not events["syncEvents"] and not inferred:
            raise _invalid(f"Webhook {name!r} subscribes to no event.", "webhooks")
        is_active = raw.get("isActive", True)
        return ManifestWebhook(
            name=name,
            target_url=target,
            query=query,
            async_events=events["asyncEvents"],
            sync_events=events["syncEvents"],
            is_active=is_active is not False,
        )

    def manifest_view(self, manifest: Manifest) -> dict[str, Any]:
        raw = manifest.raw
        required = manifest.required_saleor_version
        return {
            "identifier": manifest.id,
            "version": manifest.version,
            "name": manifest.name,
            "about": raw.get("about"),
            "permissions": [permission_view(p) for p in manifest.permissions],
            "appUrl": raw.get("appUrl"),
            "tokenTargetUrl": manifest.token_target_url,
            "dataPrivacyUrl": raw.get("dataPrivacyUrl"),
            "homepageUrl": raw.get("homepageUrl"),
            "supportUrl": raw.get("supportUrl"),
            "webhooks": [
                {
                    "name": w.name,
                    "asyncEvents": list(w.async_events),
                    "syncEvents": list(w.sync_events),
                    "query": w.query,
                    "targetUrl": w.target_url,
                }
                for w in manifest.webhooks
            ],
            "audience": raw.get("audience"),
            "requiredSaleorVersion": None
            if required is None
            else {"constraint": required, "satisfied": True},
            "author": raw.get("author"),
        }

    # -- mutations -----------------------------------------------------------------------------
    def _authorise(self, info: GraphQLResolveInfo[Any]) -> Requestor:
        requestor: Requestor = self.get_requestor(info.context)
        if requestor is None or isinstance(requestor, App):
            raise PermissionDenied(["AUTHENTICATED_STAFF_USER", "MANAGE_APPS"])
        if not manages_apps(requestor):
            raise PermissionDenied(["MANAGE_APPS"])
        return requestor

    async def app_fetch_manifest(
        self, info: GraphQLResolveInfo[Any], manifestUrl: str
    ) -> dict[str, Any]:
        requestor: Requestor = self.get_requestor(info.context)
        if not manages_apps(requestor):
            raise PermissionDenied(["MANAGE_APPS"])
        manifest = await self.fetch_manifest(manifestUrl)
        return {"manifest": self.manifest_view(manifest)}

    async def app_install(self, info: GraphQLResolveInfo[Any], input: dict[str, Any]) -> Any:
        requestor = self._authorise(info)
        if not (input.get("appName") or "").strip():
            raise MutationError(entry("REQUIRED", "This field is required.", "appName"))
        self._check_url(input["manifestUrl"], "manifestUrl")
        asked = input.get("permissions")
        if asked is not None:
            check_grant(requestor, frozenset(asked))
        installation = await self.install(
            input["manifestUrl"],
            app_name=input["appName"],
            permissions=None if asked is None else frozenset(asked),
            activate=input.get("activateAfterInstallation", True) is not False,
            requestor=requestor,
        )
        return {"appInstallation": self.views.installation(installation)}

    # -- installation ------------------------------------------------------------------------
    async def install(
        self,
        manifest_url: str,
        *,
        app_name: str,
        permissions: frozenset[str] | None = None,
        activate: bool = True,
        requestor: Requestor = None,
    ) -> AppInstallation:
        """Install the app at ``manifest_url`` now; the record says how it went.

        ``permissions`` (default: the manifest's) are granted; with a ``requestor`` they are
        checked against what it holds. Returns the final record (installed or failed)."""
        now = self.kit.clock.now()
        record = AppInstallation(
            id=new_id(),
            app_name=app_name,
            manifest_url=manifest_url,
            status=InstallationStatus.PENDING,
            created_at=now,
            updated_at=now,
            permissions=permissions or frozenset(),
            activate_after_installation=activate,
        )
        await self.kit.store.put_installation(record)
        app: App | None = None
        try:
            manifest = await self.fetch_manifest(manifest_url)
            granted = permissions if permissions is not None else frozenset(manifest.permissions)
            if requestor is not None and permissions is None:
                check_grant(requestor, granted)
            app, token = await self._create(manifest, app_name, granted, activate)
            await self._hand_over(manifest, token)
        except (MutationError, WebhookKitError) as exc:
            reason = (
                exc.entries[0]["message"]
                if isinstance(exc, MutationError) and exc.entries
                else str(exc)
            )
            if app is not None:
                await self._undo(app)
            failed = replace(
                record,
                status=InstallationStatus.FAILED,
                message=reason,
                updated_at=self.kit.clock.now(),
            )
            await self.kit.store.put_installation(failed)
            log.warning("installation of %s failed: %s", redact_url(manifest_url), reason)
            return failed
        except BaseException:
            if app is not None:
                await self._undo(app)
            await self.kit.store.put_installation(
                replace(
                    record,
                    status=InstallationStatus.FAILED,
                    message="interrupted",
                    updated_at=self.kit.clock.now(),
                )
            )
            raise
        done = replace(
            record,
            status=InstallationStatus.INSTALLED,
            permissions=granted,
            app_id=app.id,
            updated_at=self.kit.clock.now(),
        )
        await self.kit.store.put_installation(done)
        try:
            await self.kit.trigger("APP_INSTALLED", subject=app, app=app)
        except Exception:
            log.exception("APP_INSTALLED for app %s could not be queued", app.id)
        return done

    async def _create(
        self, manifest: Manifest, app_name: str, granted: frozenset[str], activate: bool
    ) -> tuple[App, str]:
        app = await self.kit.apps.create(
            app_name, permissions=granted, is_active=activate, identifier=manifest.id
        )
        try:
            for hook in manifest.webhooks:
                await self.kit.webhooks.create(
                    app,
                    target_url=hook.target_url,
                    events=[*hook.async_events, *hook.sync_events],
                    name=hook.name,
                    is_active=hook.is_active,
                    subscription_query=hook.query,
                )
            token = await self.kit.apps.create_token(app.id, name="Default")
        except BaseException:
            await self._undo(app)
            raise
        return app, token.raw.reveal()

    async def _hand_over(self, manifest: Manifest, token: str) -> None:
        body = json.dumps({"auth_token": token}).encode()
        try:
            status, answer = await self._request(
                "POST",
                manifest.token_target_url,
                body=body,
                extra=[("Content-Type", "application/json")],
            )
        except TransportError as exc:
            raise MutationError(
                entry("MANIFEST_URL_CANT_CONNECT", f"Can't reach tokenTargetUrl: {exc}", None)
            ) from None
        if not 200 <= status < 300:
            excerpt = answer[:200].decode("utf-8", "replace")
            raise MutationError(
                entry("INVALID", f"tokenTargetUrl answered HTTP {status}: {excerpt}", None)
            )

    async def _undo(self, app: App) -> None:
        try:
            await self.kit.apps.delete(app.id)
        except WebhookKitError:
            log.exception("could not remove the half-installed app %s", app.id)
