"""Refusals as Saleor reports them: error entries (``field``, ``code``, ``message``) in the
payload for bad input, and the ``PermissionDenied`` GraphQL error for a missing permission."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from graphql import GraphQLError

from ..exceptions import (
    ConfigurationError,
    DuplicateError,
    InvalidHeaderError,
    InvalidQueryError,
    InvalidURLError,
    NotFoundError,
    UnknownPermissionError,
)

__all__ = ["ErrorEntry", "MutationError", "PermissionDenied", "entry", "from_exception"]

ErrorEntry = dict[str, Any]

#: webhookkit's field names -> the GraphQL input names Saleor reports.
FIELD_NAMES: Final[Mapping[str, str]] = {
    "target_url": "targetUrl",
    "subscription_query": "query",
    "custom_headers": "customHeaders",
    "secret_key": "secretKey",
    "is_active": "isActive",
    "events": "events",
    "name": "name",
    "permissions": "permissions",
    "identifier": "identifier",
    "app": "app",
    "token": "token",
    "delivery_id": "id",
}


class PermissionDenied(GraphQLError):
    """Saleor's permission error: a GraphQL error whose ``extensions.exception.code`` is
    ``PermissionDenied``; the mutation's field is null."""

    def __init__(self, permissions: Iterable[str] = ()) -> None:
        names = list(permissions)
        message = (
            f"To access this path, you need one of the following permissions: {', '.join(names)}"
            if names
            else "You do not have permission to perform this action"
        )
        super().__init__(
            message,
            extensions={
                "exception": {"code": "PermissionDenied"},
                **({"permissions": names} if names else {}),
            },
        )


class MutationError(Exception):
    """Raised inside a mutation to answer with these error entries and no object."""

    def __init__(self, *entries: ErrorEntry) -> None:
        super().__init__(entries[0]["message"] if entries else "")
        self.entries = list(entries)


def entry(code: str, message: str, field: str | None = None, **extra: Any) -> ErrorEntry:
    return {"field": field, "code": code, "message": message, **extra}


def _message(exc: ConfigurationError) -> str:
    if isinstance(exc, InvalidQueryError):
        return exc.message
    text = str(exc)
    prefix = f"{exc.field}: " if exc.field else ""
    return text[len(prefix) :] if prefix and text.startswith(prefix) else text


def from_exception(
    exc: ConfigurationError, *, kind: str = "webhook", field: str | None = None
) -> ErrorEntry:
    """The error entry for a refusal by webhookkit (``kind``: ``webhook`` for WebhookErrorCode,
    ``app`` for AppErrorCode, ``dry_run`` for the dry-run and trigger codes)."""
    name = field or FIELD_NAMES.get(exc.field or "", exc.field)
    if isinstance(exc, InvalidQueryError):
        code = exc.code
        if kind == "app":
            code = "INVALID_MANIFEST_FORMAT"
        elif kind == "dry_run" and code not in _DRY_RUN_QUERY_CODES:
            code = "GRAPHQL_ERROR"
        return entry(code, _message(exc), name or "query")
    if isinstance(exc, InvalidHeaderError):
        return entry("INVALID_CUSTOM_HEADERS", _message(exc), name)
    if isinstance(exc, InvalidURLError):
        return entry("INVALID_URL_FORMAT" if kind == "app" else "INVALID", _message(exc), name)
    if isinstance(exc, NotFoundError):
        return entry("NOT_FOUND", _message(exc), name)
    if isinstance(exc, DuplicateError):
        return entry("UNIQUE", _message(exc), name)
    if isinstance(exc, UnknownPermissionError) and kind == "app":
        return entry("INVALID_PERMISSION", _message(exc), name)
    return entry("GRAPHQL_ERROR" if kind == "dry_run" else "INVALID", _message(exc), name)


_DRY_RUN_QUERY_CODES: Final = frozenset(
    {"GRAPHQL_ERROR", "SYNTAX", "MISSING_SUBSCRIPTION", "UNABLE_TO_PARSE", "MISSING_EVENT"}
)
