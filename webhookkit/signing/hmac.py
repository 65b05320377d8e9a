"""Saleor's HMAC scheme: HMAC-SHA256 over the exact body bytes, lowercase hex, no prefix."""

from __future__ import annotations

import hashlib
import hmac as _hmac
from collections.abc import Iterable

from .._secret import Secret
from ..exceptions import InvalidKeyError, MalformedSignatureError, SignatureMismatchError
from ._checks import body_bytes

__all__ = ["HMACSigner", "hmac_key_bytes", "hmac_signature", "verify_hmac"]

_HEX = frozenset("0123456789abcdefABCDEF")


def hmac_signature(body: bytes, secret: str | Secret) -> str:
    """Lowercase hex HMAC-SHA256 of ``body`` keyed with the UTF-8 bytes of ``secret``."""
    return _hmac.new(hmac_key_bytes(secret), body, hashlib.sha256).hexdigest()


def hmac_key_bytes(secret: str | Secret) -> bytes:
    """The UTF-8 bytes of a secret; :class:`InvalidKeyError` if it is no encodable string."""
    key = secret.reveal() if isinstance(secret, Secret) else secret
    if not isinstance(key, str):
        raise InvalidKeyError("secret_key: must be a string", field="secret_key")
    try:
        raw = key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKeyError(
            "secret_key: holds lone surrogates, which are not text", field="secret_key"
        ) from None
    return raw


def verify_hmac(body: bytes, signature: str, secret: str | Secret | Iterable[str | Secret]) -> None:
    """Raise unless ``signature`` is the HMAC of ``body`` under ``secret`` (or any of several
    secrets, for rotation). Malformed values raise :class:`MalformedSignatureError`, a wrong
    body or key :class:`SignatureMismatchError`; comparisons take constant time."""
    body = body_bytes(body)
    if not isinstance(signature, str) or len(signature) != 64 or not _HEX.issuperset(signature):
        raise MalformedSignatureError("HMAC signature: expected 64 hex characters")
    given = signature.lower().encode("ascii")
    if isinstance(secret, str | Secret):
        secrets: list[str | Secret] = [secret]
    elif isinstance(secret, Iterable) and not isinstance(secret, bytes | bytearray):
        secrets = list(secret)
    else:
        raise InvalidKeyError("secret: expected a string or a list of strings", field="secret")
    if not secrets:
        raise InvalidKeyError("secret: at least one secret needed", field="secret")
    matched = False
    for item in secrets:
        # No early exit: the time taken must not tell which secret matched.
        matched |= _hmac.compare_digest(hmac_signature(body, item).encode("ascii"), given)
    if not matched:
        raise SignatureMismatchError("HMAC signature: does not match the body")


class HMACSigner:
    """Signs with a webhook's secret key."""

    kind = "hmac"

    def __init__(self, secret: str | Secret) -> None:
        self._secret = Secret(secret) if isinstance(secret, str) else secret

    def sign(self, body: bytes, /) -> str:
        return hmac_signature(body, self._secret)

    def __repr__(self) -> str:
        return "HMACSigner(secret=[secret])"
