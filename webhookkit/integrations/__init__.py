"""Receiver side: verify incoming webhooks in aiohttp or ASGI apps, and serve the JWKS.

The framework modules (:mod:`.aiohttp`, :mod:`.asgi`) share what is here: the
:class:`WebhookEvent` handed to handlers, and how a failure becomes an HTTP answer
(401 with a short reason; 503 when the sender's JWKS could not be fetched, so Saleor retries).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..exceptions import (
    JWKSFetchError,
    MalformedSignatureError,
    SignatureError,
    SignatureMismatchError,
    TimestampError,
    UnknownKeyError,
)
from ..signing.verify import Verifier, header_value

__all__ = [
    "DEFAULT_JWKS_MAX_AGE",
    "EVENT_KEY",
    "JWKS_PATH",
    "HasJWKS",
    "JWKSSource",
    "NotJSONError",
    "WebhookEvent",
    "failure",
    "jwks_body",
    "verify_request",
]

JWKS_PATH = "/.well-known/jwks.json"
#: Receivers may cache the JWKS this long; a rotation's step 1 waits at least this long.
DEFAULT_JWKS_MAX_AGE = 300
#: Where integrations store the verified event (aiohttp request key, ASGI ``scope["state"]``).
EVENT_KEY = "webhook_event"
MAX_BODY_BYTES = 10 * 1024 * 1024


@runtime_checkable
class HasJWKS(Protocol):
    def jwks(self) -> Mapping[str, Any]: ...


#: A KeySet, a JWSSigner, a WebhookKit (anything with ``jwks()``), or a function returning one.
JWKSSource = HasJWKS | Callable[[], Mapping[str, Any]]


def jwks_body(source: JWKSSource) -> bytes:
    """The JWKS document of ``source`` as compact JSON bytes (read anew on every call, so a
    rotation shows at once)."""
    document = source.jwks() if isinstance(source, HasJWKS) else source()
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


class NotJSONError(ValueError):
    """The verified body is not JSON; answered with 400."""


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One verified delivery.

    ``event`` is the ``Saleor-Event`` value (``order_created``), ``domain`` and ``api_url``
    come from ``Saleor-Domain`` / ``Saleor-Api-Url``, ``payload`` is the parsed JSON body and
    ``body`` its exact bytes. ``webhook_id`` is Standard Webhooks' ``webhook-id`` (use it to
    drop duplicates), None for Saleor signatures.
    """

    event: str
    domain: str | None
    api_url: str | None
    body: bytes = field(repr=False)
    payload: Any = field(repr=False)
    webhook_id: str | None = None

    @classmethod
    def from_request(cls, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Build from raw bytes and headers; raises :class:`NotJSONError` for a non-JSON body."""
        try:
            payload = json.loads(body) if body else None
        except (ValueError, RecursionError):
            raise NotJSONError("body is not JSON") from None
        event = header_value(headers, "Saleor-Event") or header_value(headers, "X-Saleor-Event")
        return cls(
            event=(event or "").strip().lower(),
            domain=header_value(headers, "Saleor-Domain")
            or header_value(headers, "X-Saleor-Domain"),
            api_url=header_value(headers, "Saleor-Api-Url"),
            body=body,
            payload=payload,
            webhook_id=header_value(headers, "webhook-id"),
        )


async def verify_request(
    verifier: Verifier, body: bytes, headers: Mapping[str, str]
) -> WebhookEvent:
    """Verify, then parse; raises :class:`SignatureError` or :class:`NotJSONError`."""
    await verifier.verify(body, headers)
    return WebhookEvent.from_request(body, headers)


_REASONS: tuple[tuple[type[SignatureError], str], ...] = (
    (JWKSFetchError, "jwks unavailable"),
    (MalformedSignatureError, "malformed signature"),
    (UnknownKeyError, "unknown key"),
    (SignatureMismatchError, "signature mismatch"),
    (TimestampError, "timestamp out of range"),
)


def failure(exc: SignatureError | NotJSONError) -> tuple[int, str]:
    """The status and short text answered for a failed request.

    401 for a signature that fails (Saleor does not retry 4xx: a forged request stays
    rejected); 503 when the sender's JWKS could not be fetched (Saleor retries 5xx, and the
    JWKS may be back by then); 400 for a verified body that is not JSON.
    """
    if isinstance(exc, NotJSONError):
        return 400, "bad request: body is not JSON"
    for kind, label in _REASONS:
        if isinstance(exc, kind):
            return (503 if kind is JWKSFetchError else 401), f"{label}: {exc}"[:300]
    return 401, f"signature rejected: {exc}"[:300]
