"""Create, update and delete apps, tokens and webhooks with Saleor's rules applied."""

from __future__ import annotations

import builtins
import dataclasses
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from ._ids import new_id
from ._secret import Secret
from .apps import (
    App,
    AppToken,
    NewAppToken,
    Webhook,
    check_text,
    hash_token,
    validate_custom_headers,
    validate_events,
    validate_name,
    validate_secret_key,
    validate_signing_profile,
    validate_target_url,
)
from .clock import Clock
from .config import RateLimit, Timeouts
from .events import EventRegistry, EventType
from .exceptions import DuplicateError, InvalidEventsError, InvalidFieldError, NotFoundError
from .filters import PayloadFilter, compile_filter
from .payloads import PayloadBuilder
from .stores.base import Store
from .transports.base import TransportRouter

__all__ = ["AppManager", "WebhookManager"]

log = logging.getLogger("webhookkit.setup")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()
TOKEN_BYTES = 24  # 32 URL-safe characters, 192 bits


def _new_id() -> str:
    return new_id()


def _id(value: object, field_name: str) -> str:
    """An id given by the caller: a string a store can look up (else a typed error)."""
    if isinstance(value, str) and value:
        return check_text(value, field_name)
    raise InvalidFieldError(f"{field_name}: expected an id (a non-empty string)", field=field_name)


def _flag(value: object, field_name: str) -> bool:
    """A yes/no option: True or False only (``bool("false")`` would be True)."""
    if not isinstance(value, bool):
        raise InvalidFieldError(f"{field_name}: must be True or False", field=field_name)
    return value


def _app_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidFieldError("name: an app needs a non-empty name", field="name")
    return validate_name(name)


def _timeouts(timeouts: object) -> Timeouts | None:
    if timeouts is not None and not isinstance(timeouts, Timeouts):
        raise InvalidFieldError(
            f"timeouts: expected a Timeouts(connect=, total=) or None, got "
            f"{type(timeouts).__name__}",
            field="timeouts",
        )
    return timeouts


def _rate_limit(limit: Any) -> RateLimit | None:
    if limit is not None and not isinstance(limit, RateLimit):
        raise InvalidFieldError(
            f"rate_limit: must be a RateLimit(per_second=..., burst=...), got "
            f"{type(limit).__name__}",
            field="rate_limit",
        )
    return limit


def _filter(document: Mapping[str, Any] | PayloadFilter | None) -> PayloadFilter | None:
    """The compiled content filter; None or ``{}`` means no filter (Outpost's convention)."""
    if document is None or (isinstance(document, Mapping) and not document):
        return None
    return compile_filter(document)


class AppManager:
    """``kit.apps``: apps and their tokens."""

    def __init__(self, store: Store, registry: EventRegistry, clock: Clock) -> None:
        self._store = store
        self._registry = registry
        self._clock = clock

    def _permissions(self, permissions: Iterable[str]) -> frozenset[str]:
        if isinstance(permissions, str):
            raise InvalidFieldError(
                "permissions: expected a list of permission names, got a single string",
                field="permissions",
            )
        if isinstance(permissions, bytes | Mapping) or not isinstance(permissions, Iterable):
            raise InvalidFieldError(
                "permissions: expected a list of permission names", field="permissions"
            )
        listed = list(permissions)
        if not all(isinstance(p, str) for p in listed):
            raise InvalidFieldError(
                "permissions: every permission name must be a string", field="permissions"
            )
        names = frozenset(check_text(p, "permissions").upper() for p in listed)
        self._registry.check_permissions(names)
        return names

    async def create(
        self,
        name: str,
        *,
        permissions: Iterable[str] = (),
        is_active: bool = True,
        identifier: str | None = None,
        rate_limit: RateLimit | None = None,
    ) -> App:
        app = App(
            id=_new_id(),
            name=_app_name(name),
            is_active=_flag(is_active, "is_active"),
            permissions=self._permissions(permissions),
            identifier=validate_name(identifier, field_name="identifier") if identifier else None,
            created_at=self._clock.now(),
            rate_limit=_rate_limit(rate_limit),
        )
        await self._store.put_app(app)
        return app

    async def get(self, app_id: str) -> App:
        app = await self._store.get_app(_id(app_id, "app"))
        if app is None:
            raise NotFoundError(f"app: no app with id {app_id!r}", field="app")
        return app

    async def list(self) -> list[App]:
        return await self._store.list_apps()

    async def update(
        self,
        app_id: str,
        *,
        name: str | _Unset = UNSET,
        permissions: Iterable[str] | _Unset = UNSET,
        is_active: bool | _Unset = UNSET,
        identifier: str | _Unset | None = UNSET,
        rate_limit: RateLimit | _Unset | None = UNSET,
    ) -> App:
        app = await self.get(app_id)
        changes: dict[str, Any] = {}
        if not isinstance(rate_limit, _Unset):
            changes["rate_limit"] = _rate_limit(rate_limit)
        if not isinstance(name, _Unset):
            changes["name"] = _app_name(name)
        if not isinstance(permissions, _Unset):
            changes["permissions"] = self._permissions(permissions)
        if not isinstance(is_active, _Unset):
            changes["is_active"] = _flag(is_active, "is_active")
        if not isinstance(identifier, _Unset):
            changes["identifier"] = (
                validate_name(identifier, field_name="identifier") if identifier else None
            )
        updated = dataclasses.replace(app, **changes)
        await self._store.put_app(updated)
        return updated

    async def delete(self, app_id: str) -> None:
        """Delete the app, its tokens and its webhooks; pending deliveries then fail unsent."""
        await self.get(app_id)
        await self._store.delete_app(app_id)

    async def create_token(
        self, app_id: str, *, name: str = "", token: str | Secret | None = None
    ) -> NewAppToken:
        """A new token; the raw value is in the result only. ``token`` imports an existing
        one (for a migration); a token already held by any app is a DuplicateError."""
        await self.get(app_id)
        raw = token.reveal() if isinstance(token, Secret) else token
        if raw is None:
            raw = secrets.token_urlsafe(TOKEN_BYTES)
        elif not isinstance(raw, str) or len(raw) < 16:
            raise InvalidFieldError(
                "token: an imported token must be a string of at least 16 characters",
                field="token",
            )
        elif any(c.isspace() for c in raw) or not raw.isprintable() or not raw.isascii():
            # The message must not echo the token.
            raise InvalidFieldError(
                "token: an imported token must be printable ASCII without spaces", field="token"
            )
        token_hash = hash_token(raw)
        if await self._store.find_token(token_hash) is not None:
            raise DuplicateError("token: this token is already in use", field="token")
        stored = AppToken(
            id=_new_id(),
            app_id=app_id,
            name=validate_name(name),
            token_hash=token_hash,
            last_4=raw[-4:],
            created_at=self._clock.now(),
        )
        await self._store.put_token(stored)
        return NewAppToken(token=stored, raw=Secret(raw))

    async def list_tokens(self, app_id: str) -> builtins.list[AppToken]:
        await self.get(app_id)
        return await self._store.list_tokens(app_id)

    async def revoke_token(self, token_id: str) -> None:
        if not await self._store.delete_token(_id(token_id, "token")):
            raise NotFoundError(f"token: no token with id {token_id!r}", field="token")

    async def authenticate(self, raw_token: str | Secret) -> App | None:
        """The active app holding ``raw_token``, or None."""
        raw = raw_token.reveal() if isinstance(raw_token, Secret) else raw_token
        if not isinstance(raw, str) or not raw:
            return None
        token = await self._store.find_token(hash_token(raw))
        if token is None:
            return None
        app = await self._store.get_app(token.app_id)
        return app if app is not None and app.is_active else None

    # -- declarative setup ---------------------------------------------------------------
    async def ensure(
        self,
        *,
        identifier: str,
        name: str,
        permissions: Iterable[str] = (),
        is_active: bool = True,
    ) -> App:
        """The app with ``identifier``, made to have these fields: created if missing,
        updated where a field differs, left alone otherwise. Safe to call on every start.

        Tokens are not touched: create them once with :meth:`create_token` (the raw value is
        shown only then). With several apps holding ``identifier`` (made by earlier
        ``create`` calls), the oldest is used and a warning logged.
        """
        if not isinstance(identifier, str) or not identifier.strip():
            raise InvalidFieldError(
                "identifier: ensure() needs a non-empty identifier", field="identifier"
            )
        identifier = validate_name(identifier, field_name="identifier")
        found = sorted(
            (a for a in await self._store.list_apps() if a.identifier == identifier),
            key=lambda a: (a.created_at is None, a.created_at or self._clock.now(), a.id),
        )
        if not found:
            app = await self.create(
                name, permissions=permissions, is_active=is_active, identifier=identifier
            )
            log.info("app %r created (id %s)", identifier, app.id)
            return app
        if len(found) > 1:
            log.warning(
                "apps %s share the identifier %r; ensure() keeps %s, delete the others",
                [a.id for a in found],
                identifier,
                found[0].id,
            )
        app = found[0]
        wanted: dict[str, Any] = {
            "name": name,
            "permissions": self._permissions(permissions),
            "is_active": bool(is_active),
        }
        changed = {k: v for k, v in wanted.items() if getattr(app, k) != v}
        if not changed:
            return app
        log.info("app %r updated: %s", identifier, sorted(changed))
        return await self.update(app.id, **changed)


class WebhookManager:
    """``kit.webhooks``: webhooks of apps."""

    def __init__(
        self,
        store: Store,
        registry: EventRegistry,
        router: TransportRouter,
        clock: Clock,
        payloads: Callable[[], PayloadBuilder],
    ) -> None:
        self._store = store
        self._registry = registry
        self._router = router
        self._clock = clock
        self._payloads = payloads

    def _target(self, url: str) -> str:
        validate_target_url(url, self._router.schemes)
        self._router.validate(url)
        return url

    def _query(self, query: str | None) -> frozenset[str]:
        """Validate ``query``; the events it infers (empty without a query)."""
        if query is None:
            return frozenset()
        if not isinstance(query, str) or not query.strip():
            raise InvalidFieldError(
                "subscription_query: must be a non-empty string or None",
                field="subscription_query",
            )
        check_text(query, "subscription_query")
        return self._payloads().prepare_query(query, self._registry)

    async def create(
        self,
        app: App | str,
        *,
        target_url: str,
        identifier: str | None = None,
        events: Iterable[str | EventType] = (),
        name: str = "",
        is_active: bool = True,
        subscription_query: str | None = None,
        secret_key: str | Secret | Sequence[str | Secret] | None = None,
        custom_headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        signing_profile: str = "saleor",
        timeouts: Timeouts | None = None,
        ordered: bool = False,
        filter: Mapping[str, Any] | PayloadFilter | None = None,
        rate_limit: RateLimit | None = None,
    ) -> Webhook:
        """Validate every field, then store; any rule broken raises before anything is kept."""
        app_id = app.id if isinstance(app, App) else _id(app, "app")
        if await self._store.get_app(app_id) is None:
            raise NotFoundError(f"app: no app with id {app_id!r}", field="app")
        webhook = Webhook(
            id=_new_id(),
            app_id=app_id,
            identifier=await self._identifier(app_id, identifier),
            name=validate_name(name),
            target_url=self._target(target_url),
            is_active=_flag(is_active, "is_active"),
            events=validate_events(self._registry, events),
            subscription_query=subscription_query,
            query_events=self._query(subscription_query),
            secret_key=validate_secret_key(secret_key),
            custom_headers=validate_custom_headers(custom_headers),
            signing_profile=validate_signing_profile(signing_profile),
            timeouts=_timeouts(timeouts),
            ordered=_flag(ordered, "ordered"),
            filter=_filter(filter),
            rate_limit=_rate_limit(rate_limit),
            created_at=self._clock.now(),
        )
        _check_subscribes(webhook)
        await self._store.put_webhook(webhook)
        return webhook

    async def get(self, webhook_id: str) -> Webhook:
        webhook = await self._store.get_webhook(_id(webhook_id, "webhook"))
        if webhook is None:
            raise NotFoundError(f"webhook: no webhook with id {webhook_id!r}", field="webhook")
        return webhook

    async def list(self, app: App | str | None = None) -> list[Webhook]:
        app_id = None if app is None else app.id if isinstance(app, App) else _id(app, "app")
        return await self._store.list_webhooks(app_id)

    async def update(
        self,
        webhook_id: str,
        *,
        target_url: str | _Unset = UNSET,
        identifier: str | _Unset | None = UNSET,
        events: Iterable[str | EventType] | _Unset = UNSET,
        name: str | _Unset = UNSET,
        is_active: bool | _Unset = UNSET,
        subscription_query: str | _Unset | None = UNSET,
        secret_key: str | Secret | Sequence[str | Secret] | _Unset | None = UNSET,
        custom_headers: Mapping[str, str] | Iterable[tuple[str, str]] | _Unset | None = UNSET,
        signing_profile: str | _Unset = UNSET,
        timeouts: Timeouts | _Unset | None = UNSET,
        ordered: bool | _Unset = UNSET,
        filter: Mapping[str, Any] | PayloadFilter | _Unset | None = UNSET,
        rate_limit: RateLimit | _Unset | None = UNSET,
    ) -> Webhook:
        webhook = await self.get(webhook_id)
        changes: dict[str, Any] = {}
        if not isinstance(identifier, _Unset):
            changes["identifier"] = await self._identifier(webhook.app_id, identifier, webhook.id)
        if not isinstance(target_url, _Unset):
            changes["target_url"] = self._target(target_url)
        if not isinstance(events, _Unset):
            changes["events"] = validate_events(self._registry, events)
        if not isinstance(name, _Unset):
            changes["name"] = validate_name(name)
        if not isinstance(is_active, _Unset):
            changes["is_active"] = _flag(is_active, "is_active")
        if not isinstance(subscription_query, _Unset):
            changes["query_events"] = self._query(subscription_query)
            changes["subscription_query"] = subscription_query
        if not isinstance(secret_key, _Unset):
            changes["secret_key"] = validate_secret_key(secret_key)
        if not isinstance(custom_headers, _Unset):
            changes["custom_headers"] = validate_custom_headers(custom_headers)
        if not isinstance(signing_profile, _Unset):
            changes["signing_profile"] = validate_signing_profile(signing_profile)
        if not isinstance(timeouts, _Unset):
            changes["timeouts"] = _timeouts(timeouts)
        if not isinstance(ordered, _Unset):
            changes["ordered"] = _flag(ordered, "ordered")
        if not isinstance(filter, _Unset):
            changes["filter"] = _filter(filter)
        if not isinstance(rate_limit, _Unset):
            changes["rate_limit"] = _rate_limit(rate_limit)
        if changes.get("is_active") is True:
            changes["disabled_at"] = None  # activated again: its held deliveries resume
        updated = dataclasses.replace(webhook, **changes)
        _check_subscribes(updated)
        await self._store.put_webhook(updated)
        return updated

    async def delete(self, webhook_id: str) -> None:
        if not await self._store.delete_webhook(_id(webhook_id, "webhook")):
            raise NotFoundError(f"webhook: no webhook with id {webhook_id!r}", field="webhook")

    async def _identifier(
        self, app_id: str, identifier: str | None, webhook_id: str | None = None
    ) -> str | None:
        """A valid identifier not held by another webhook of the app (None stays None)."""
        if identifier is None:
            return None
        if not isinstance(identifier, str) or not identifier.strip():
            raise InvalidFieldError(
                "identifier: must be a non-empty string or None", field="identifier"
            )
        identifier = validate_name(identifier, field_name="identifier")
        for other in await self._store.list_webhooks(app_id):
            if other.identifier == identifier and other.id != webhook_id:
                raise DuplicateError(
                    f"identifier: webhook {other.id!r} of this app already has {identifier!r}",
                    field="identifier",
                )
        return identifier

    # -- declarative setup ---------------------------------------------------------------
    async def ensure(
        self,
        app: App | str,
        *,
        identifier: str,
        target_url: str,
        events: Iterable[str | EventType] = (),
        name: str = "",
        is_active: bool = True,
        subscription_query: str | None = None,
        secret_key: str | Secret | Sequence[str | Secret] | None = None,
        custom_headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        signing_profile: str = "saleor",
        timeouts: Timeouts | None = None,
        ordered: bool = False,
        filter: Mapping[str, Any] | PayloadFilter | None = None,
        **other: Any,
    ) -> Webhook:
        """The app's webhook with ``identifier``, made to have exactly these fields: created
        if missing, updated where a field differs (same id, deliveries and history kept),
        left alone otherwise. Fields left out take :meth:`create`'s defaults, so what the
        call says is what the webhook is. ``other`` passes further fields of :meth:`create`;
        they are written on every call.
        """
        app_id = app.id if isinstance(app, App) else app
        if not isinstance(identifier, str) or not identifier.strip():
            raise InvalidFieldError(
                "identifier: ensure() needs a non-empty identifier", field="identifier"
            )
        fields: dict[str, Any] = {
            "target_url": target_url,
            "events": events,
            "name": name,
            "is_active": is_active,
            "subscription_query": subscription_query,
            "secret_key": secret_key,
            "custom_headers": custom_headers,
            "signing_profile": signing_profile,
            "timeouts": timeouts,
            "ordered": ordered,
            "filter": filter,
        }
        if await self._store.get_app(app_id) is None:
            raise NotFoundError(f"app: no app with id {app_id!r}", field="app")
        current = next(
            (w for w in await self._store.list_webhooks(app_id) if w.identifier == identifier),
            None,
        )
        if current is None:
            webhook = await self.create(app_id, identifier=identifier, **fields, **other)
            log.info("webhook %r created (id %s)", identifier, webhook.id)
            return webhook
        # The stored form of each field, validated as create() does, compared to what is kept.
        wanted: dict[str, Any] = {
            "target_url": self._target(target_url),
            "events": validate_events(self._registry, events),
            "name": validate_name(name),
            "is_active": bool(is_active),
            "subscription_query": subscription_query,
            "secret_key": validate_secret_key(secret_key),
            "custom_headers": validate_custom_headers(custom_headers),
            "signing_profile": validate_signing_profile(signing_profile),
            "timeouts": timeouts,
            "ordered": bool(ordered),
            "filter": _filter(filter),
        }
        changed = [k for k, v in wanted.items() if getattr(current, k) != v]
        if not changed and not other:
            return current
        if changed:
            # Names only: secret_key and custom headers may hold secrets.
            log.info("webhook %r updated: %s", identifier, changed)
        return await self.update(current.id, **{k: fields[k] for k in changed}, **other)


def _check_subscribes(webhook: Webhook) -> None:
    """A webhook must name events or carry a subscription query (it would never fire)."""
    if not webhook.events and webhook.subscription_query is None:
        raise InvalidEventsError(
            "events: give events=[...] or a subscription_query; with neither the webhook "
            "would never receive anything",
            field="events",
        )
