"""Who is asking: the host resolves its own staff users, webhookkit resolves app tokens.

The host's GraphQL context carries a :data:`Requestor` under ``requestor`` (a mapping key or
an attribute); :func:`authenticate_app` turns an ``Authorization: Bearer <token>`` header into
the app holding that token, through the kit's hashed tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from ..apps import App

if TYPE_CHECKING:
    from ..dispatcher import WebhookKit

__all__ = [
    "ManagementContext",
    "Requestor",
    "StaffUser",
    "authenticate_app",
    "bearer_token",
    "requestor_of",
]


@dataclass(frozen=True, slots=True)
class StaffUser:
    """A staff user of the host, with the Saleor permissions the host grants them."""

    id: str
    email: str = ""
    permissions: frozenset[str] = frozenset()
    is_active: bool = True

    def has_permission(self, permission: str) -> bool:
        return self.is_active and permission in self.permissions


#: A staff user, an app (authenticated by its token), or None for anonymous.
Requestor: TypeAlias = StaffUser | App | None


class ManagementContext(Protocol):
    """What the extension reads from the host's context (a mapping with the same key works)."""

    requestor: Requestor


def requestor_of(context: Any) -> Requestor:
    """The requestor a context carries: ``context["requestor"]`` or ``context.requestor``."""
    found = (
        context.get("requestor")
        if isinstance(context, Mapping)
        else getattr(context, "requestor", None)
    )
    return found if isinstance(found, StaffUser | App) else None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def authenticate_app(kit: WebhookKit, authorization: str | None) -> App | None:
    """The active app whose token is in the ``Authorization`` header value, or None."""
    token = bearer_token(authorization)
    if token is None:
        return None
    return await kit.apps.authenticate(token)
