"""What the scheduler calls to sign one delivery, by the webhook's ``signing_profile``.

``saleor`` (default): HMAC-SHA256 hex with the webhook's ``secret_key``, else the detached JWS
of the payload, computed once per payload and key and shared by every webhook that receives
the same bytes. The value goes out as ``Saleor-Signature`` (HTTP) or the ``Signature`` /
``signature`` attribute (SQS / Pub/Sub).

``standard-webhooks``: ``webhook-id`` (the delivery id, stable across retries),
``webhook-timestamp`` (this attempt's time) and ``webhook-signature`` (one ``v1,``/``v1a,``
signature per secret in ``secret_key``); no ``Saleor-Signature``. These signatures cover the
id and time, so they are computed per attempt.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from .._secret import Secret
from ..exceptions import InvalidFieldError, InvalidKeyError
from .hmac import hmac_signature
from .jws import JWSSigner
from .standard import StandardWebhooksSigner

if TYPE_CHECKING:  # runtime imports would cycle: apps -> signing -> profiles -> apps
    from ..apps import Webhook
    from ..delivery.records import Payload

__all__ = [
    "JWS_CACHE_SIZE",
    "PROFILES",
    "DeliverySignature",
    "check_standard_secret",
    "sign_delivery",
    "standard_signer",
]

PROFILES = ("saleor", "standard-webhooks")
#: Payload signatures kept for retries and late fan-out; one entry is about 500 bytes.
JWS_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class DeliverySignature:
    """``signature``: the Saleor-Signature value (None for Standard Webhooks); ``headers``:
    extra headers (or message attributes) a profile adds, in order."""

    signature: str | None = field(default=None, repr=False)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)


class SignCounters(Protocol):
    """Where counts go (the scheduler's ``DeliveryStats`` fits)."""

    jws_signatures: int
    hmac_signatures: int


@functools.lru_cache(maxsize=256)
def _standard_signer(secret_text: str) -> StandardWebhooksSigner:
    return StandardWebhooksSigner(secret_text)


def standard_signer(secret: Secret | str) -> StandardWebhooksSigner:
    """The signer for a webhook's Standard Webhooks secrets, parsed once and reused."""
    return _standard_signer(secret.reveal() if isinstance(secret, Secret) else secret)


def check_standard_secret(secret: Secret | None) -> None:
    """Raise :class:`InvalidKeyError` unless ``secret`` holds usable Standard Webhooks signing
    secrets (``whsec_`` and/or ``whsk_``, space separated)."""
    if secret is None:
        raise InvalidKeyError(
            "secret_key: the standard-webhooks profile needs whsec_ (HMAC) and/or whsk_ "
            "(Ed25519) secrets; make one with webhookkit.signing.new_secret()",
            field="secret_key",
        )
    standard_signer(secret)


def payload_jws(
    payload: Payload,
    jws: JWSSigner,
    cache: OrderedDict[str, str],
    stats: SignCounters | None = None,
    *,
    cache_size: int = JWS_CACHE_SIZE,
) -> str:
    """The payload's JWS by the active key: signed on first use, then taken from ``cache``.

    The cache key holds the ``kid``, so after a rotation retries are signed by the new key.
    """
    cache_key = f"{jws.key.kid}:{payload.id}"
    cached = cache.get(cache_key)
    if cached is not None:
        cache.move_to_end(cache_key)
        return cached
    cached = jws.sign(payload.body)
    if stats is not None:
        stats.jws_signatures += 1
    cache[cache_key] = cached
    while len(cache) > cache_size:
        cache.popitem(last=False)
    return cached


def sign_delivery(
    payload: Payload,
    webhook: Webhook,
    *,
    delivery_id: str,
    now: datetime,
    jws: JWSSigner,
    cache: OrderedDict[str, str],
    stats: SignCounters | None = None,
) -> DeliverySignature:
    """Sign one delivery of ``payload`` to ``webhook`` at ``now`` by the webhook's profile.

    Raises :class:`InvalidKeyError` or :class:`InvalidFieldError` for a webhook whose secret
    or profile cannot sign; nothing here is worth retrying.
    """
    profile = webhook.signing_profile
    if profile == "saleor":
        if webhook.secret_key is not None:
            if stats is not None:
                stats.hmac_signatures += 1
            return DeliverySignature(hmac_signature(payload.body, webhook.secret_key))
        return DeliverySignature(payload_jws(payload, jws, cache, stats))
    if profile == "standard-webhooks":
        if webhook.secret_key is None:
            raise InvalidKeyError(
                f"secret_key: webhook {webhook.id!r} signs with standard-webhooks but has no "
                "whsec_/whsk_ secret",
                field="secret_key",
            )
        signer = standard_signer(webhook.secret_key)
        return DeliverySignature(
            None, signer.headers(delivery_id, int(now.timestamp()), payload.body)
        )
    raise InvalidFieldError(
        f"signing_profile: {profile!r} is not one of {list(PROFILES)}", field="signing_profile"
    )
