"""Saleor's webhook and app management API for a host's graphql-core schema.

::

    from webhookkit.graphql import extend_schema

    schema = extend_schema(host_schema, kit)      # host's types + webhookCreate, appInstall...
    result = await graphql(schema, query, context_value={"requestor": requestor})

The requestor is a :class:`StaffUser` (the host authenticates its staff), an ``App``
(:func:`authenticate_app` resolves ``Authorization: Bearer <token>`` through the kit's hashed
tokens) or None. Importing this package needs graphql-core; ``import webhookkit`` does not.
"""

from __future__ import annotations

from ._api import ManagementAPI, ObjectLoader, PrincipalOf, default_principal
from ._context import (
    ManagementContext,
    Requestor,
    StaffUser,
    authenticate_app,
    bearer_token,
    requestor_of,
)
from ._errors import PermissionDenied
from ._ids import from_global_id, to_global_id
from ._install import Installer, Manifest, ManifestWebhook
from ._schema import extend_schema
from ._sdl import management_sdl

__all__ = [
    "Installer",
    "ManagementAPI",
    "ManagementContext",
    "Manifest",
    "ManifestWebhook",
    "ObjectLoader",
    "PermissionDenied",
    "PrincipalOf",
    "Requestor",
    "StaffUser",
    "authenticate_app",
    "bearer_token",
    "default_principal",
    "extend_schema",
    "from_global_id",
    "management_sdl",
    "requestor_of",
    "to_global_id",
]
