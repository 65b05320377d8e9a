"""Saleor's HMAC scheme: HMAC-SHA256 over the exact body bytes, lowercase hex, no prefix."""

from __future__ import annotations

import hashlib
import hmac as _hmac

from .._secret import Secret
from ..exceptions import SignatureError

__all__ = ["HMACSigner", "hmac_signature", "verify_hmac"]


def hmac_signature(body: bytes, secret: str | Secret) -> str:
    key = secret.reveal() if isinstance(secret, Secret) else secret
    return _hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_hmac(body: bytes, signature: str, secret: str | Secret) -> None:
    """Raise :class:`SignatureError` unless ``signature`` is the HMAC of ``body``."""
    if not isinstance(signature, str) or len(signature) != 64:
        raise SignatureError("HMAC signature: expected 64 lowercase hex characters")
    expected = hmac_signature(body, secret)
    if not _hmac.compare_digest(expected.encode(), signature.lower().encode("ascii", "replace")):
        raise SignatureError("HMAC signature: does not match the body")


class HMACSigner:
    """Signs with a webhook's secret key."""

    kind = "hmac"

    def __init__(self, secret: str | Secret) -> None:
        self._secret = Secret(secret) if isinstance(secret, str) else secret

    def sign(self, body: bytes, /) -> str:
        return hmac_signature(body, self._secret)

    def __repr__(self) -> str:
        return "HMACSigner(secret=[secret])"
