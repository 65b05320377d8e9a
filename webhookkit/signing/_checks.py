"""Input checks shared by the verifiers: the body must be bytes, header values clean text.

A forged request may carry anything: a header decoded with ``surrogateescape`` (aiohttp) holds
lone surrogates for bytes such as 0xFF, and NUL or other control bytes never belong in a
signature header. Each is refused as a :class:`MalformedSignatureError` before any encoding
or comparison could raise something else.
"""

from __future__ import annotations

import re

from ..exceptions import MalformedSignatureError

__all__ = ["body_bytes", "header_text"]

_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")


def body_bytes(body: object) -> bytes:
    """``body`` as bytes (bytearray and memoryview are copied); anything else is refused."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    raise MalformedSignatureError(
        f"body: expected the raw request bytes, got {type(body).__name__}"
    )


def header_text(name: str, value: object) -> str:
    """``value`` of header ``name`` if it is a string without control characters or lone
    surrogates (undecodable bytes); else :class:`MalformedSignatureError`."""
    if not isinstance(value, str):
        raise MalformedSignatureError(f"{name}: header value is not a string")
    if _UNSAFE.search(value):
        raise MalformedSignatureError(
            f"{name}: header holds control characters or bytes that are not text"
        )
    return value
