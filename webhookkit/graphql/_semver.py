"""Enough of npm's semver ranges for a manifest's ``requiredSaleorVersion``: ``||`` of
space-separated comparators (``>=3.20 <4``), ``^``, ``~``, ``x`` wildcards and hyphen ranges."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["satisfies"]

Version = tuple[int, int, int]
_PART: Final = re.compile(r"^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:[-+].*)?$")
_OPS: Final = ("<=", ">=", "<", ">", "=", "^", "~")


def _parse(text: str) -> tuple[list[int | None], int]:
    """Numbers (None for a wildcard or a missing part) and how many were given."""
    match = _PART.match(text)
    if match is None:
        raise ValueError(f"not a version: {text!r}")
    parts: list[int | None] = []
    for group in match.groups():
        parts.append(None if group is None or group in "xX*" else int(group))
    given = sum(1 for g in match.groups() if g is not None and g not in "xX*")
    return parts, given


def _floor(parts: list[int | None]) -> Version:
    a, b, c = (p or 0 for p in parts)
    return (a, b, c)


def _upper(parts: list[int | None], given: int) -> Version | None:
    """The exclusive upper bound of a partial version (``3.2`` -> ``3.3.0``)."""
    a, b, _ = (p or 0 for p in parts)
    if given == 0:
        return None
    if given == 1:
        return (a + 1, 0, 0)
    if given == 2:
        return (a, b + 1, 0)
    return None


def _comparator(token: str, version: Version) -> bool:
    op = next((o for o in _OPS if token.startswith(o)), "")
    parts, given = _parse(token[len(op) :])
    low = _floor(parts)
    a, b, c = low
    if op == "^":
        high = (a + 1, 0, 0) if a else (0, b + 1, 0) if b or given < 3 else (0, 0, c + 1)
        if given == 1:
            high = (a + 1, 0, 0)
        return low <= version < high
    if op == "~":
        high = (a + 1, 0, 0) if given == 1 else (a, b + 1, 0)
        return low <= version < high
    if op in ("", "="):
        upper = _upper(parts, given)
        if given == 3:
            return version == low
        return low <= version and (upper is None or version < upper)
    if op == ">=":
        return version >= low
    if op == ">":
        upper = _upper(parts, given)
        return version >= upper if upper is not None and given < 3 else version > low
    if op == "<":
        return version < low
    upper = _upper(parts, given)  # "<="
    return version < upper if upper is not None and given < 3 else version <= low


def satisfies(version: str, spec: str) -> bool:
    """Whether ``version`` (``3.24.0``) is in the range ``spec``; ValueError if malformed."""
    parts, _ = _parse(version)
    current = _floor(parts)
    alternatives = [alt.strip() for alt in spec.split("||")]
    if not spec.strip() or any(not alt for alt in alternatives):
        raise ValueError(f"empty range in {spec!r}")
    for alt in alternatives:
        hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", alt)
        tokens = (
            [f">={hyphen.group(1)}", f"<={hyphen.group(2)}"]
            if hyphen
            else re.sub(r"(<=|>=|<|>|=|\^|~)\s+", r"\1", alt).split()
        )
        if all(_comparator(t, current) for t in tokens):
            return True
    return False
