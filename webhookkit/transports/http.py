"""HTTP(S) delivery: one connection pool, Saleor's headers in Saleor's order.

Requests go through the transport's own HTTP/1.1 client (:mod:`._http1`): a delivery is one
POST of a known body, and aiohttp's ``ClientSession.post`` costs several times more CPU per
request than the whole rest of the delivery pipeline. Hardened for URLs written by apps: the
SSRF guard refuses internal addresses and connects only to the addresses it checked, TLS is
verified, redirects are never followed, and every attempt runs under a connect and a total
timeout.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from .._sanitize import HEADER_LIMIT, sanitize_headers, sanitize_text
from .._secret import REDACTED, SENSITIVE_HEADERS, redact_url
from ..exceptions import ConfigurationError, TransportError
from ._http1 import OWNED_HEADERS, ConnectionPool, Target, transport_error
from ._limits import check_limit, too_large
from ._ssrf import AddressPolicy, GuardedResolver, IPAddress, IPNetwork
from .base import OutboundMessage, Timeouts, Transport, TransportResult

__all__ = [
    "DEFAULT_USER_AGENT",
    "HTTPResponse",
    "HTTPTransport",
    "check_delivery_id_header",
    "saleor_headers",
]

DEFAULT_USER_AGENT = "Saleor/3.24 webhookkit/0.1"
_READ_LIMIT = 4 * 1024 + 4  # enough bytes for 1,025 characters of any UTF-8 text
_EXCERPT_LIMIT = 1024  # Saleor keeps 1,024 characters of the answer
_CACHE_SIZE = 4096

PathLike = str | os.PathLike[str]
_TOKEN_RE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,256}")  # an HTTP field name (RFC 9110)


def check_delivery_id_header(name: str | None, *, field: str = "delivery_id_header") -> str | None:
    """``name`` if it can carry the delivery id: an HTTP field name that is none of Saleor's
    own headers (``Content-Type``, ``Saleor-*``, ``X-Saleor-*``)."""
    if name is None:
        return None
    if not isinstance(name, str) or not _TOKEN_RE.fullmatch(name):
        raise ConfigurationError(
            f"{field}: {name!r} is not an HTTP header name (letters, digits, '-'...)",
            field=field,
        )
    lower = name.lower()
    if lower == "content-type" or lower.startswith(("saleor-", "x-saleor-")):
        raise ConfigurationError(
            f"{field}: {name!r} would shadow one of Saleor's own headers", field=field
        )
    if lower == "host" or lower in OWNED_HEADERS:
        raise ConfigurationError(f"{field}: {name!r} is set by the HTTP client itself", field=field)
    return name


def saleor_headers(
    message: OutboundMessage, delivery_id_header: str | None = None
) -> list[tuple[str, str]]:
    """Saleor's headers in Saleor's order, then custom headers, which override on collision.

    With a delivery id header (the message's, else ``delivery_id_header``) the delivery id
    follows the signing profile's headers; without one the headers are Saleor's exactly.
    """
    headers: list[tuple[str, str]] = [("Content-Type", "application/json")]
    headers += [("X-Saleor-Event", message.event), ("X-Saleor-Domain", message.domain)]
    if message.signature is not None:
        headers.append(("X-Saleor-Signature", message.signature))
    headers += [("Saleor-Event", message.event), ("Saleor-Domain", message.domain)]
    if message.signature is not None:
        headers.append(("Saleor-Signature", message.signature))
    headers.append(("Saleor-Api-Url", message.api_url))
    headers += message.signature_headers
    headers += message.trace_headers
    id_header = message.delivery_id_header or delivery_id_header
    if id_header and message.delivery_id:
        headers.append((id_header, message.delivery_id))
    if not message.custom_headers:
        return headers
    position = {name.lower(): i for i, (name, _) in enumerate(headers)}
    for key, value in message.custom_headers:
        lower = key.lower()
        if lower == "content-type":  # never overridable; validation refuses it anyway
            continue
        if lower in position:
            headers[position[lower]] = (key, value)
        else:
            position[lower] = len(headers)
            headers.append((key, value))
    return headers


def record_headers(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Headers fit for an attempt record: secrets and signatures replaced by ``[secret]``,
    NUL, control characters and undecodable bytes replaced (see :mod:`webhookkit._sanitize`).

    Beyond :data:`SENSITIVE_HEADERS` this also hides every ``Authorization*`` custom header
    (Saleor accepts any key starting with ``authorization``).
    """
    pairs = headers if type(headers) is tuple else tuple(headers)
    # sanitize_headers' own fast path, checked in one join: short printable ASCII text needs
    # nothing; anything else goes through it.
    try:
        joined = "".join([key + value for key, value in pairs])
    except TypeError:
        pairs = sanitize_headers(pairs)
    else:
        if len(joined) > HEADER_LIMIT or not (joined.isascii() and joined.isprintable()):
            pairs = sanitize_headers(pairs)
    secret = _SECRET_NAMES
    hidden = False
    for key, _ in pairs:
        found = secret.get(key)
        if found is None:
            found = _is_secret(key)
        if found:
            hidden = True
            break
    if not hidden:
        return pairs
    out = []
    for key, value in pairs:
        found = secret.get(key)
        if found is None:
            found = _is_secret(key)
        out.append((key, REDACTED) if found else (key, value))
    return tuple(out)


#: Header name -> whether its value is hidden in records (names repeat: decided once each).
_SECRET_NAMES: dict[str, bool] = {}


def _is_secret(name: str) -> bool:
    lower = name.lower()
    hidden = lower in SENSITIVE_HEADERS or lower.startswith("authorization")
    if len(_SECRET_NAMES) >= _CACHE_SIZE:
        _SECRET_NAMES.clear()
    _SECRET_NAMES[name] = hidden
    return hidden


@dataclass(frozen=True, slots=True)
class HTTPResponse:
    """An answer to :meth:`HTTPTransport.request`: status, headers (sanitised text) and body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = field(repr=False)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        lower = name.lower()
        return next((v for k, v in self.headers if k.lower() == lower), None)


def build_ssl_context(
    *,
    ca_bundle: PathLike | None = None,
    client_cert: PathLike | tuple[PathLike, PathLike] | None = None,
) -> ssl.SSLContext:
    """A verifying client context: ``ca_bundle`` replaces the system CAs when given;
    ``client_cert`` (one PEM with both, or ``(cert, key)``) is presented for mTLS."""
    try:
        context = ssl.create_default_context(
            cafile=os.fspath(ca_bundle) if ca_bundle is not None else None
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"ca_bundle: cannot load CA certificates from {os.fspath(ca_bundle or '')!r}: {exc}",
            field="ca_bundle",
        ) from None
    if client_cert is not None:
        cert, key = client_cert if isinstance(client_cert, tuple) else (client_cert, None)
        try:
            context.load_cert_chain(os.fspath(cert), os.fspath(key) if key is not None else None)
        except (OSError, ssl.SSLError) as exc:
            # The message names the file only: a key's content must never be echoed.
            raise ConfigurationError(
                f"client_cert: cannot load the certificate/key from {os.fspath(cert)!r}: "
                f"{type(exc).__name__}",
                field="client_cert",
            ) from None
    return context


class HTTPTransport(Transport):
    """POSTs bodies over HTTP/1.1. Redirects are never followed; 2xx is success.

    One connection pool (connections kept alive for ``keepalive_timeout`` seconds) per
    transport; ``limit`` caps connections in all and ``limit_per_host`` per host (0: no cap,
    the default: the scheduler's ``concurrency`` and per-webhook limits already bound the
    sends, and a per-host cap would let one hanging webhook starve the other webhooks of its
    host). The SSRF guard refuses
    loopback, private, link-local, multicast, reserved and unspecified addresses unless
    ``allow_addresses`` lists them (``["127.0.0.1/32"]`` for tests); ``ssrf_guard=False``
    turns it off. ``resolver``
    does the DNS lookups behind the guard (default: ``getaddrinfo`` in a thread).
    TLS is verified against the system CAs, or ``ca_bundle``; ``client_cert`` enables mTLS;
    ``ssl_context`` replaces all three.
    ``max_body_bytes`` refuses larger bodies (:class:`PayloadTooLargeError`, not retried;
    default: no limit). ``delivery_id_header`` (e.g. ``"X-Webhookkit-Delivery-Id"``) adds
    that header with the delivery id, the same on every attempt, for receivers that
    deduplicate; by default the headers are Saleor's exactly.
    """

    schemes = frozenset({"http", "https"})

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        ca_bundle: PathLike | None = None,
        client_cert: PathLike | tuple[PathLike, PathLike] | None = None,
        allow_addresses: Iterable[str | IPNetwork | IPAddress] = (),
        ssrf_guard: bool = True,
        resolver: AbstractResolver | None = None,
        limit: int = 0,
        limit_per_host: int = 0,
        keepalive_timeout: float = 15.0,
        user_agent: str = DEFAULT_USER_AGENT,
        max_body_bytes: int | None = None,
        delivery_id_header: str | None = None,
    ) -> None:
        self.max_body_bytes = (
            None if max_body_bytes is None else check_limit(max_body_bytes, "max_body_bytes")
        )
        self.delivery_id_header = check_delivery_id_header(delivery_id_header)
        if ssl_context is not None and (ca_bundle is not None or client_cert is not None):
            raise ConfigurationError(
                "ssl_context: give either ssl_context or ca_bundle/client_cert, not both",
                field="ssl_context",
            )
        if limit < 0 or limit_per_host < 0:
            raise ConfigurationError("limit: connection limits must be >= 0", field="limit")
        if not isinstance(user_agent, str) or any(c in user_agent for c in "\r\n\x00"):
            raise ConfigurationError(
                "user_agent: expected a string without CR, LF or NUL", field="user_agent"
            )
        self._ssl: ssl.SSLContext | None = None
        if ssl_context is not None:
            self._ssl = ssl_context
        elif ca_bundle is not None or client_cert is not None:
            self._ssl = build_ssl_context(ca_bundle=ca_bundle, client_cert=client_cert)
        self.policy = AddressPolicy.build(allow_addresses, enabled=ssrf_guard)
        self._inner_resolver = resolver
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._keepalive = keepalive_timeout
        self._user_agent = user_agent
        self._pool: ConnectionPool | None = None
        self._resolver: AbstractResolver | None = None
        # Per-URL work done once: the parsed URL whose host passed the literal check, with
        # the parts of every request to it pre-formatted (a small, bounded cache).
        self._targets: dict[str, Target] = {}

    def _ssl_context(self) -> ssl.SSLContext:
        """The verifying context, the system's default one built on first HTTPS use."""
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    def _get_pool(self) -> ConnectionPool:
        pool = self._pool
        loop = asyncio.get_running_loop()
        if pool is None or pool.closed or pool.loop is not loop:
            if pool is not None and pool.loop is not loop:
                self._resolver = None  # bound to the old loop (a threaded resolver is)
            if self._resolver is None:
                self._resolver = (
                    GuardedResolver(self.policy, self._inner_resolver)
                    if self.policy.enabled
                    else self._inner_resolver or ThreadedResolver()
                )
            pool = self._pool = ConnectionPool(
                resolver=self._resolver,
                ssl_context=self._ssl_context,
                limit=self._limit,
                limit_per_host=self._limit_per_host,
                keepalive_timeout=self._keepalive,
            )
        return pool

    def _target(self, raw: str) -> Target:
        """The URL's request parts, its host checked if it is an address literal (cached)."""
        target = self._targets.get(raw)
        if target is None:
            url = URL(raw)
            if not url.raw_host:
                raise TransportError(f"invalid URL {redact_url(raw)}: no host", retryable=False)
            self.policy.check_literal(url.raw_host)
            target = Target(url, self._user_agent)
            if len(self._targets) >= _CACHE_SIZE:
                self._targets.clear()
            self._targets[raw] = target
        return target

    async def send(self, message: OutboundMessage) -> TransportResult:
        body = message.body
        limit = self.max_body_bytes
        if limit is not None and len(body) > limit:
            raise too_large(self, message.url, len(body), limit)
        headers = saleor_headers(message, self.delivery_id_header)
        try:
            target = self._target(message.url)
            head = target.post(headers, len(body))
            # Sync webhooks need the whole answer (up to body_limit); async ones an excerpt.
            answer = await self._get_pool().send(
                target,
                head + body,
                cap=max(_READ_LIMIT, message.body_limit),
                head_only=False,
                timeouts=message.timeouts,
            )
        except Exception as exc:
            error = transport_error(exc, message.target, message.timeouts)
            if error is exc:
                raise
            raise error from exc
        raw = answer.body
        status = answer.status
        return TransportResult(
            ok=200 <= status < 300,
            status_code=status,
            response_excerpt=sanitize_text(
                _decode(raw[:_READ_LIMIT], answer.charset), _EXCERPT_LIMIT
            ),
            # What webhookkit sent (as Saleor records it); the client adds Host, User-Agent,
            # Accept, Accept-Encoding and Content-Length.
            request_headers=record_headers(headers),
            response_headers=record_headers(answer.headers),
            # Saleor: 5xx is retried; 3xx (never followed) and 4xx are final.
            retryable=status >= 500,
            body=raw if message.body_limit else None,
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Iterable[tuple[str, str]] = (),
        timeouts: Timeouts | None = None,
        limit: int = 1_048_576,
    ) -> HTTPResponse:
        """Any request through this transport's connection pool: the same SSRF guard, TLS
        verification, no redirects and timeouts as deliveries (for app installation: manifest
        fetch, token exchange). The answer's body is read whole, up to ``limit`` bytes; a
        larger one raises a :class:`TransportError`. Any status is returned, not raised.
        """
        timeouts = timeouts if timeouts is not None else Timeouts()
        if not isinstance(timeouts, Timeouts):
            raise ConfigurationError("timeouts: expected a Timeouts or None", field="timeouts")
        if not isinstance(url, str):
            raise ConfigurationError("url: expected a string", field="url")
        target_name = redact_url(url)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ConfigurationError("limit: must be an integer >= 0", field="limit")
        if not isinstance(method, str) or not _METHOD.fullmatch(method):
            raise ConfigurationError(
                "method: expected an HTTP method such as 'GET'", field="method"
            )
        if body is not None and not isinstance(body, bytes):
            raise ConfigurationError("body: expected bytes or None", field="body")
        pairs = _request_headers(headers)
        if any(name.lower() in OWNED_HEADERS for name, _ in pairs):
            raise ConfigurationError(
                "headers: Content-Length, Transfer-Encoding, Connection and the like are set "
                "by the HTTP client",
                field="headers",
            )
        # aiohttp's rules, kept: a body or a method that carries one gets a Content-Length
        # (and application/octet-stream unless a Content-Type is given).
        carries = body is not None or method not in _NO_BODY_METHODS
        length = len(body) if body is not None else (0 if carries else None)
        try:
            target = self._target(url)
            head = target.head(
                method,
                pairs,
                length,
                default_content_type=body is not None or method in _BODY_METHODS,
            )
            answer = await self._get_pool().send(
                target,
                head + body if body else head,
                cap=limit + 1,
                head_only=method == "HEAD",
                timeouts=timeouts,
            )
        except Exception as exc:
            error = transport_error(exc, target_name, timeouts)
            if error is exc:
                raise
            raise error from exc
        if len(answer.body) > limit:
            raise TransportError(
                f"answer from {target_name} is larger than {limit} bytes", retryable=False
            )
        return HTTPResponse(
            status=answer.status, headers=sanitize_headers(answer.headers), body=answer.body
        )

    async def aclose(self) -> None:
        """Close every connection (and the resolver); the next send opens new ones."""
        pool, self._pool = self._pool, None
        if pool is not None and not pool.closed:
            await pool.aclose()
        if self._resolver is not None:
            await self._resolver.close()
            self._resolver = None

    def __repr__(self) -> str:
        return (
            f"HTTPTransport(limit={self._limit}, limit_per_host={self._limit_per_host}, "
            f"ssrf_guard={self.policy.enabled}, allow={[str(n) for n in self.policy.allow]})"
        )


_METHOD = re.compile(r"[A-Z]{1,20}")
# aiohttp's method sets: no Content-Length without a body; a default Content-Type with one.
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "CONNECT"})
_BODY_METHODS = frozenset({"PATCH", "POST", "PUT"})
# Header names are RFC 9110 tokens; values printable ASCII, space and tab (no CR/LF).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}")
_HEADER_VALUE = re.compile(r"[\x20-\x7e\t]{0,8192}")


def _request_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` as pairs fit for the wire, else :class:`ConfigurationError`."""
    if isinstance(headers, str | bytes) or not isinstance(headers, Iterable):
        raise ConfigurationError("headers: expected (name, value) pairs", field="headers")
    pairs: list[tuple[str, str]] = []
    for item in headers:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise ConfigurationError("headers: expected (name, value) pairs", field="headers")
        name, value = item
        if not (isinstance(name, str) and _HEADER_NAME.fullmatch(name)):
            raise ConfigurationError("headers: a header name is not a token", field="headers")
        if not (isinstance(value, str) and _HEADER_VALUE.fullmatch(value)):
            raise ConfigurationError(
                f"headers: the value of {name!r} is not printable ASCII", field="headers"
            )
        pairs.append((name, value))
    return pairs


async def read_up_to(content: aiohttp.StreamReader, size: int) -> bytes:
    """Up to ``size`` bytes of a body (``read(n)`` alone may return a single chunk)."""
    data = bytearray()
    while len(data) < size:
        chunk = await content.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _decode(raw: bytes, charset: str | None) -> str:
    """The answer as text in its declared charset; UTF-8 when none or an unknown one."""
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


#: Kept for callers of the old name: the typed error for a failure talking to ``target``.
_transport_error = transport_error
