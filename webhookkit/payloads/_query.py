"""Subscription queries as Saleor reads them: parse, validate, infer events, find filters.

Pure functions over graphql-core; :mod:`webhookkit.payloads.graphql` adds the cache, the
counters and execution. Error codes are Saleor's ``WebhookErrorCode`` values, checked in
Saleor's order: ``SYNTAX``, ``GRAPHQL_ERROR``, ``MISSING_SUBSCRIPTION``, ``INVALID``,
``UNABLE_TO_PARSE``, ``MISSING_EVENT``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    ListValueNode,
    Node,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    is_abstract_type,
    parse,
    validate,
    visit,
)
from graphql.pyutils import camel_to_snake

from ..events import EventRegistry
from ..exceptions import ConfigurationError, InvalidQueryError, UnknownEventError

__all__ = [
    "GRAPHQL_ERROR",
    "INVALID",
    "MAX_CHANNELS",
    "MISSING_EVENT",
    "MISSING_SUBSCRIPTION",
    "SYNTAX",
    "UNABLE_TO_PARSE",
    "PreparedQuery",
    "SchemaInfo",
    "analyse",
    "parse_query",
    "validate_document",
]

SYNTAX = "SYNTAX"
GRAPHQL_ERROR = "GRAPHQL_ERROR"
MISSING_SUBSCRIPTION = "MISSING_SUBSCRIPTION"
INVALID = "INVALID"
UNABLE_TO_PARSE = "UNABLE_TO_PARSE"
MISSING_EVENT = "MISSING_EVENT"

#: Saleor documents ``channels`` as "maximally 500 items".
MAX_CHANNELS = 500

EVENT_FIELD = "event"


@dataclass(frozen=True, slots=True)
class SchemaInfo:
    """What the resolver needs to know about the host schema, checked once.

    ``event_interface`` is the type of ``Subscription.event``; ``event_types`` the names of
    the object types implementing it (one per event, ``OrderCreated``...).
    """

    schema: GraphQLSchema
    subscription: GraphQLObjectType
    event_interface: GraphQLInterfaceType
    event_types: frozenset[str]

    @classmethod
    def of(cls, schema: GraphQLSchema) -> SchemaInfo:
        subscription = schema.subscription_type
        if subscription is None or EVENT_FIELD not in subscription.fields:
            raise ConfigurationError(
                "schema: needs a Subscription type with an 'event' field returning the Event "
                "interface (type Subscription { event: Event })",
                field="schema",
            )
        interface = get_named_type(subscription.fields[EVENT_FIELD].type)
        if not isinstance(interface, GraphQLInterfaceType):
            raise ConfigurationError(
                f"schema: Subscription.event returns {interface.name}, which is not an "
                "interface; it must return the Event interface its event types implement",
                field="schema",
            )
        names = frozenset(t.name for t in schema.get_possible_types(interface))
        return cls(schema, subscription, interface, names)


@dataclass(frozen=True, slots=True)
class PreparedQuery:
    """A validated subscription query and what Saleor reads from it.

    ``root_field`` is ``event`` or a filterable field (``orderCreated``) and ``response_key``
    its alias or name; ``type_names`` are the GraphQL event types the query names and
    ``events`` their wire values; ``channels`` the ``channels`` filter of a filterable field
    (empty: every channel); ``selects_recipient`` whether any selection reads the receiving
    app, which makes the body differ per app.
    """

    text: str
    document: DocumentNode
    operation_name: str | None
    root_field: str
    response_key: str
    type_names: tuple[str, ...]
    events: frozenset[str]
    channels: tuple[str, ...]
    selects_recipient: bool

    @property
    def filterable(self) -> bool:
        return self.root_field != EVENT_FIELD


def _error(code: str, message: str, node: Node | Sequence[Node] | None = None) -> InvalidQueryError:
    line = column = None
    if node is not None:
        located = GraphQLError(message, node)
        if located.locations:
            line, column = located.locations[0].line, located.locations[0].column
    return InvalidQueryError(code, message, line=line, column=column)


def _from_graphql_errors(code: str, errors: Sequence[GraphQLError]) -> InvalidQueryError:
    messages = list(dict.fromkeys(e.message for e in errors))
    first = errors[0].locations[0] if errors[0].locations else None
    return InvalidQueryError(
        code,
        "; ".join(messages),
        line=first.line if first else None,
        column=first.column if first else None,
    )


def parse_query(text: str) -> DocumentNode:
    """Parse ``text``; a syntax error is ``SYNTAX`` with its line and column."""
    try:
        return parse(text)
    except GraphQLSyntaxError as exc:
        raise _from_graphql_errors(SYNTAX, [exc]) from None


def validate_document(schema: GraphQLSchema, document: DocumentNode) -> None:
    """Validate against the schema with graphql-core's rules; failures are ``GRAPHQL_ERROR``."""
    errors = validate(schema, document)
    if errors:
        raise _from_graphql_errors(GRAPHQL_ERROR, errors)


def analyse(
    text: str, document: DocumentNode, info: SchemaInfo, registry: EventRegistry
) -> PreparedQuery:
    """Saleor's checks after validation, and the events, filter and recipient use they find."""
    operation = next(
        (
            d
            for d in document.definitions
            if isinstance(d, OperationDefinitionNode) and d.operation is OperationType.SUBSCRIPTION
        ),
        None,
    )
    if operation is None:
        raise InvalidQueryError(MISSING_SUBSCRIPTION, "Subscription operation can't be found.")
    selections = operation.selection_set.selections
    # Saleor counts fields and fragment spreads (not inline fragments) by name: several top
    # selections are allowed only when every one is ``event``.
    named = [s for s in selections if isinstance(s, FieldNode | FragmentSpreadNode)]
    if len(named) > 1 and {s.name.value for s in named} != {EVENT_FIELD}:
        raise _error(INVALID, "Subscription must select only one top field.", named[1])
    first = selections[0]
    if not isinstance(first, FieldNode):
        # Saleor finds no event field behind a top-level fragment (or crashes on an inline
        # one); the events could not be inferred from the fields, so refuse it the same way.
        raise _error(UNABLE_TO_PARSE, "Event field can't be found.", first)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    if first.name.value == EVENT_FIELD:
        event_fields = [s for s in selections if isinstance(s, FieldNode)]
        type_names = _event_type_names(event_fields, fragments, info.event_interface.name)
        channels: tuple[str, ...] = ()
    else:
        type_names = [_filterable_type(first, info)]
        channels = _channels(first)
    if not type_names:
        raise _error(MISSING_EVENT, "Can't find a single event.", first)
    events = _events_for(type_names, first, info, registry)
    return PreparedQuery(
        text=text,
        document=document,
        operation_name=operation.name.value if operation.name else None,
        root_field=first.name.value,
        response_key=(first.alias or first.name).value,
        type_names=tuple(sorted(set(type_names))),
        events=events,
        channels=channels,
        selects_recipient=_selects_recipient(document, info),
    )


def _event_type_names(
    event_fields: Iterable[FieldNode],
    fragments: dict[str, FragmentDefinitionNode],
    interface: str,
) -> list[str]:
    """Type conditions under ``event``: inline fragments, and named fragments one level deep
    (a fragment on the Event interface contributes its own inline fragments)."""
    found: list[str] = []

    def inline_types(selection_set: SelectionSetNode | None) -> None:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, InlineFragmentNode) and selection.type_condition:
                name = selection.type_condition.name.value
                if name != interface:
                    found.append(name)

    for field in event_fields:
        for selection in field.selection_set.selections if field.selection_set else ():
            if isinstance(selection, InlineFragmentNode) and selection.type_condition:
                name = selection.type_condition.name.value
                if name == interface:
                    inline_types(selection.selection_set)
                else:
                    found.append(name)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments[selection.name.value]  # validation proved it exists
                name = fragment.type_condition.name.value
                if name == interface:
                    inline_types(fragment.selection_set)
                else:
                    found.append(name)
    return found


def _filterable_type(field: FieldNode, info: SchemaInfo) -> str:
    definition = info.subscription.fields.get(field.name.value)
    if definition is None:  # only ``__typename`` gets past validation without a definition
        raise _error(UNABLE_TO_PARSE, "Event field can't be found.", field)
    named = get_named_type(definition.type)
    return str(named.name)


def _channels(field: FieldNode) -> tuple[str, ...]:
    for argument in field.arguments or ():
        if argument.name.value != "channels":
            continue
        value = argument.value
        # A variable or null gives no filter (as in Saleor); one string is a list of one.
        if isinstance(value, StringValueNode):
            slugs = [value.value]
        elif isinstance(value, ListValueNode):
            slugs = [v.value for v in value.values or () if isinstance(v, StringValueNode)]
        else:
            slugs = []
        if len(slugs) > MAX_CHANNELS:
            raise _error(
                INVALID,
                f"channels: {len(slugs)} channel slugs given, at most {MAX_CHANNELS} allowed",
                argument,
            )
        return tuple(dict.fromkeys(slugs))
    return ()


def _events_for(
    type_names: Sequence[str], root: FieldNode, info: SchemaInfo, registry: EventRegistry
) -> frozenset[str]:
    """Map GraphQL types to events through the registry (``CalculateTaxes`` gives two)."""
    if root.name.value != EVENT_FIELD:
        # A filterable field names its event; trust the name when it fits the field's type.
        by_name = camel_to_snake(root.name.value)
        if by_name in registry:
            event = registry.get(by_name)
            named = info.schema.get_type(type_names[0])
            if event.subscription_type == type_names[0] or is_abstract_type(named):
                return frozenset({event.value})
    values: set[str] = set()
    for name in type_names:
        try:
            values.update(e.value for e in registry.by_type_name(name))
        except UnknownEventError:
            raise _error(
                MISSING_EVENT,
                f"Can't find a single event: type {name!r} maps to no event in the registry.",
                root,
            ) from None
    return frozenset(values)


class _RecipientFinder(Visitor):
    """Finds a ``recipient`` field read on the Event interface or a type implementing it."""

    def __init__(self, type_info: TypeInfo, interface: GraphQLInterfaceType) -> None:
        super().__init__()
        self.type_info = type_info
        self.interface = interface
        self.found = False

    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        if node.name.value != "recipient":
            return
        parent = self.type_info.get_parent_type()
        if parent is self.interface or (
            isinstance(parent, GraphQLObjectType) and self.interface in parent.interfaces
        ):
            self.found = True


def _selects_recipient(document: DocumentNode, info: SchemaInfo) -> bool:
    type_info = TypeInfo(info.schema)
    finder = _RecipientFinder(type_info, info.event_interface)
    visit(document, TypeInfoVisitor(type_info, finder))
    return finder.found
