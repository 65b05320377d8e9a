"""What a transport receives and returns, the base class, and the router by URL scheme."""

from __future__ import annotations

import abc
import importlib
import importlib.util
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlsplit

from .._secret import redact_url
from ..config import Timeouts
from ..exceptions import ConfigurationError, InvalidURLError

__all__ = ["OutboundMessage", "Timeouts", "Transport", "TransportResult", "TransportRouter"]


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One signed body on its way to one webhook's target."""

    url: str = field(repr=False)
    body: bytes = field(repr=False)
    event: str
    domain: str
    api_url: str
    signature: str | None = field(default=None, repr=False)
    custom_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: Headers a signing profile adds (Standard Webhooks' ``webhook-id``...), before custom ones.
    signature_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: Trace context for the receiver (W3C ``traceparent``), from the kit's instrumentation.
    trace_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: Key for ordered delivery on queues (SQS group id, Pub/Sub ordering key); None = default.
    ordering_key: str | None = None
    #: Read up to this many bytes of the answer into ``TransportResult.body`` (sync webhooks);
    #: 0 keeps only the 1,024-character excerpt.
    body_limit: int = 0
    delivery_id: str = ""
    #: Opt-in header carrying ``delivery_id`` (``"X-Webhookkit-Delivery-Id"``); None: the
    #: transport's default (``HTTPTransport(delivery_id_header=...)``), usually none.
    delivery_id_header: str | None = None
    webhook_id: str = ""
    timeouts: Timeouts = field(default_factory=Timeouts)

    @property
    def target(self) -> str:
        """The URL with any credentials redacted, fit for logs and records."""
        return redact_url(self.url)


@dataclass(frozen=True, slots=True)
class TransportResult:
    """What came back. ``status_code`` is None for transports without one (queues)."""

    ok: bool
    status_code: int | None = None
    response_excerpt: str = ""
    request_headers: tuple[tuple[str, str], ...] = ()
    response_headers: tuple[tuple[str, str], ...] = ()
    retryable: bool = False
    message_id: str | None = None
    #: The answer's bytes, when the message asked for them with ``body_limit``.
    body: bytes | None = field(default=None, repr=False)


class Transport(abc.ABC):
    """Sends messages for some URL schemes; owns its connections, released by ``aclose``.

    ``send`` returns a result for any answer the receiver gave (2xx or not) and raises a
    :class:`~webhookkit.exceptions.TransportError` when no answer could be had.
    """

    schemes: ClassVar[frozenset[str]] = frozenset()
    #: The largest body this transport takes, in bytes; None: no limit. Checked at trigger
    #: time by :func:`webhookkit.transports._limits.check_body_size`.
    max_body_bytes: int | None = None

    def validate_url(self, url: str) -> None:  # noqa: B027 - optional hook, empty by default
        """Raise :class:`InvalidURLError` if ``url`` is unusable; called at webhook creation."""

    @abc.abstractmethod
    async def send(self, message: OutboundMessage) -> TransportResult: ...

    async def aclose(self) -> None:  # noqa: B027 - transports without resources need nothing
        """Release connections and clients."""


#: Transports mounted on first use of their scheme, so ``import webhookkit`` and a kit that
#: never sends to a queue do not import aioboto3/botocore or gcloud: scheme -> (module, class,
#: the module its extra provides, the extra).
LAZY_TRANSPORTS: Mapping[str, tuple[str, str, str, str]] = {
    "awssqs": ("webhookkit.transports.sqs", "SQSTransport", "aioboto3", "sqs"),
    "gcpubsub": ("webhookkit.transports.pubsub", "PubSubTransport", "gcloud.aio.pubsub", "pubsub"),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


_ROUTE_CACHE = 10_000


class TransportRouter:
    """Picks the transport for a URL by its scheme; hosts mount their own schemes.

    Schemes of :data:`LAZY_TRANSPORTS` not mounted by the host get their default transport
    on first use, when its extra is installed.
    """

    def __init__(self, transports: Iterable[Transport] = (), *, lazy: bool = True) -> None:
        self._by_scheme: dict[str, Transport] = {}
        #: Transport per URL already routed (URLs repeat on every delivery of a webhook).
        self._by_url: dict[str, Transport] = {}
        self._lazy = lazy
        for transport in transports:
            self.mount(transport)

    def mount(self, transport: Transport, schemes: Iterable[str] | None = None) -> None:
        """Route ``schemes`` (default: ``transport.schemes``) to ``transport``."""
        if not isinstance(transport, Transport):
            raise ConfigurationError(
                f"transports: {type(transport).__name__} is not a webhookkit Transport",
                field="transports",
            )
        names = list(schemes if schemes is not None else transport.schemes)
        if not names:
            raise ConfigurationError(
                f"transports: {type(transport).__name__} declares no URL scheme",
                field="transports",
            )
        for scheme in names:
            self._by_scheme[scheme.lower()] = transport
        self._by_url.clear()

    @property
    def schemes(self) -> frozenset[str]:
        """Schemes with a transport now or on first use."""
        lazy = (
            {s for s, spec in LAZY_TRANSPORTS.items() if _installed(spec[2])}
            if self._lazy
            else set()
        )
        return frozenset(self._by_scheme) | lazy

    @property
    def mounted(self) -> Mapping[str, Transport]:
        return dict(self._by_scheme)

    def _mount_lazy(self, scheme: str, url: str) -> Transport | None:
        spec = LAZY_TRANSPORTS.get(scheme) if self._lazy else None
        if spec is None:
            return None
        module_name, class_name, needs, extra = spec
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise InvalidURLError(
                f"target_url: {scheme}:// needs the {extra!r} extra ({needs}): "
                f"pip install 'webhookkit[{extra}]' (in {redact_url(url)!r})",
                field="target_url",
            ) from None
        transport: Transport = getattr(module, class_name)()
        self.mount(transport, [scheme])
        return transport

    def for_url(self, url: str) -> Transport:
        found = self._by_url.get(url)
        if found is not None:
            return found
        scheme = urlsplit(url).scheme.lower()
        transport = self._by_scheme.get(scheme)
        if transport is None:
            transport = self._mount_lazy(scheme, url)
        if transport is None:
            raise InvalidURLError(
                f"target_url: no transport for scheme {scheme!r} in {redact_url(url)!r} "
                f"(registered: {sorted(self.schemes)})",
                field="target_url",
            )
        if len(self._by_url) >= _ROUTE_CACHE:
            self._by_url.clear()
        self._by_url[url] = transport
        return transport

    def validate(self, url: str) -> None:
        self.for_url(url).validate_url(url)

    async def aclose(self) -> None:
        seen: set[int] = set()
        for transport in self._by_scheme.values():
            if id(transport) not in seen:
                seen.add(id(transport))
                await transport.aclose()
