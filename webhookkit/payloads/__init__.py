"""Payload building: the seam between a trigger and the bytes each webhook receives.

A :class:`PayloadBuilder` turns one trigger into groups of webhooks that share one body. The
default :class:`SerializerPayloads` uses the payload the caller passed or a serializer the host
registered per event; the GraphQL subscription resolver plugs in behind the same protocol.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as _dt
import decimal
import enum
import inspect
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..apps import App, Webhook
from ..events import EventRegistry, EventType
from ..exceptions import ConfigurationError, PayloadError

if TYPE_CHECKING:
    from .graphql import EventRoot, GraphQLPayloads, PayloadStats

__all__ = [
    "EventRoot",
    "Finish",
    "GraphQLPayloads",
    "PayloadBuilder",
    "PayloadGroup",
    "PayloadRequest",
    "PayloadStats",
    "Serializer",
    "SerializerPayloads",
    "build_blocking",
    "encode_json",
    "finish_here",
]

# The GraphQL builder imports graphql-core: load it on first use so ``import webhookkit``
# stays light for hosts without subscription queries.
_LAZY = frozenset({"EventRoot", "GraphQLPayloads", "PayloadStats"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import graphql

        return getattr(graphql, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


Serializer = Callable[[Any, EventType], Any | Awaitable[Any]]
#: How sync code finishes an awaitable it was handed (an async serializer or resolver): run it
#: to completion and return its result.
Finish = Callable[[Awaitable[Any]], Any]


def finish_here(awaitable: Awaitable[Any]) -> Any:
    """Run ``awaitable`` on a private event loop in this thread (which must have none)."""

    async def wait() -> Any:
        return await awaitable

    return asyncio.run(wait())


@dataclass(frozen=True, slots=True)
class PayloadRequest:
    """One trigger as the builder sees it: the event, its subject and the receiving webhooks."""

    event: EventType
    subject: Any
    payload: Any
    targets: Sequence[tuple[Webhook, App]]
    issued_at: _dt.datetime
    requestor: Any = None


@dataclass(frozen=True, slots=True)
class PayloadGroup:
    """Webhooks that receive the same ``body``; ``None`` means an empty result (no delivery),
    and ``reason`` says why."""

    body: bytes | None
    webhooks: tuple[Webhook, ...]
    reason: str = ""


@runtime_checkable
class PayloadBuilder(Protocol):
    async def build(self, request: PayloadRequest) -> list[PayloadGroup]:
        """Group the request's webhooks by the body each gets."""
        ...

    def prepare_query(self, query: str, registry: EventRegistry) -> frozenset[str]:
        """Validate a subscription query at webhook create/update; return inferred events."""
        ...


def build_blocking(
    builder: PayloadBuilder, request: PayloadRequest, finish: Finish = finish_here
) -> list[PayloadGroup]:
    """``builder``'s groups from sync code: its ``build_sync`` if it has one (serializers and
    GraphQL queries run in the calling thread), else its async ``build`` through ``finish``."""
    build_sync = getattr(builder, "build_sync", None)
    if callable(build_sync):
        groups: list[PayloadGroup] = build_sync(request, finish)
        return groups
    return list(finish(builder.build(request)))


def _default(obj: Any) -> Any:
    if isinstance(obj, _dt.datetime | _dt.date | _dt.time):
        return obj.isoformat()
    if isinstance(obj, decimal.Decimal | uuid.UUID):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def encode_json(obj: Any, *, where: str = "payload") -> bytes:
    """Compact UTF-8 JSON; datetimes, decimals, UUIDs, enums and dataclasses are converted.

    Anything that cannot become JSON (bytes that are not UTF-8 JSON, lone surrogates, NaN,
    circular or too deeply nested structures, objects whose conversion fails) raises
    :class:`PayloadError` naming ``where``.
    """
    if isinstance(obj, bytes | bytearray | memoryview):
        data = bytes(obj)
        try:
            json.loads(data)
        except RecursionError:
            raise PayloadError(f"{where}: JSON nested too deeply", field=where) from None
        except ValueError as exc:
            raise PayloadError(f"{where}: bytes are not valid JSON ({exc})", field=where) from None
        return data
    if isinstance(obj, str):
        try:
            data = obj.encode("utf-8")
        except UnicodeEncodeError:
            raise PayloadError(
                f"{where}: text holds lone surrogates, which are not UTF-8", field=where
            ) from None
        return encode_json(data, where=where)
    try:
        return json.dumps(
            obj, separators=(",", ":"), ensure_ascii=False, default=_default, allow_nan=False
        ).encode("utf-8")
    except RecursionError:
        raise PayloadError(f"{where}: nested too deeply to encode as JSON", field=where) from None
    except UnicodeEncodeError:
        raise PayloadError(
            f"{where}: a string holds lone surrogates, which are not UTF-8", field=where
        ) from None
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"{where}: cannot encode as JSON: {exc}", field=where) from None
    except Exception as exc:  # a conversion (isoformat, asdict...) of the caller's object failed
        raise PayloadError(
            f"{where}: cannot encode as JSON: {type(exc).__name__} while converting a value",
            field=where,
        ) from None


class SerializerPayloads:
    """Bodies from the caller's ``payload`` or from a serializer registered for the event."""

    def __init__(self, serializers: Mapping[str, Serializer] | None = None) -> None:
        self._serializers: dict[str, Serializer] = dict(serializers or {})
        self._fallback: Serializer | None = None

    def register(self, event: EventType | None, serializer: Serializer) -> None:
        """Serializer for ``event``; ``None`` sets the fallback used for every other event."""
        if event is None:
            self._fallback = serializer
        else:
            self._serializers[event.value] = serializer

    async def body_for(self, request: PayloadRequest) -> bytes:
        if request.payload is not None:
            return encode_json(request.payload)
        serializer = self._serializers.get(request.event.value, self._fallback)
        if serializer is None:
            raise PayloadError(
                f"payload: none given for {request.event.name} and no serializer registered; "
                "pass payload=... or register one with kit.register_serializer()",
                field="payload",
            )
        result = serializer(request.subject, request.event)
        if inspect.isawaitable(result):
            result = await result
        return encode_json(result, where=f"serializer for {request.event.name}")

    async def build(self, request: PayloadRequest) -> list[PayloadGroup]:
        if not request.targets:
            return []
        body = await self.body_for(request)
        return [PayloadGroup(body=body, webhooks=tuple(w for w, _ in request.targets))]

    def build_sync(
        self, request: PayloadRequest, finish: Finish = finish_here
    ) -> list[PayloadGroup]:
        """:meth:`build` in the calling thread; an async serializer's result goes to ``finish``."""
        if not request.targets:
            return []
        if request.payload is not None:
            body = encode_json(request.payload)
        else:
            body = finish(self.body_for(request))
        return [PayloadGroup(body=body, webhooks=tuple(w for w, _ in request.targets))]

    def prepare_query(self, query: str, registry: EventRegistry) -> frozenset[str]:
        raise ConfigurationError(
            "subscription_query: no GraphQL schema configured; pass schema=... to WebhookKit "
            "to use subscription queries",
            field="subscription_query",
        )
