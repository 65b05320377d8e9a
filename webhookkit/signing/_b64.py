"""base64url without padding (RFC 7515 section 2)."""

from __future__ import annotations

import base64
import binascii

from ..exceptions import MalformedSignatureError


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, *, what: str) -> bytes:
    """Decode unpadded base64url; anything else raises :class:`MalformedSignatureError`."""
    if not text or any(c not in _ALPHABET for c in text):
        raise MalformedSignatureError(f"{what}: not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedSignatureError(f"{what}: not base64url") from exc


_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
