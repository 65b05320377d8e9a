"""Saleor's authorisation rules over a requestor: who manages apps, what it may grant."""

from __future__ import annotations

from ..apps import App
from ._context import Requestor, StaffUser
from ._errors import MutationError, entry

__all__ = ["check_grant", "check_scope", "held", "manages_apps"]


def manages_apps(requestor: Requestor) -> bool:
    """Staff holding MANAGE_APPS, or an app holding it (granted before Saleor 3.24)."""
    if isinstance(requestor, StaffUser):
        return requestor.has_permission("MANAGE_APPS")
    return isinstance(requestor, App) and "MANAGE_APPS" in requestor.permissions


def held(requestor: Requestor) -> frozenset[str]:
    if isinstance(requestor, StaffUser | App):
        return requestor.permissions
    return frozenset()


def check_grant(requestor: Requestor, permissions: frozenset[str]) -> None:
    """Saleor's rules for giving an app permissions: never ``MANAGE_APPS`` (from 3.24), and
    only permissions the requestor holds itself."""
    if "MANAGE_APPS" in permissions:
        raise MutationError(
            entry(
                "INVALID_PERMISSION",
                "MANAGE_APPS cannot be granted to an app.",
                "permissions",
                permissions=["MANAGE_APPS"],
            )
        )
    missing = sorted(permissions - held(requestor))
    if missing:
        raise MutationError(
            entry(
                "OUT_OF_SCOPE_PERMISSION",
                "You can't add permission that you don't have.",
                "permissions",
                permissions=missing,
            )
        )


def check_scope(requestor: Requestor, app: App, field: str = "id") -> None:
    """A requestor manages only apps whose permissions it holds itself (Saleor's scope)."""
    if isinstance(requestor, App) and requestor.id == app.id:
        return
    if not app.permissions <= held(requestor):
        raise MutationError(entry("OUT_OF_SCOPE_APP", "You can't manage this app.", field))
