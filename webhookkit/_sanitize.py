"""Text any store can keep: no NUL or other control characters, no lone surrogates.

Receivers answer with whatever bytes they like. PostgreSQL refuses NUL in ``text`` and any
string that is not valid UTF-8 (a lone surrogate cannot be encoded), so attempt fields pass
through :func:`sanitize_text` / :func:`sanitize_headers` before they are recorded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import chain

__all__ = [
    "EXCERPT_LIMIT",
    "REPLACEMENT",
    "excerpt",
    "first_unstorable",
    "sanitize_headers",
    "sanitize_text",
]

REPLACEMENT = "\ufffd"
#: C0 controls except tab, newline and carriage return, and every surrogate code point.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
HEADER_LIMIT = 8192
#: Characters of a receiver's answer kept on an attempt (Saleor's rule).
EXCERPT_LIMIT = 1024


def excerpt(text: str, limit: int = EXCERPT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters with ``...`` appended when cut (Saleor's rule)."""
    return text if len(text) <= limit else text[:limit] + "..."


def first_unstorable(s: str) -> int | None:
    """The index of the first character :func:`sanitize_text` would replace, or None."""
    found = _UNSAFE.search(s)
    return found.start() if found else None


def sanitize_text(s: str | bytes, limit: int) -> str:
    """``s`` as storable text: bytes decoded as UTF-8 (invalid sequences replaced), NUL,
    control characters (but ``\\t \\n \\r``) and lone surrogates replaced by U+FFFD, cut to
    ``limit`` characters with ``...`` appended when cut.
    """
    if isinstance(s, str):
        # The common case, at C speed: short printable ASCII needs nothing.
        if len(s) <= limit and s.isascii() and s.isprintable():
            return s
        text = s
    elif isinstance(s, bytes | bytearray | memoryview):
        text = bytes(s).decode("utf-8", errors="replace")
    else:
        text = str(s)
    if len(text) > limit:
        text = text[: max(limit, 0)] + "..."
    return _UNSAFE.sub(REPLACEMENT, text)


def sanitize_headers(
    pairs: Iterable[tuple[str | bytes, str | bytes]], limit: int = HEADER_LIMIT
) -> tuple[tuple[str, str], ...]:
    """Header pairs as storable text (see :func:`sanitize_text`); each name and value is cut to
    ``limit`` characters."""
    items = pairs if isinstance(pairs, tuple) else tuple(pairs)
    if not items:
        return ()
    # One check over all the text at C speed: headers are nearly always plain ASCII. join()
    # refuses bytes (TypeError), which then take the slow path.
    try:
        joined = "".join(chain.from_iterable(items))  # type: ignore[arg-type]
    except TypeError:
        pass
    else:
        if (
            joined.isascii()
            and joined.isprintable()
            and (len(joined) <= limit or all(len(t) <= limit for pair in items for t in pair))
        ):
            return items  # type: ignore[return-value]
    return tuple((sanitize_text(name, limit), sanitize_text(value, limit)) for name, value in items)
