"""Merging the management API into a host's graphql-core schema.

Types the host already defines (an ``App`` for ``Event.recipient``, ``DateTime``...) are
extended with the fields and values they lack instead of being redefined; the fields go onto
the host's own query and mutation root types, whatever they are called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from graphql import (
    DocumentNode,
    EnumTypeDefinitionNode,
    EnumTypeExtensionNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InputObjectTypeDefinitionNode,
    InputObjectTypeExtensionNode,
    InterfaceTypeDefinitionNode,
    InterfaceTypeExtensionNode,
    NamedTypeNode,
    NameNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    OperationType,
    OperationTypeDefinitionNode,
    ScalarTypeDefinitionNode,
    SchemaExtensionNode,
    build_schema,
    parse,
    print_ast,
    validate_schema,
)
from graphql import extend_schema as graphql_extend_schema

from ..exceptions import ConfigurationError
from ._api import ManagementAPI, ObjectLoader, PrincipalOf, default_principal
from ._context import Requestor, requestor_of
from ._install import Installer
from ._sdl import management_sdl

if TYPE_CHECKING:
    from ..dispatcher import WebhookKit

__all__ = ["extend_schema"]


def _merge(definition: Any, existing: Any, *, root: bool = False) -> Any:
    """The definition, or an extension with only what ``existing`` lacks (None: nothing).

    A field the host has already must have the same type, except on the root types, where
    the host's own field simply wins."""
    if isinstance(definition, ScalarTypeDefinitionNode):
        return None
    if isinstance(definition, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode):
        if not isinstance(existing, GraphQLObjectType | GraphQLInterfaceType):
            raise ConfigurationError(
                f"schema: the host's {definition.name.value} is not an object type", field="schema"
            )
        for field in definition.fields or ():
            found = existing.fields.get(field.name.value)
            if found is not None and not root and str(found.type) != print_ast(field.type):
                raise ConfigurationError(
                    f"schema: the host's {definition.name.value}.{field.name.value} is "
                    f"{found.type}, the management API needs {print_ast(field.type)}",
                    field="schema",
                )
        fields = tuple(f for f in definition.fields or () if f.name.value not in existing.fields)
        have = {i.name for i in existing.interfaces}
        interfaces = tuple(i for i in definition.interfaces or () if i.name.value not in have)
        if not fields and not interfaces:
            return None
        cls = (
            ObjectTypeExtensionNode
            if isinstance(definition, ObjectTypeDefinitionNode)
            else InterfaceTypeExtensionNode
        )
        return cls(name=definition.name, fields=fields, interfaces=interfaces, directives=())
    if isinstance(definition, EnumTypeDefinitionNode):
        if not isinstance(existing, GraphQLEnumType):
            raise ConfigurationError(
                f"schema: the host's {definition.name.value} is not an enum", field="schema"
            )
        values = tuple(v for v in definition.values or () if v.name.value not in existing.values)
        return (
            EnumTypeExtensionNode(name=definition.name, values=values, directives=())
            if values
            else None
        )
    if isinstance(definition, InputObjectTypeDefinitionNode):
        if not isinstance(existing, GraphQLInputObjectType):
            raise ConfigurationError(
                f"schema: the host's {definition.name.value} is not an input type", field="schema"
            )
        inputs = tuple(f for f in definition.fields or () if f.name.value not in existing.fields)
        return (
            InputObjectTypeExtensionNode(name=definition.name, fields=inputs, directives=())
            if inputs
            else None
        )
    raise ConfigurationError(f"schema: cannot merge {definition.kind}", field="schema")


def _document(schema: GraphQLSchema, sdl: str) -> DocumentNode:
    definitions: list[Any] = []
    roots: list[OperationTypeDefinitionNode] = []
    root_names = {
        OperationType.QUERY: schema.query_type.name if schema.query_type else None,
        OperationType.MUTATION: schema.mutation_type.name if schema.mutation_type else None,
    }
    for definition in parse(sdl).definitions:
        name = definition.name.value  # type: ignore[attr-defined]
        existing = schema.type_map.get(name)
        if existing is None:
            definitions.append(definition)
            for operation, root in root_names.items():
                if root is None and name == operation.value.capitalize():
                    roots.append(
                        OperationTypeDefinitionNode(
                            operation=operation,
                            type=NamedTypeNode(name=NameNode(value=name)),
                        )
                    )
            continue
        merged = _merge(definition, existing, root=name in root_names.values())
        if merged is not None:
            definitions.append(merged)
    if roots:
        definitions.append(SchemaExtensionNode(operation_types=tuple(roots), directives=()))
    return DocumentNode(definitions=tuple(definitions))


def extend_schema(
    host: GraphQLSchema | str,
    kit: WebhookKit,
    *,
    get_requestor: Callable[[Any], Requestor] = requestor_of,
    load_object: ObjectLoader | None = None,
    principal_of: PrincipalOf = default_principal,
) -> GraphQLSchema:
    """The host's schema with Saleor's webhook and app management API merged in.

    ``host`` (a ``GraphQLSchema`` or SDL) keeps its own types and resolvers; the new fields
    go on its query and mutation roots (a mutation root is added when it has none).
    ``get_requestor(context)`` says who is asking (default: the context's ``requestor``, see
    :class:`~webhookkit.graphql.ManagementContext`); ``load_object(type_name, pk)`` finds the
    host object a ``webhookDryRun``/``webhookTrigger`` ``objectId`` names (sync or async).
    """
    if isinstance(host, str):
        try:
            host = build_schema(host)
        except (GraphQLError, TypeError) as exc:
            raise ConfigurationError(
                f"schema: SDL cannot be built: {exc}", field="schema"
            ) from None
    if host.query_type is None:
        raise ConfigurationError("schema: the host schema has no query type", field="schema")
    query_name = host.query_type.name
    mutation_name = host.mutation_type.name if host.mutation_type else "Mutation"
    sdl = management_sdl(kit.registry, query=query_name, mutation=mutation_name)
    try:
        schema = graphql_extend_schema(host, _document(host, sdl))
    except (GraphQLError, TypeError) as exc:
        raise ConfigurationError(
            f"schema: the management API does not merge into the host schema: {exc}",
            field="schema",
        ) from None
    errors = validate_schema(schema)
    if errors:
        raise ConfigurationError(
            "schema: the merged schema is invalid: " + "; ".join(e.message for e in errors),
            field="schema",
        )
    installer = Installer(kit, get_requestor=get_requestor)
    api = ManagementAPI(
        kit,
        installer=installer,
        get_requestor=get_requestor,
        load_object=load_object,
        principal_of=principal_of,
    )
    resolvers = api.resolvers()
    for root, host_root, fields in (
        (schema.query_type, host.query_type, resolvers["query"]),
        (schema.mutation_type, host.mutation_type, resolvers["mutation"]),
    ):
        assert root is not None
        taken = host_root.fields if host_root is not None else {}
        for name, resolver in fields.items():
            if name not in taken:  # a field the host defines itself keeps its own resolver
                root.fields[name].resolve = resolver
    return schema
