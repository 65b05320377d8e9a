"""Relay connections over lists, with Saleor's rules: ``first`` or ``last`` is required and
at most 100 objects come back per page."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from graphql import GraphQLError

__all__ = ["MAX_PAGE", "connection"]

T = TypeVar("T")
MAX_PAGE: Final = 100
_PREFIX: Final = "arrayconnection:"


def _cursor(index: int) -> str:
    return base64.b64encode(f"{_PREFIX}{index}".encode()).decode("ascii")


def _index(cursor: str | None, name: str) -> int | None:
    if cursor is None:
        return None
    try:
        text = base64.b64decode(cursor.encode("ascii"), validate=True).decode("ascii")
        if not text.startswith(_PREFIX):
            raise ValueError(cursor)
        return int(text[len(_PREFIX) :])
    except ValueError:
        raise GraphQLError(f"Argument '{name}': {cursor!r} is not a valid cursor.") from None


def connection(
    items: Sequence[T],
    view: Callable[[T], Any],
    *,
    name: str,
    first: int | None = None,
    last: int | None = None,
    after: str | None = None,
    before: str | None = None,
) -> dict[str, Any]:
    """One page of ``items`` (each shown through ``view``) as a Relay connection."""
    if first is None and last is None:
        raise GraphQLError(
            f"You must provide a `first` or `last` value to properly paginate the `{name}` "
            "connection."
        )
    for arg, value in (("first", first), ("last", last)):
        if value is not None and value < 0:
            raise GraphQLError(f"Argument '{arg}' must be a non-negative integer.")
        if value is not None and value > MAX_PAGE:
            raise GraphQLError(
                f"Requesting {value} records on the `{name}` connection exceeds the `{arg}` "
                f"limit of {MAX_PAGE} records."
            )
    start, end = 0, len(items)
    after_index = _index(after, "after")
    before_index = _index(before, "before")
    if after_index is not None:
        start = max(start, after_index + 1)
    if before_index is not None:
        end = min(end, before_index)
    window_start, window_end = start, max(start, end)
    if first is not None:
        window_end = min(window_end, window_start + first)
    if last is not None:
        window_start = max(window_start, window_end - last)
    edges = [
        {"node": view(items[i]), "cursor": _cursor(i)} for i in range(window_start, window_end)
    ]
    return {
        "edges": edges,
        "totalCount": len(items),
        "pageInfo": {
            "hasNextPage": window_end < end,
            "hasPreviousPage": window_start > start,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }
