"""Bodies from GraphQL subscription queries, executed with graphql-core against the host schema.

Per trigger, webhooks whose query text and resolver context key are equal share one
execution, and webhooks whose bodies are byte-equal share one payload row (so one JWS).
Parsed and validated queries are kept in a bounded LRU cache keyed by the query text.
Webhooks without a query go to the ``fallback`` builder (the host's serializers).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from graphql import (
    ExecutionResult,
    GraphQLAbstractType,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
    build_schema,
    default_field_resolver,
    default_type_resolver,
    execute,
    get_named_type,
    is_abstract_type,
)
from graphql.pyutils import AwaitableOrValue

from ..apps import App, Webhook
from ..events import EventRegistry, EventType, default_registry
from ..exceptions import ConfigurationError, InvalidQueryError, PayloadError
from . import (
    Finish,
    PayloadBuilder,
    PayloadGroup,
    PayloadRequest,
    SerializerPayloads,
    build_blocking,
    encode_json,
    finish_here,
)
from ._query import EVENT_FIELD, PreparedQuery, SchemaInfo, analyse, parse_query, validate_document

__all__ = [
    "SALEOR_VERSION",
    "ChannelOf",
    "ContextFactory",
    "ContextKey",
    "EventRoot",
    "GraphQLPayloads",
    "PayloadStats",
    "PreparedQuery",
    "default_channel_of",
    "default_context_key",
]

log = logging.getLogger("webhookkit.payloads")

#: What ``Event.version`` reports unless the host says otherwise.
SALEOR_VERSION: Final = "3.24.0"

#: Builds the resolver context for the receiving app (sync or async).
ContextFactory = Callable[[App], Any]
#: Webhooks of apps with equal keys share one execution of a query.
ContextKey = Callable[[App, "PreparedQuery"], Hashable]
#: The channel slug of a trigger's subject, or None when it has none.
ChannelOf = Callable[[Any], "str | None"]

# Fields of Saleor's ``Event`` interface and the EventRoot attributes that answer them.
_EVENT_FIELDS: Final = {
    "issuedAt": "issued_at",
    "version": "version",
    "issuingPrincipal": "issuing_principal",
    "recipient": "recipient",
}


@dataclass(frozen=True, slots=True)
class EventRoot:
    """What a subscription query runs against: ``info.root_value`` in every resolver, and the
    value of ``Subscription.event`` (and of a filterable field such as ``orderCreated``).

    ``subject`` is the trigger's object; ``recipient`` the receiving app (resolvers run as
    it); ``issuing_principal`` the trigger's ``requestor``; ``type_name`` the GraphQL type the
    ``Event`` interface resolves to (``OrderCreated``).
    """

    event: EventType
    subject: Any
    issued_at: datetime
    version: str
    issuing_principal: Any
    recipient: App | None

    @property
    def type_name(self) -> str:
        return self.event.subscription_type or ""


@dataclass
class PayloadStats:
    """Counters of the GraphQL payload builder; tests and dashboards read them.

    ``skipped_*`` count webhooks that got no delivery: empty result, channel filter, or
    another reason (stored query no longer valid, event without a schema type, body not
    JSON-encodable).
    """

    parses: int = 0
    validations: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    executions: int = 0
    field_errors: int = 0
    skipped_empty: int = 0
    skipped_channel: int = 0
    skipped_other: int = 0


@dataclass(slots=True)
class _Plan:
    """What one trigger executes: each distinct (query, context key) once, and the skips."""

    valid: dict[str, PreparedQuery] = dataclasses.field(default_factory=dict)
    runs: dict[tuple[str, Hashable], list[tuple[Webhook, App]]] = dataclasses.field(
        default_factory=dict
    )
    skipped: dict[str, list[Webhook]] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Refusal:
    """A cached InvalidQueryError, re-raised as a fresh exception on every hit."""

    code: str
    message: str
    line: int | None
    column: int | None

    def error(self) -> InvalidQueryError:
        return InvalidQueryError(self.code, self.message, line=self.line, column=self.column)


def default_context_key(app: App, query: PreparedQuery) -> Hashable:
    """The app's permission set, plus the app itself when the query reads ``recipient``."""
    return (app.permissions, app.id if query.selects_recipient else None)


def _lookup(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def default_channel_of(subject: Any) -> str | None:
    """``subject.channel_slug``, ``subject.channel`` (a slug) or ``subject.channel.slug``;
    mappings are read by key."""
    if subject is None:
        return None
    for name in ("channel_slug", "channel"):
        value = _lookup(subject, name)
        if isinstance(value, str):
            return value
        if value is not None:
            slug = _lookup(value, "slug")
            if isinstance(slug, str):
                return slug
    return None


def _resolve_field(source: Any, info: GraphQLResolveInfo[Any], **args: Any) -> Any:
    """Default resolver: EventRoot answers the root and Event fields, else graphql-core's."""
    if not isinstance(source, EventRoot):
        return default_field_resolver(source, info, **args)
    if info.parent_type is info.schema.subscription_type:
        if info.field_name == EVENT_FIELD:
            return source
        # A filterable field answers only for its own event type; null means no delivery.
        named = get_named_type(info.return_type)
        if named.name == source.type_name:
            return source
        if is_abstract_type(named) and any(
            t.name == source.type_name for t in info.schema.get_possible_types(named)
        ):
            return source
        return None
    attribute = _EVENT_FIELDS.get(info.field_name)
    if attribute is not None:
        return getattr(source, attribute)
    # Any other field of the event type (``order``, ``taxBase``...) is the subject, or the
    # subject's entry of that name when the trigger passed a mapping of several objects.
    subject = source.subject
    if isinstance(subject, Mapping) and info.field_name in subject:
        return subject[info.field_name]
    return subject


def _resolve_type(
    value: Any, info: GraphQLResolveInfo[Any], abstract_type: GraphQLAbstractType
) -> AwaitableOrValue[str | None]:
    if isinstance(value, EventRoot):
        return value.type_name
    if isinstance(value, App):
        return "App"
    return default_type_resolver(value, info, abstract_type)


def _format_error(error: GraphQLError) -> dict[str, Any]:
    """graphql-core's error dict plus Saleor's ``extensions.exception.code``."""
    formatted: dict[str, Any] = dict(error.formatted)
    original: BaseException = error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    extensions = dict(formatted.get("extensions") or {})
    extensions["exception"] = {"code": type(original).__name__}
    formatted["extensions"] = extensions
    return formatted


def _load_schema(schema: GraphQLSchema | str) -> GraphQLSchema:
    if isinstance(schema, GraphQLSchema):
        return schema
    if isinstance(schema, str):
        try:
            return build_schema(schema)
        except (GraphQLError, TypeError) as exc:
            raise ConfigurationError(
                f"schema: SDL cannot be built: {exc}", field="schema"
            ) from None
    raise ConfigurationError(
        f"schema: expected a GraphQLSchema or SDL text, got {type(schema).__name__}",
        field="schema",
    )


class GraphQLPayloads:
    """Builds bodies from subscription queries; plugs into ``WebhookKit(payloads=...)``.

    ``schema`` is the host's graphql-core schema (or SDL): ``Subscription.event`` returns the
    ``Event`` interface and one object type per event implements it. ``events``, if given,
    are the events the host serves by query; each must map to such a type or construction
    fails naming the missing ones. ``context_factory(app)`` builds the resolver context for
    the receiving app (default: the :class:`~webhookkit.App` itself); ``context_key(app,
    query)`` says which apps may share an execution (default: :func:`default_context_key`).
    ``channel_of(subject)`` finds the subject's channel for ``channels`` filters.
    """

    def __init__(
        self,
        schema: GraphQLSchema | str,
        *,
        registry: EventRegistry | None = None,
        fallback: PayloadBuilder | None = None,
        context_factory: ContextFactory | None = None,
        context_key: ContextKey = default_context_key,
        channel_of: ChannelOf = default_channel_of,
        events: Iterable[str | EventType] | None = None,
        version: str = SALEOR_VERSION,
        cache_size: int = 1024,
    ) -> None:
        if cache_size < 1:
            raise ConfigurationError("cache_size: must be at least 1", field="cache_size")
        self.registry = registry if registry is not None else default_registry()
        self.fallback: PayloadBuilder = fallback if fallback is not None else SerializerPayloads()
        self._given = (registry is not None, fallback is not None)
        self.context_factory = context_factory
        self.context_key = context_key
        self.channel_of = channel_of
        self.version = version
        self.stats = PayloadStats()
        self._cache_size = cache_size
        self._cache: OrderedDict[str, PreparedQuery | _Refusal] = OrderedDict()
        self._registry_size = len(self.registry)
        self._info = SchemaInfo.of(_load_schema(schema))
        # Without a registry of its own, the events are checked once the kit binds its own
        # (it may hold host events the default registry lacks).
        self._events = None if events is None else list(events)
        if self._events is not None and registry is not None:
            self.check_events(self._events)

    def bind(self, registry: EventRegistry, fallback: PayloadBuilder) -> None:
        """Adopt the kit's registry and serializers (``WebhookKit(payloads=...)`` calls this),
        unless this builder was given its own; a different registry is refused."""
        registry_given, fallback_given = self._given
        if registry_given and self.registry is not registry:
            raise ConfigurationError(
                "payloads: the GraphQLPayloads was built with another EventRegistry than the "
                "kit's; pass the same registry to both, or none to the builder",
                field="payloads",
            )
        if not registry_given and self.registry is not registry:
            self.registry = registry
            self._registry_size = len(registry)
            self._cache.clear()
        if not fallback_given:
            self.fallback = fallback
        if self._events is not None and not registry_given:
            self.check_events(self._events)
        self._given = (True, True)

    # -- schema ------------------------------------------------------------------------------
    @property
    def schema(self) -> GraphQLSchema:
        return self._info.schema

    @schema.setter
    def schema(self, schema: GraphQLSchema | str) -> None:
        """Swap the schema; every cached query is dropped and validated again on next use."""
        self._info = SchemaInfo.of(_load_schema(schema))
        self._cache.clear()

    @property
    def served_events(self) -> frozenset[str]:
        """Wire values of the registry's events whose type the schema defines."""
        return frozenset(
            e.value for e in self.registry if e.subscription_type in self._info.event_types
        )

    def missing_events(self, events: Iterable[str | EventType]) -> list[EventType]:
        """Those of ``events`` with no object type implementing ``Event`` in the schema."""
        wanted = [self.registry.get(e, field="events") for e in events]
        return [e for e in wanted if e.subscription_type not in self._info.event_types]

    def check_events(self, events: Iterable[str | EventType]) -> None:
        """Raise ConfigurationError naming every event of ``events`` the schema cannot serve."""
        missing = self.missing_events(events)
        if missing:
            names = ", ".join(
                f"{e.name} (type {e.subscription_type})"
                if e.subscription_type
                else f"{e.name} (no subscription type)"
                for e in missing
            )
            raise ConfigurationError(
                f"schema: {len(missing)} event(s) have no type implementing "
                f"{self._info.event_interface.name}: {names}",
                field="schema",
            )

    # -- queries -------------------------------------------------------------------------------
    def prepare(self, query: str) -> PreparedQuery:
        """Parse, validate and analyse ``query`` once; later calls hit the cache."""
        if len(self.registry) != self._registry_size:
            # Events registered since: inferred events (and refusals) may differ now.
            self._registry_size = len(self.registry)
            self._cache.clear()
        entry = self._cache.get(query)
        if entry is not None:
            self.stats.cache_hits += 1
            self._cache.move_to_end(query)
            if isinstance(entry, _Refusal):
                raise entry.error()
            return entry
        self.stats.cache_misses += 1
        try:
            prepared = self._prepare_uncached(query)
        except InvalidQueryError as exc:
            self._remember(query, _Refusal(exc.code, exc.message, exc.line, exc.column))
            raise
        self._remember(query, prepared)
        return prepared

    def _prepare_uncached(self, query: str) -> PreparedQuery:
        self.stats.parses += 1
        document = parse_query(query)
        self.stats.validations += 1
        validate_document(self._info.schema, document)
        return analyse(query, document, self._info, self.registry)

    def _remember(self, query: str, entry: PreparedQuery | _Refusal) -> None:
        self._cache[query] = entry
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def prepare_query(self, query: str, registry: EventRegistry) -> frozenset[str]:
        """Validate at webhook create/update (InvalidQueryError if refused); inferred events."""
        prepared = self.prepare(query)
        if registry is self.registry:
            return prepared.events
        return analyse(query, prepared.document, self._info, registry).events

    # -- building ------------------------------------------------------------------------------
    async def build(self, request: PayloadRequest) -> list[PayloadGroup]:
        """Legacy webhooks through ``fallback``; each distinct (query, context) executed once."""
        legacy = [t for t in request.targets if not t[0].subscription_query]
        queried = [t for t in request.targets if t[0].subscription_query]
        groups: list[PayloadGroup] = []
        if legacy:
            groups += await self.fallback.build(dataclasses.replace(request, targets=legacy))
        if queried:
            groups += await self._build_queried(request, queried)
        return groups

    def build_sync(
        self, request: PayloadRequest, finish: Finish = finish_here
    ) -> list[PayloadGroup]:
        """:meth:`build` in the calling thread, for sync hosts: queries execute here when
        their resolvers (and ``context_factory``) are sync, as graphql-core then returns the
        result at once; anything async they return is handed to ``finish``."""
        legacy = [t for t in request.targets if not t[0].subscription_query]
        queried = [t for t in request.targets if t[0].subscription_query]
        groups: list[PayloadGroup] = []
        if legacy:
            legacy_request = dataclasses.replace(request, targets=legacy)
            groups += build_blocking(self.fallback, legacy_request, finish)
        if queried:
            plan = self._plan(request, queried)
            keys = list(plan.runs)
            outcomes = [
                self._run_sync(plan.valid[k[0]], request, plan.runs[k][0][1], finish) for k in keys
            ]
            groups += self._groups(plan, keys, outcomes)
        return groups

    async def _build_queried(
        self, request: PayloadRequest, targets: Sequence[tuple[Webhook, App]]
    ) -> list[PayloadGroup]:
        plan = self._plan(request, targets)
        keys = list(plan.runs)
        outcomes = await asyncio.gather(
            *(self._run(plan.valid[k[0]], request, plan.runs[k][0][1]) for k in keys),
            return_exceptions=True,
        )
        return self._groups(plan, keys, outcomes)

    def _plan(self, request: PayloadRequest, targets: Sequence[tuple[Webhook, App]]) -> _Plan:
        plan = _Plan()
        skipped = plan.skipped

        def skip(reason: str, webhooks: Iterable[Webhook], counter: str) -> None:
            found = skipped.setdefault(reason, [])
            before = len(found)
            found.extend(webhooks)
            setattr(self.stats, counter, getattr(self.stats, counter) + len(found) - before)

        event = request.event
        if event.subscription_type not in self._info.event_types:
            skip(
                f"the schema has no type for {event.name} "
                f"({event.subscription_type or 'no subscription type'})",
                (w for w, _ in targets),
                "skipped_other",
            )
            return plan

        prepared: dict[str, PreparedQuery | InvalidQueryError] = {}
        valid = plan.valid
        runs = plan.runs
        channel: str | None = None
        channel_known = False
        for webhook, app in targets:
            text = webhook.subscription_query or ""
            query = prepared.get(text)
            if query is None:
                try:
                    query = self.prepare(text)
                except InvalidQueryError as exc:
                    query = exc
                else:
                    valid[text] = query
                prepared[text] = query
            if isinstance(query, InvalidQueryError):
                skip(f"stored subscription query is invalid: {query}", [webhook], "skipped_other")
                continue
            if query.channels:
                if not channel_known:
                    channel, channel_known = self.channel_of(request.subject), True
                if channel not in query.channels:
                    skip(
                        f"channel filter: subject's channel {channel!r} is not listed",
                        [webhook],
                        "skipped_channel",
                    )
                    continue
            runs.setdefault((text, self.context_key(app, query)), []).append((webhook, app))
        return plan

    def _groups(
        self,
        plan: _Plan,
        keys: Sequence[tuple[str, Hashable]],
        outcomes: Sequence[tuple[bytes | None, str, str] | BaseException],
    ) -> list[PayloadGroup]:
        by_body: dict[bytes, list[Webhook]] = {}
        for key, outcome in zip(keys, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                raise outcome
            body, reason, counter = outcome
            webhooks = [w for w, _ in plan.runs[key]]
            if body is None:
                found = plan.skipped.setdefault(reason, [])
                found.extend(webhooks)
                setattr(self.stats, counter, getattr(self.stats, counter) + len(webhooks))
            else:
                by_body.setdefault(body, []).extend(webhooks)
        groups = [PayloadGroup(body=body, webhooks=tuple(ws)) for body, ws in by_body.items()]
        return groups + self._skip_groups(plan.skipped)

    @staticmethod
    def _skip_groups(skipped: Mapping[str, list[Webhook]]) -> list[PayloadGroup]:
        return [
            PayloadGroup(body=None, webhooks=tuple(ws), reason=reason)
            for reason, ws in skipped.items()
        ]

    async def _run(
        self, query: PreparedQuery, request: PayloadRequest, app: App
    ) -> tuple[bytes | None, str, str]:
        """Execute ``query`` once as ``app``: the body, or None with the reason and the
        ``stats`` counter of the skip."""
        context: Any = app
        if self.context_factory is not None:
            context = self.context_factory(app)
            if inspect.isawaitable(context):
                context = await context
        outcome = self._execute(query, request, app, context)
        result = outcome if isinstance(outcome, ExecutionResult) else await outcome
        return self._body(query, request.event, result)

    def _run_sync(
        self, query: PreparedQuery, request: PayloadRequest, app: App, finish: Finish
    ) -> tuple[bytes | None, str, str]:
        """:meth:`_run` in the calling thread; async parts are handed to ``finish``."""
        context: Any = app
        if self.context_factory is not None:
            context = self.context_factory(app)
            if inspect.isawaitable(context):
                context = finish(context)
        outcome = self._execute(query, request, app, context)
        result = outcome if isinstance(outcome, ExecutionResult) else finish(outcome)
        return self._body(query, request.event, result)

    def _execute(
        self, query: PreparedQuery, request: PayloadRequest, app: App, context: Any
    ) -> AwaitableOrValue[ExecutionResult]:
        root = EventRoot(
            event=request.event,
            subject=request.subject,
            issued_at=request.issued_at,
            version=self.version,
            issuing_principal=request.requestor,
            recipient=app,
        )
        self.stats.executions += 1
        return execute(
            self._info.schema,
            query.document,
            root_value=root,
            context_value=context,
            operation_name=query.operation_name,
            field_resolver=_resolve_field,
            type_resolver=_resolve_type,
        )

    def _body(
        self, query: PreparedQuery, event: EventType, result: ExecutionResult
    ) -> tuple[bytes | None, str, str]:
        data: dict[str, Any] = result.data or {}
        value = data.get(query.response_key)
        # Saleor sends the object under ``event`` as is, anything else wrapped in ``data``.
        body: dict[str, Any]
        if query.response_key == EVENT_FIELD:
            body = dict(value) if value else {}
        else:
            body = {"data": dict(data)} if value else {}
        if result.errors:
            self.stats.field_errors += 1
            body["errors"] = [_format_error(e) for e in result.errors]
            log.warning(
                "subscription query for %s gave %d field error(s), first: %s",
                event.value,
                len(result.errors),
                result.errors[0].message,
            )
        if not body:
            reason = f"empty result: the query selects nothing for {event.name}"
            return None, reason, "skipped_empty"
        try:
            return encode_json(body, where="subscription payload"), "", ""
        except PayloadError as exc:
            log.error("subscription payload for %s not sent: %s", event.value, exc)
            return None, str(exc), "skipped_other"

    # -- dry run ---------------------------------------------------------------------------------
    async def dry_run(
        self,
        query: str,
        *,
        subject: Any = None,
        event: str | EventType | None = None,
        app: App | None = None,
        requestor: Any = None,
        issued_at: datetime | None = None,
    ) -> bytes | None:
        """The body a webhook with ``query`` would get, or None for no delivery; nothing is
        stored or sent (Saleor's ``webhookDryRun``).

        ``event`` defaults to the query's one inferred event; ``app`` (the recipient) to an
        app holding every permission of the registry.
        """
        prepared = self.prepare(query)
        if event is None:
            if len(prepared.events) != 1:
                raise ConfigurationError(
                    f"event: the query infers {sorted(e.upper() for e in prepared.events)}; "
                    "pass event=... to choose one",
                    field="event",
                )
            event_type = self.registry.get(next(iter(prepared.events)))
        else:
            event_type = self.registry.get(event)
        receiver = app or App(id="dry-run", name="dry run", permissions=self.registry.permissions)
        webhook = Webhook(
            id="dry-run",
            app_id=receiver.id,
            target_url="dry-run:",
            subscription_query=query,
            query_events=prepared.events,
        )
        request = PayloadRequest(
            event=event_type,
            subject=subject,
            payload=None,
            targets=[(webhook, receiver)],
            issued_at=issued_at or datetime.now(UTC),
            requestor=requestor,
        )
        groups = await self._build_queried(request, request.targets)
        return next((g.body for g in groups if g.body is not None), None)

    def __repr__(self) -> str:
        return (
            f"GraphQLPayloads(events={len(self._info.event_types)} types, "
            f"cached={len(self._cache)}/{self._cache_size})"
        )
