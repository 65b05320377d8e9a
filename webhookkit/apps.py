"""Apps, their tokens and webhooks: frozen values plus Saleor's validation rules.

The rules live here as pure functions; :mod:`webhookkit._manage` applies them when apps and
webhooks are created, updated or deleted through the dispatcher.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from ._sanitize import first_unstorable
from ._secret import REDACTED, Secret, redact_url
from .config import RateLimit, Timeouts
from .events import EventRegistry, EventType
from .exceptions import (
    ConfigurationError,
    InvalidEventsError,
    InvalidFieldError,
    InvalidHeaderError,
    InvalidURLError,
)
from .filters import PayloadFilter
from .transports._extras import missing_extra_hint

__all__ = [
    "App",
    "AppToken",
    "NewAppToken",
    "Webhook",
    "app_can_receive",
    "hash_token",
    "validate_api_url",
    "validate_custom_headers",
    "validate_domain",
    "validate_events",
    "validate_target_url",
]

MAX_NAME_LENGTH = 255
MAX_SECRET_KEY_LENGTH = 255
MAX_URL_LENGTH = 2048
MAX_CUSTOM_HEADERS = 5
MAX_HEADER_LINE = 998
MAX_DOMAIN_LENGTH = 253
NOTIFY_USER = "notify_user"

_HEADER_KEY_RE = re.compile(r"^[\x21-\x39\x3b-\x7e]+$")  # printable ASCII, no ':' or space
_HEADER_VALUE_RE = re.compile(r"^[\x20-\x7e\t]*$")  # printable ASCII, space and tab


@dataclass(frozen=True, slots=True)
class App:
    """A receiver of webhooks with a set of permissions (Saleor's App)."""

    id: str
    name: str
    is_active: bool = True
    permissions: frozenset[str] = frozenset()
    identifier: str | None = None
    created_at: datetime | None = None
    #: Default rate limit for this app's webhooks (a webhook's own wins).
    rate_limit: RateLimit | None = None

    def has_permission(self, permission: str | None) -> bool:
        return permission is None or permission in self.permissions


@dataclass(frozen=True, slots=True)
class AppToken:
    """A stored app token: only the SHA-256 hash and the last four characters are kept."""

    id: str
    app_id: str
    name: str
    token_hash: str = field(repr=False)
    last_4: str
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewAppToken:
    """Returned once by token creation: ``raw.reveal()`` is the only copy of the token."""

    token: AppToken
    raw: Secret


@dataclass(frozen=True, slots=True)
class Webhook:
    """A subscription of an app to events, delivered to ``target_url``.

    ``events`` holds the wire values named explicitly (``order_created``, ``any_events``);
    ``query_events`` those inferred from ``subscription_query``. Saleor's precedence applies:
    explicit events if any, else the inferred ones. ``custom_headers`` are stored with
    lowercased keys. With the ``saleor`` profile, ``secret_key`` switches the signature from
    JWS to HMAC; the ``standard-webhooks`` profile needs it to hold ``whsec_``/``whsk_``
    secrets (space-separated during a rotation) and checks them here.
    """

    id: str
    app_id: str
    target_url: str
    name: str = ""
    is_active: bool = True
    events: frozenset[str] = frozenset()
    subscription_query: str | None = None
    secret_key: Secret | None = None
    custom_headers: tuple[tuple[str, str], ...] = ()
    query_events: frozenset[str] = frozenset()
    signing_profile: str = "saleor"
    timeouts: Timeouts | None = None
    #: Content filter (:mod:`webhookkit.filters`): payloads it does not match are skipped.
    filter: PayloadFilter | None = None
    #: Opt-in ordering: deliveries with the same ordering key go one at a time, in order.
    ordered: bool = False
    created_at: datetime | None = None
    #: A stable name the host gives the webhook, unique among its app's webhooks:
    #: ``kit.webhooks.ensure`` finds the webhook by it on every start.
    identifier: str | None = None
    #: At most this many deliveries a second (None: the app's default, else no limit).
    rate_limit: RateLimit | None = None
    #: Set when webhookkit disabled the webhook after failing too long: its pending
    #: deliveries are held (not failed) until it is activated again.
    disabled_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.signing_profile == "standard-webhooks":
            # Imported here: signing's package imports would otherwise cycle back into apps.
            from .signing.profiles import check_standard_secret

            check_standard_secret(self.secret_key)

    def __repr__(self) -> str:
        headers = tuple(
            (k, REDACTED if k.startswith("authorization") or k == "brokerproperties" else v)
            for k, v in self.custom_headers
        )
        return (
            f"Webhook(id={self.id!r}, app_id={self.app_id!r}, identifier={self.identifier!r}, "
            f"name={self.name!r}, "
            f"target_url={redact_url(self.target_url)!r}, is_active={self.is_active!r}, "
            f"events={sorted(self.subscribed_events)!r}, "
            f"has_query={self.subscription_query is not None}, "
            f"secret_key={REDACTED if self.secret_key else None}, custom_headers={headers!r})"
        )

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.custom_headers)

    @property
    def subscribed_events(self) -> frozenset[str]:
        return self.events or self.query_events

    def subscribes_to(self, registry: EventRegistry, event: EventType) -> bool:
        return any(registry.matches(value, event) for value in self.subscribed_events)


def hash_token(raw: str) -> str:
    """SHA-256 hex of a raw token: tokens carry 190+ bits of entropy, so no salt is needed.

    Never raises for a string: lone surrogates (from undecodable request bytes) hash too,
    to a value no valid token has.
    """
    return hashlib.sha256(raw.encode("utf-8", errors="surrogatepass")).hexdigest()


def app_can_receive(app: App | None, webhook: Webhook, event: EventType) -> bool:
    """Saleor's rule at the moment of the event: webhook active, app active (lifecycle events
    excepted) and holding the event's permission."""
    if app is None or not webhook.is_active:
        return False
    if not app.is_active and not event.is_app_lifecycle:
        return False
    return app.has_permission(event.permission)


# -- validation rules (each raises a ConfigurationError subclass naming the field) -----------


def check_text(
    value: str, field_name: str, error: type[ConfigurationError] = InvalidFieldError
) -> str:
    """Refuse text no store can keep: NUL, other control characters (tab, newline and
    carriage return excepted) and lone surrogates (PostgreSQL refuses the first and any
    string that is not valid UTF-8)."""
    at = first_unstorable(value)
    if at is not None:
        kind = "a lone surrogate" if 0xD800 <= ord(value[at]) <= 0xDFFF else "a control character"
        raise error(
            f"{field_name}: {kind} (U+{ord(value[at]):04X}) at position {at} is not allowed",
            field=field_name,
        )
    return value


def validate_name(name: str, *, field_name: str = "name") -> str:
    if not isinstance(name, str):
        raise InvalidFieldError(f"{field_name}: must be a string", field=field_name)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidFieldError(
            f"{field_name}: {len(name)} characters, at most {MAX_NAME_LENGTH} allowed",
            field=field_name,
        )
    return check_text(name, field_name)


def validate_domain(domain: str) -> str:
    """The shop's bare host name (``Saleor-Domain``), optionally with ``:port``: no scheme,
    path, whitespace or control characters, at most 253 characters."""
    if not isinstance(domain, str) or not domain:
        raise InvalidFieldError("domain: must be a non-empty host name", field="domain")
    if len(domain) > MAX_DOMAIN_LENGTH:
        raise InvalidFieldError(
            f"domain: {len(domain)} characters, at most {MAX_DOMAIN_LENGTH}", field="domain"
        )
    check_text(domain, "domain")
    if any(c.isspace() or ord(c) == 0x7F for c in domain):
        raise InvalidFieldError("domain: must not contain whitespace", field="domain")
    if any(c in domain for c in "/\\?#@"):
        raise InvalidFieldError(
            f"domain: {domain!r} is not a bare host name (no scheme, path, query or user)",
            field="domain",
        )
    try:
        parts = urlsplit(f"//{domain}")
        _ = parts.port
    except ValueError as exc:
        raise InvalidFieldError(f"domain: {domain!r} is malformed: {exc}", field="domain") from None
    if not parts.hostname:
        raise InvalidFieldError(f"domain: {domain!r} has no host name", field="domain")
    return domain


def validate_api_url(url: str) -> str:
    """An absolute ``http(s)`` URL with a host (``Saleor-Api-Url``), without whitespace,
    CR/LF or other control characters."""
    if not isinstance(url, str) or not url:
        raise InvalidURLError("api_url: must be a non-empty http(s) URL", field="api_url")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURLError(
            f"api_url: {len(url)} characters, at most {MAX_URL_LENGTH}", field="api_url"
        )
    check_text(url, "api_url", InvalidURLError)
    if any(c.isspace() or ord(c) == 0x7F for c in url):
        raise InvalidURLError("api_url: contains whitespace or control characters", field="api_url")
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise InvalidURLError(f"api_url: malformed: {exc}", field="api_url") from None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise InvalidURLError(
            f"api_url: {redact_url(url)!r} is not an absolute http(s) URL", field="api_url"
        )
    return url


def validate_target_url(url: str, schemes: Collection[str]) -> str:
    """Parse ``url``; its scheme must have a registered transport and, for HTTP, a host."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidURLError("target_url: must be a non-empty URL", field="target_url")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURLError(
            f"target_url: {len(url)} characters, at most {MAX_URL_LENGTH}", field="target_url"
        )
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise InvalidURLError(
            "target_url: contains whitespace or control characters", field="target_url"
        )
    check_text(url, "target_url", InvalidURLError)
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as exc:
        raise InvalidURLError(
            f"target_url: {shown!r} is malformed: {exc}", field="target_url"
        ) from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise InvalidURLError(
            f"target_url: {shown!r} has no scheme (expected one of {sorted(schemes)})",
            field="target_url",
        )
    if scheme not in schemes:
        hint = missing_extra_hint(scheme)
        raise InvalidURLError(
            f"target_url: {hint}"
            if hint
            else f"target_url: no transport for scheme {scheme!r} (registered: {sorted(schemes)})",
            field="target_url",
        )
    if scheme in {"http", "https"} and not parts.hostname:
        raise InvalidURLError(f"target_url: {shown!r} has no host", field="target_url")
    return url


def validate_events(registry: EventRegistry, events: Iterable[str | EventType]) -> frozenset[str]:
    """Normalise names to wire values; unknown names and a mixed NOTIFY_USER are errors."""
    if isinstance(events, str):
        raise InvalidEventsError(
            "events: expected a list of event names, got a single string", field="events"
        )
    if isinstance(events, bytes) or not isinstance(events, Iterable):
        raise InvalidEventsError(
            f"events: expected a list of event names, got {type(events).__name__}",
            field="events",
        )
    values = frozenset(registry.normalize(e, field="events") for e in events)
    if NOTIFY_USER in values and len(values) > 1:
        others = sorted(v.upper() for v in values - {NOTIFY_USER})
        raise InvalidEventsError(
            f"events: NOTIFY_USER must be the only event of its webhook, found also {others}",
            field="events",
        )
    return values


def validate_custom_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
) -> tuple[tuple[str, str], ...]:
    """Saleor's rules: at most 5; key + value + 2 <= 998; keys printable ASCII without ':' or
    space, starting ``x-`` or ``authorization`` or equal to ``brokerproperties``; values
    printable ASCII, space, tab. Keys are returned lowercased."""
    if headers is None:
        return ()
    if isinstance(headers, str | bytes) or not isinstance(headers, Iterable | Mapping):
        raise InvalidHeaderError(
            "custom_headers: expected a mapping or a list of (key, value) pairs, "
            f"got {type(headers).__name__}",
            field="custom_headers",
        )
    items = list(headers.items() if isinstance(headers, Mapping) else headers)
    if not all(isinstance(item, tuple | list) and len(item) == 2 for item in items):
        raise InvalidHeaderError(
            "custom_headers: expected (key, value) pairs", field="custom_headers"
        )
    if len(items) > MAX_CUSTOM_HEADERS:
        raise InvalidHeaderError(
            f"custom_headers: {len(items)} headers given, at most {MAX_CUSTOM_HEADERS} allowed",
            field="custom_headers",
        )
    result: dict[str, str] = {}
    for key, value in items:
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidHeaderError(
                "custom_headers: keys and values must be strings", field="custom_headers"
            )
        where = f"custom_headers[{key!r}]"
        if not _HEADER_KEY_RE.match(key):
            raise InvalidHeaderError(
                f"{where}: key must be printable ASCII without ':' or spaces",
                field="custom_headers",
            )
        lower = key.lower()
        if not (
            lower.startswith("x-")
            or lower.startswith("authorization")
            or lower == "brokerproperties"
        ):
            raise InvalidHeaderError(
                f"{where}: key must start with 'X-' or 'Authorization', or be 'BrokerProperties'",
                field="custom_headers",
            )
        if not _HEADER_VALUE_RE.match(value):
            raise InvalidHeaderError(
                f"{where}: value must be printable ASCII, spaces or tabs", field="custom_headers"
            )
        if len(key) + len(value) + 2 > MAX_HEADER_LINE:
            raise InvalidHeaderError(
                f"{where}: key + value is {len(key) + len(value) + 2} characters with ': ', "
                f"at most {MAX_HEADER_LINE} allowed",
                field="custom_headers",
            )
        if lower in result:
            raise InvalidHeaderError(f"{where}: duplicate key", field="custom_headers")
        result[lower] = value
    return tuple(result.items())


SIGNING_PROFILES = frozenset({"saleor", "standard-webhooks"})


def validate_signing_profile(profile: str) -> str:
    if not isinstance(profile, str) or profile not in SIGNING_PROFILES:
        raise InvalidFieldError(
            f"signing_profile: {profile!r} is not one of {sorted(SIGNING_PROFILES)}",
            field="signing_profile",
        )
    return profile


def validate_secret_key(
    secret_key: str | Secret | Sequence[str | Secret] | None,
) -> Secret | None:
    """One secret (Saleor HMAC key, or Standard Webhooks secrets separated by spaces), or a
    list of Standard Webhooks secrets (``whsec_``/``whsk_``) held at once during a rotation,
    stored space-separated."""
    if secret_key is None:
        return None
    if not isinstance(secret_key, str | Secret):
        if isinstance(secret_key, bytes | bytearray | Mapping) or not isinstance(
            secret_key, Iterable
        ):
            raise InvalidFieldError(
                f"secret_key: must be a string (or a list of strings), got "
                f"{type(secret_key).__name__}",
                field="secret_key",
            )
        listed = list(secret_key)
        if not all(isinstance(item, str | Secret) for item in listed):
            raise InvalidFieldError(
                "secret_key: a list of secrets may hold strings only", field="secret_key"
            )
        items = [validate_secret_key(item) for item in listed]
        texts = [item.reveal() for item in items if item is not None]
        if not texts or any(len(t.split()) != 1 for t in texts):
            raise InvalidFieldError(
                "secret_key: a list needs at least one secret, each without spaces",
                field="secret_key",
            )
        if not all(t.startswith(("whsec_", "whsk_")) for t in texts):
            raise InvalidFieldError(
                "secret_key: a list of secrets is for the standard-webhooks profile "
                "('whsec_...' or 'whsk_...' values)",
                field="secret_key",
            )
        return Secret(" ".join(texts))
    raw = secret_key.reveal() if isinstance(secret_key, Secret) else secret_key
    if not isinstance(raw, str) or not raw:
        raise InvalidFieldError("secret_key: must be a non-empty string", field="secret_key")
    if len(raw) > MAX_SECRET_KEY_LENGTH:
        raise InvalidFieldError(
            f"secret_key: at most {MAX_SECRET_KEY_LENGTH} characters", field="secret_key"
        )
    if first_unstorable(raw) is not None:
        # The message must not echo any part of a secret: no position, no character.
        raise InvalidFieldError(
            "secret_key: holds control characters or lone surrogates", field="secret_key"
        )
    return Secret(raw)
