"""HTTP(S) delivery with aiohttp: one pooled session, Saleor's headers in Saleor's order.

Hardened for URLs written by apps: the SSRF guard refuses internal addresses and connects
only to the addresses it checked, TLS is verified, redirects are never followed, and every
attempt runs under a connect and a total timeout.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from .._sanitize import sanitize_headers, sanitize_text
from .._secret import REDACTED, SENSITIVE_HEADERS, redact_url
from ..exceptions import (
    ConfigurationError,
    ConnectError,
    DeliveryTimeoutError,
    TLSError,
    TransportError,
)
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
#: Larger bodies go to aiohttp as a stream (it warns about, and blocks on, big raw bytes).
_INLINE_BODY = 1024 * 1024

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
    out = []
    for key, value in sanitize_headers(headers):
        lower = key.lower()
        if lower in SENSITIVE_HEADERS or lower.startswith("authorization"):
            value = REDACTED
        out.append((key, value))
    return tuple(out)


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
    """POSTs bodies with aiohttp. Redirects are never followed; 2xx is success.

    One session (one connection pool, kept alive) per transport; ``limit`` caps connections
    in all and ``limit_per_host`` per host (0: no cap, the default: the scheduler's
    ``concurrency`` and per-webhook limits already bound the sends, and a per-host cap would
    let one hanging webhook starve the other webhooks of its host). The SSRF guard refuses
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
        self._ssl: ssl.SSLContext | bool = True
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
        self._session: aiohttp.ClientSession | None = None
        self._resolver: AbstractResolver | None = None
        # Per-URL work done once: the parsed URL whose host passed the literal check, and
        # the aiohttp timeout per Timeouts value (both small, bounded caches).
        self._urls: dict[str, URL] = {}
        self._timeouts: dict[Timeouts, aiohttp.ClientTimeout] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._resolver = (
                GuardedResolver(self.policy, self._inner_resolver)
                if self.policy.enabled
                else self._inner_resolver
            )
            connector = aiohttp.TCPConnector(
                limit=self._limit,
                limit_per_host=self._limit_per_host,
                keepalive_timeout=self._keepalive,
                ssl=self._ssl,
                resolver=self._resolver,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self._user_agent},
                auto_decompress=True,
                trust_env=False,  # a proxy from the environment would bypass the SSRF guard
            )
        return self._session

    def _url(self, raw: str) -> URL:
        """The parsed URL, its host checked if it is an address literal (cached per URL)."""
        url = self._urls.get(raw)
        if url is None:
            url = URL(raw)
            if not url.raw_host:
                raise TransportError(f"invalid URL {redact_url(raw)}: no host", retryable=False)
            self.policy.check_literal(url.raw_host)
            if len(self._urls) >= _CACHE_SIZE:
                self._urls.clear()
            self._urls[raw] = url
        return url

    def _timeout(self, timeouts: Timeouts) -> aiohttp.ClientTimeout:
        found = self._timeouts.get(timeouts)
        if found is None:
            found = aiohttp.ClientTimeout(total=timeouts.total, sock_connect=timeouts.connect)
            if len(self._timeouts) >= _CACHE_SIZE:
                self._timeouts.clear()
            self._timeouts[timeouts] = found
        return found

    async def send(self, message: OutboundMessage) -> TransportResult:
        limit = self.max_body_bytes
        if limit is not None and len(message.body) > limit:
            raise too_large(self, message.url, len(message.body), limit)
        headers = saleor_headers(message, self.delivery_id_header)
        timeout = self._timeout(message.timeouts)
        try:
            url = self._url(message.url)
            async with self._get_session().post(
                url,
                data=message.body
                if len(message.body) <= _INLINE_BODY
                else io.BytesIO(message.body),
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                # Sync webhooks need the whole answer (up to body_limit); async ones an excerpt.
                raw = await read_up_to(response.content, max(_READ_LIMIT, message.body_limit))
                text = _decode(raw[:_READ_LIMIT], response.charset)
                status = response.status
                return TransportResult(
                    ok=200 <= status < 300,
                    status_code=status,
                    response_excerpt=sanitize_text(text, _EXCERPT_LIMIT),
                    # What webhookkit sent (as Saleor records it); aiohttp adds Host,
                    # Accept, Accept-Encoding, Content-Length and the User-Agent.
                    request_headers=record_headers(headers),
                    response_headers=record_headers(response.headers.items()),
                    # Saleor: 5xx is retried; 3xx (never followed) and 4xx are final.
                    retryable=status >= 500,
                    body=raw if message.body_limit else None,
                )
        except Exception as exc:
            error = _transport_error(exc, message.target, message.timeouts)
            if error is exc:
                raise
            raise error from exc

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
        """Any request through this transport's session: the same SSRF guard, TLS
        verification, no redirects and timeouts as deliveries (for app installation: manifest
        fetch, token exchange). The answer's body is read whole, up to ``limit`` bytes; a
        larger one raises a :class:`TransportError`. Any status is returned, not raised.
        """
        timeouts = timeouts if timeouts is not None else Timeouts()
        if not isinstance(timeouts, Timeouts):
            raise ConfigurationError("timeouts: expected a Timeouts or None", field="timeouts")
        if not isinstance(url, str):
            raise ConfigurationError("url: expected a string", field="url")
        target = redact_url(url)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ConfigurationError("limit: must be an integer >= 0", field="limit")
        if not isinstance(method, str) or not _METHOD.fullmatch(method):
            raise ConfigurationError(
                "method: expected an HTTP method such as 'GET'", field="method"
            )
        if body is not None and not isinstance(body, bytes):
            raise ConfigurationError("body: expected bytes or None", field="body")
        pairs = _request_headers(headers)
        try:
            async with self._get_session().request(
                method,
                self._url(url),
                data=body,
                headers=pairs,
                timeout=self._timeout(timeouts),
                allow_redirects=False,
            ) as response:
                data = await read_up_to(response.content, limit + 1)
                if len(data) > limit:
                    raise TransportError(
                        f"answer from {target} is larger than {limit} bytes", retryable=False
                    )
                return HTTPResponse(
                    status=response.status,
                    headers=sanitize_headers(response.headers.items()),
                    body=data,
                )
        except Exception as exc:
            error = _transport_error(exc, target, timeouts)
            if error is exc:
                raise
            raise error from exc

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
            # Let the connector's transports finish closing before the loop goes away.
            await asyncio.sleep(0)
        self._session = None
        if self._resolver is not None:
            await self._resolver.close()
            self._resolver = None

    def __repr__(self) -> str:
        return (
            f"HTTPTransport(limit={self._limit}, limit_per_host={self._limit_per_host}, "
            f"ssrf_guard={self.policy.enabled}, allow={[str(n) for n in self.policy.allow]})"
        )


_METHOD = re.compile(r"[A-Z]{1,20}")
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


def _transport_error(exc: Exception, target: str, timeouts: Timeouts) -> Exception:
    """The typed error for what went wrong talking to ``target`` (others pass unchanged)."""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return DeliveryTimeoutError(
            f"timed out sending to {target} (budget {timeouts.total:g} s, "
            f"connect {timeouts.connect:g} s)"
        )
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        # Before ValueError: a certificate error is a ValueError too (ssl.CertificateError).
        return TLSError(f"TLS failed with {target}: {_describe(exc)}")
    if isinstance(exc, aiohttp.InvalidURL | ValueError):
        return TransportError(f"invalid URL {target}: {_describe(exc)}", retryable=False)
    if isinstance(exc, aiohttp.ClientConnectionError | OSError):
        return ConnectError(f"cannot connect to {target}: {_describe(exc)}")
    if isinstance(exc, aiohttp.ClientError):
        return TransportError(f"HTTP error for {target}: {_describe(exc)}")
    return exc


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
