"""A wrapper that keeps secrets out of reprs, logs and exceptions, and URL redaction."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import urlsplit, urlunsplit

REDACTED: Final = "[secret]"


class Secret:
    """Holds a secret string; ``repr``/``str`` print ``[secret]``, ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        return (Secret, (self._value,))


def redact_url(url: str) -> str:
    """``url`` with any userinfo (user and password) replaced by ``[secret]``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}"))


#: Header names whose values are secrets or signatures: redacted in records and reprs.
SENSITIVE_HEADERS: Final = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "saleor-signature",
        "x-saleor-signature",
        "webhook-signature",
    }
)


def redact_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
) -> tuple[tuple[str, str], ...]:
    """Header pairs with sensitive values replaced by ``[secret]``."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return tuple((k, REDACTED if k.lower() in SENSITIVE_HEADERS else v) for k, v in items)
