"""Saleor's global IDs: base64 of ``Type:pk`` (``V2ViaG9vazox`` is ``Webhook:1``)."""

from __future__ import annotations

import base64
import binascii

__all__ = ["from_global_id", "to_global_id"]


def to_global_id(type_name: str, pk: str) -> str:
    """The global ID of object ``pk`` of GraphQL type ``type_name``."""
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode("ascii")


def from_global_id(global_id: str) -> tuple[str, str]:
    """``(type_name, pk)`` of a global ID; ValueError if it is not one."""
    try:
        text = base64.b64decode(global_id.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise ValueError(f"{global_id!r} is not a valid ID") from None
    type_name, sep, pk = text.partition(":")
    if not sep or not type_name or not pk:
        raise ValueError(f"{global_id!r} is not a valid ID")
    return type_name, pk
