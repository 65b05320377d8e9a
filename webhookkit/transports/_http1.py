"""A small HTTP/1.1 client on asyncio protocols: what :class:`HTTPTransport` sends with.

A webhook delivery is one kind of request: a POST of a known ``bytes`` body to a URL, no
redirects, no cookies, no proxies, no environment. aiohttp's ``ClientSession.post`` pays for
everything it supports on every call (about 250 µs of CPU per request on a small machine);
this client does only what a delivery needs:

- a pool of kept-alive connections per ``(scheme, host, port)``, ``limit`` connections in all
  and ``limit_per_host`` per host (0: no cap) with a queue of waiters at the cap, idle
  connections closed after ``keepalive_timeout``;
- DNS through the transport's resolver (the SSRF guard's :class:`GuardedResolver`) with a
  10 s cache, connecting only to the addresses the resolver returned (never a second lookup);
- TLS through ``loop.create_connection(ssl=context, server_hostname=host)``;
- the request written with one ``transport.write`` (the header block pre-encoded, the parts
  that depend only on the URL cached);
- a strict incremental parser of the answer: status line, headers (at most 64 KiB and 128
  lines), Content-Length, chunked (with trailers) or read-until-close bodies, interim 1xx
  answers skipped, gzip/deflate decoded, at most ``cap`` decoded bytes kept.

Reuse is conservative. A connection goes back to the pool only after a complete, well-formed
answer that did not say ``Connection: close`` (HTTP/1.0: only with ``keep-alive``), with no
byte left over and nothing of the request still unsent. Anything else (an error, a timeout,
a cancelled caller, a body too large to drain, bytes arriving while idle, the peer closing
while idle) closes it.

Stale connections: a kept-alive connection the peer closed while it sat in the pool is never
used (the close is seen as ``eof_received``/``connection_lost`` and the connection leaves the
pool). The peer may still close it at the very moment a request is written on it; that
request may or may not have reached the receiver, so it is **not** resent by this client:
the attempt fails with :class:`~webhookkit.exceptions.ConnectError` (retryable), and the
scheduler retries it on its own schedule, recorded as a separate attempt. Only a request
that provably was never written (its connection found closed before the write) moves on to
another connection.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import ipaddress
import re
import socket
import ssl
import zlib
from collections.abc import Callable, Iterable
from functools import partial
from typing import Final, cast

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from ..config import Timeouts
from ..exceptions import ConnectError, DeliveryTimeoutError, TLSError, TransportError

__all__ = [
    "Answer",
    "AnswerError",
    "ConnectionPool",
    "DisconnectedError",
    "Target",
    "describe",
    "transport_error",
]

#: Largest header block (status line and headers, or trailers) accepted, in bytes.
HEAD_LIMIT: Final = 64 * 1024
#: Most header lines (or trailer lines) accepted in one answer.
MAX_HEADERS: Final = 128
#: Most interim (1xx) answers skipped before the final one.
MAX_INTERIM: Final = 16
#: Bytes of body past the cap read (and discarded) to keep a connection; more: it is closed.
DRAIN_LIMIT: Final = 64 * 1024
#: How long a DNS answer is reused (aiohttp's default).
DNS_TTL: Final = 10.0
_CACHE_SIZE: Final = 4096
_CHUNK_LINE_LIMIT: Final = 4096

Key = tuple[str, str, int]

# -- answers -------------------------------------------------------------------------------


class AnswerError(Exception):
    """The answer broke HTTP/1.1: malformed, over a limit, or cut short."""


class DisconnectedError(ConnectionError):
    """The connection closed before the first byte of an answer."""

    def __init__(self, message: str, *, reused: bool) -> None:
        super().__init__(message)
        self.reused = reused


class Answer:
    """A final answer: status, headers as received (names as sent, values decoded as UTF-8
    with ``surrogateescape``) and up to ``cap`` bytes of the decoded body."""

    __slots__ = ("body", "content_type", "headers", "reason", "status", "version")

    def __init__(
        self,
        status: int,
        reason: str,
        version: str,
        headers: tuple[tuple[str, str], ...],
        body: bytes,
        content_type: str | None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.body = body
        self.content_type = content_type

    @property
    def charset(self) -> str | None:
        """The ``charset`` parameter of Content-Type, if any (as aiohttp's ``charset``)."""
        content_type = self.content_type
        if not content_type or "charset" not in content_type.lower():
            return None
        for parameter in content_type.split(";")[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "charset":
                return value.strip().strip('"').strip("'") or None
        return None


# Bytes no header block may hold once its CRLFs are gone: C0 controls but HTAB, and DEL.
# obs-text (0x80-0xFF) stays allowed in values and reason phrases (RFC 9110 5.5).
_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_STATUS = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: (.*))?", re.S)
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
# Header names seen before: raw bytes -> (name, lowercase name).
_NAMES: dict[bytes, tuple[str, str]] = {}
_FRAMING = frozenset(
    {"content-length", "transfer-encoding", "connection", "content-encoding", "content-type"}
)

# Parser states.
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _UNTIL_CLOSE, _DONE = range(8)


def _header_name(raw: bytes) -> tuple[str, str]:
    found = _NAMES.get(raw)
    if found is None:
        if not _TOKEN.fullmatch(raw):
            raise AnswerError("a header name is not an HTTP token")
        name = raw.decode("ascii")
        found = (name, name.lower())
        if len(_NAMES) >= _CACHE_SIZE:
            _NAMES.clear()
        _NAMES[raw] = found
    return found


# Header lines seen before (most answers repeat theirs): line -> (pair, lowercase name, value).
_LINES: dict[bytes, tuple[tuple[str, str], str, bytes]] = {}
_LINE_CACHE_LIMIT: Final = 256  # longer lines are parsed every time


def _header_line(line: bytes) -> tuple[tuple[str, str], str, bytes]:
    """One header line of a block already checked for control characters."""
    raw_name, colon, raw_value = line.partition(b":")
    if not colon:
        raise AnswerError("a header line has no colon")
    name, lower = _header_name(raw_name)
    raw_value = raw_value.strip(b" \t")
    parsed = ((name, raw_value.decode("utf-8", "surrogateescape")), lower, raw_value)
    if len(line) <= _LINE_CACHE_LIMIT:
        if len(_LINES) >= _CACHE_SIZE:
            _LINES.clear()
        _LINES[line] = parsed
    return parsed


# -- connections ---------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One connection and the parser of the answer to the request in flight on it."""

    __slots__ = (
        "_body",
        "_buf",
        "_cap",
        "_closed",
        "_ctype",
        "_decoder",
        "_deflate_pending",
        "_drained",
        "_full",
        "_got_bytes",
        "_head_only",
        "_headers",
        "_interim",
        "_keep_alive",
        "_reason",
        "_remaining",
        "_reuse",
        "_state",
        "_status",
        "_timer",
        "_trailer_bytes",
        "_trailer_lines",
        "_version",
        "_waiter",
        "broken",
        "counted",
        "idle_since",
        "in_pool",
        "key",
        "pool",
        "served",
        "transport",
    )

    def __init__(self, pool: ConnectionPool, key: Key) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.broken = False
        self.counted = False
        self.in_pool = False
        self.idle_since = 0.0
        self.served = 0
        self._waiter: asyncio.Future[Answer] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed: asyncio.Future[None] | None = None
        self._buf = bytearray()
        self._state = _DONE
        self._status = 0
        self._reason = ""
        self._version = ""
        self._headers: list[tuple[str, str]] = []
        self._ctype: str | None = None
        self._keep_alive = False
        self._reuse = True
        self._remaining = 0
        self._body = bytearray()
        self._cap = 0
        self._full = False
        self._drained = 0
        self._decoder: zlib._Decompress | None = None
        self._deflate_pending = False
        self._head_only = False
        self._got_bytes = False
        self._interim = 0
        self._trailer_bytes = 0
        self._trailer_lines = 0

    # -- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports do not subclass asyncio.Transport.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # Bytes nobody asked for (while idle, or after the answer): never reuse.
            self._close()
            return
        self._got_bytes = True
        buf = self._buf
        if buf:
            buf += data
            data = bytes(buf)
            buf.clear()
        try:
            pos = self._parse(data)
        except AnswerError as exc:
            self._fail(exc)
            return
        except zlib.error:
            self._fail(AnswerError("the compressed body cannot be decoded"))
            return
        if self._state == _DONE and self._waiter is not None:
            self._finish(reuse=self._reuse and pos == len(data))

    def eof_received(self) -> bool | None:
        self._ended(None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended(exc)
        self.broken = True
        self.transport = None
        self.pool.discard(self)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    # -- the request ---------------------------------------------------------------------

    def usable(self) -> bool:
        transport = self.transport
        return not self.broken and transport is not None and not transport.is_closing()

    def start(
        self, data: bytes, cap: int, head_only: bool, deadline: float
    ) -> asyncio.Future[Answer]:
        """Write one request and return the future of its answer."""
        transport = self.transport
        assert transport is not None and self._waiter is None
        loop = self.pool.loop
        waiter: asyncio.Future[Answer] = loop.create_future()
        self._waiter = waiter
        self._state = _HEAD
        self._cap = cap
        self._head_only = head_only
        self._headers = []
        self._ctype = None
        self._body = bytearray()
        self._full = False
        self._drained = 0
        self._decoder = None
        self._deflate_pending = False
        self._got_bytes = False
        self._interim = 0
        self._reuse = True
        self._timer = loop.call_at(deadline, self._on_timeout)
        transport.write(data)
        return waiter

    def abandon(self, waiter: asyncio.Future[Answer]) -> None:
        """The caller stopped waiting (cancelled): close unless the answer is complete."""
        if self._waiter is waiter:
            self._waiter = None
            self._close()

    def _on_timeout(self) -> None:
        self._timer = None
        if self._waiter is None:
            return
        if self._full:  # the answer is read up to the cap; only the draining is late
            self._finish(reuse=False)
        else:
            self._fail(TimeoutError())

    def _ended(self, exc: Exception | None) -> None:
        """The peer closed (EOF) or the connection was lost."""
        if self._waiter is None:
            self.broken = True
            self.pool.discard(self)
            return
        state = self._state
        if state == _UNTIL_CLOSE or (self._full and state != _HEAD):
            try:
                self._end_body()
            except AnswerError as bad:
                self._fail(bad)
                return
            except zlib.error:
                self._fail(AnswerError("the compressed body cannot be decoded"))
                return
            self._finish(reuse=False)
        elif isinstance(exc, ssl.SSLError):
            self._fail(exc)
        elif not self._got_bytes:
            reused = self.served > 0
            what = "a kept-alive" if reused else "the"
            lost = DisconnectedError(
                f"{what} connection was closed before any answer"
                + (" (the request may have reached the receiver; not resent)" if reused else ""),
                reused=reused,
            )
            lost.__cause__ = exc
            self._fail(lost)
        else:
            self._fail(AnswerError("the connection closed in the middle of the answer"))

    def _finish(self, *, reuse: bool) -> None:
        waiter = self._waiter
        assert waiter is not None
        self._waiter = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._state = _DONE
        self.served += 1
        answer = Answer(
            self._status,
            self._reason,
            self._version,
            tuple(self._headers),
            bytes(self._body),
            self._ctype,
        )
        transport = self.transport
        if (
            reuse
            and self._keep_alive
            and not self.broken
            and transport is not None
            and not transport.is_closing()
            and not transport.get_write_buffer_size()
        ):
            self.pool.release(self)
        else:
            self._close()
        if not waiter.done():
            waiter.set_result(answer)

    def _fail(self, exc: BaseException) -> None:
        waiter = self._waiter
        self._waiter = None
        self._close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _close(self) -> None:
        self.broken = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.abort()
        self.pool.discard(self)

    def closed(self) -> asyncio.Future[None]:
        """Done once ``connection_lost`` ran."""
        if self._closed is None:
            self._closed = self.pool.loop.create_future()
            if self.transport is None:
                self._closed.set_result(None)
        return self._closed

    # -- the parser ----------------------------------------------------------------------

    def _parse(self, data: bytes) -> int:
        """Consume ``data``; the position where the answer ended (or ``len(data)``)."""
        pos = 0
        n = len(data)
        while True:
            state = self._state
            if state in (_LENGTH, _CHUNK_DATA):
                available = n - pos
                if not available:
                    break
                remaining = self._remaining
                take = remaining if remaining < available else available
                self._on_body(data if take == n else data[pos : pos + take])
                pos += take
                self._remaining = remaining = remaining - take
                if self._state == _DONE:  # gave up draining
                    break
                if not remaining:
                    self._state = _CHUNK_END if state == _CHUNK_DATA else _DONE
                    if state == _LENGTH:
                        self._end_body()
                elif self._full and state == _LENGTH and remaining > DRAIN_LIMIT - self._drained:
                    self._give_up_draining()
            elif state == _HEAD:
                end = data.find(b"\r\n\r\n", pos)
                if end < 0:
                    if n - pos > HEAD_LIMIT:
                        raise AnswerError(f"the header block is over {HEAD_LIMIT:,} bytes")
                    break
                if end - pos > HEAD_LIMIT:
                    raise AnswerError(f"the header block is over {HEAD_LIMIT:,} bytes")
                self._head(data[pos:end])
                pos = end + 4
            elif state == _CHUNK_SIZE:
                end = data.find(b"\r\n", pos)
                if end < 0:
                    if n - pos > _CHUNK_LINE_LIMIT:
                        raise AnswerError("a chunk size line is too long")
                    break
                line = data[pos:end]
                pos = end + 2
                size, _, extension = line.partition(b";")
                size = size.rstrip(b" \t")
                if not _HEX.fullmatch(size) or _CTL.search(extension):
                    raise AnswerError("bad chunk size line")
                self._remaining = int(size, 16)
                self._state = _CHUNK_DATA if self._remaining else _TRAILER
                if self._full and self._remaining > DRAIN_LIMIT - self._drained:
                    self._give_up_draining()
            elif state == _CHUNK_END:
                if n - pos < 2:
                    if n - pos == 1 and data[pos] != 0x0D:
                        raise AnswerError("a chunk is not followed by CRLF")
                    break
                if data[pos] != 0x0D or data[pos + 1] != 0x0A:
                    raise AnswerError("a chunk is not followed by CRLF")
                pos += 2
                self._state = _CHUNK_SIZE
            elif state == _TRAILER:
                end = data.find(b"\r\n", pos)
                if end < 0:
                    if n - pos > HEAD_LIMIT - self._trailer_bytes:
                        raise AnswerError(f"the trailers are over {HEAD_LIMIT:,} bytes")
                    break
                line = data[pos:end]
                pos = end + 2
                if not line:
                    self._end_body()
                    self._state = _DONE
                    continue
                self._trailer_bytes += len(line) + 2
                self._trailer_lines += 1
                if self._trailer_bytes > HEAD_LIMIT or self._trailer_lines > MAX_HEADERS:
                    raise AnswerError("too many trailers")
                name, colon, _ = line.partition(b":")
                if not colon or _CTL.search(line):
                    raise AnswerError("bad trailer line")
                _header_name(name)
            elif state == _UNTIL_CLOSE:
                if pos < n:
                    self._on_body(data[pos:] if pos else data)
                    pos = n
                break
            else:  # _DONE
                break
        if pos < n and self._state != _DONE:
            self._buf += data[pos:]
            pos = n
        return pos

    def _head(self, head: bytes) -> None:
        """The status line and headers of one answer (interim or final)."""
        if _CTL.search(head.replace(b"\r\n", b"")):
            raise AnswerError("the header block holds control characters (NUL, CR, LF...)")
        lines = head.split(b"\r\n")
        if len(lines) > MAX_HEADERS + 1:
            raise AnswerError(f"more than {MAX_HEADERS} header lines")
        match = _STATUS.fullmatch(lines[0])
        if match is None:
            raise AnswerError("bad status line")
        minor, code, reason = match.groups()
        status = int(code)
        headers: list[tuple[str, str]] = []
        length: bytes | None = None
        chunked = False
        transfer_encoding = False
        connection = b""
        encoding = b""
        ctype: str | None = None
        lines_seen = _LINES
        for line in lines[1:]:
            parsed = lines_seen.get(line)
            if parsed is None:
                parsed = _header_line(line)
            pair, lower, raw_value = parsed
            headers.append(pair)
            if lower in _FRAMING:
                if lower == "content-length":
                    if not raw_value.isdigit() or (length is not None and raw_value != length):
                        raise AnswerError("bad Content-Length")
                    length = raw_value
                elif lower == "transfer-encoding":
                    transfer_encoding = True
                    codings = [c.strip().lower() for c in raw_value.split(b",") if c.strip()]
                    if codings == [b"chunked"]:
                        chunked = True
                    elif codings and codings != [b"identity"]:
                        raise AnswerError("unsupported Transfer-Encoding")
                elif lower == "connection":
                    connection += b"," + raw_value.lower()
                elif lower == "content-encoding":
                    encoding = raw_value.lower()
                elif ctype is None:
                    ctype = pair[1]
        if status < 200:
            if status == 101:
                raise AnswerError("unexpected 101 Switching Protocols")
            self._interim += 1
            if self._interim > MAX_INTERIM:
                raise AnswerError(f"more than {MAX_INTERIM} interim (1xx) answers")
            return  # the final answer follows
        tokens = {t.strip() for t in connection.split(b",")} if connection else set()
        self._status = status
        self._reason = (reason or b"").decode("utf-8", "surrogateescape")
        self._version = "1." + minor.decode()
        self._headers = headers
        self._ctype = ctype
        self._keep_alive = (b"close" not in tokens) if minor == b"1" else (b"keep-alive" in tokens)
        if transfer_encoding and length is not None:
            self._keep_alive = False  # both framings: smuggling territory, never reuse
        if self._head_only or status == 204 or status == 304:
            self._state = _DONE
            return
        if encoding in (b"gzip", b"x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == b"deflate":
            self._deflate_pending = True  # zlib or raw deflate: decided on the first byte
        if chunked:
            self._state = _CHUNK_SIZE
            self._trailer_bytes = 0
            self._trailer_lines = 0
        elif length is not None:
            self._remaining = int(length)
            if self._remaining:
                self._state = _LENGTH
            else:
                self._state = _DONE
        else:
            self._state = _UNTIL_CLOSE
            self._keep_alive = False

    def _on_body(self, chunk: bytes) -> None:
        if self._full:
            self._drained += len(chunk)
            if self._drained > DRAIN_LIMIT:
                self._give_up_draining()
            return
        body = self._body
        room = self._cap - len(body)
        if self._deflate_pending:
            self._deflate_pending = False
            self._decoder = zlib.decompressobj(
                zlib.MAX_WBITS if chunk[0] & 0x0F == 8 else -zlib.MAX_WBITS
            )
        decoder = self._decoder
        if decoder is None:
            if len(chunk) < room:
                body += chunk
                return
            body += chunk[:room]
            self._full = True
            self._drained = len(chunk) - room
        else:
            body += decoder.decompress(chunk, room)
            if len(body) >= self._cap:
                self._full = True
                self._drained = len(decoder.unconsumed_tail)
            else:
                return
        if self._drained > DRAIN_LIMIT or self._state == _UNTIL_CLOSE:
            self._give_up_draining()

    def _give_up_draining(self) -> None:
        """The kept part of the body is read; the rest is too long to drain: close."""
        self._state = _DONE
        self._reuse = False

    def _end_body(self) -> None:
        """The body ended: flush the decoder (a cut compressed body is an error)."""
        decoder = self._decoder
        if decoder is None or self._full:
            return
        room = self._cap - len(self._body)
        self._body += decoder.flush()[:room]
        if not decoder.eof and self._body:
            raise AnswerError("the compressed body is cut short")


# -- what is sent --------------------------------------------------------------------------

# Request header names by what they mean to this client. 0: an ordinary header.
_PLAIN, _CTYPE, _AUTH, _HOST, _AGENT, _ACCEPT, _ACCEPT_ENCODING, _OWNED = range(8)
_SPECIAL_NAMES: Final = {
    "content-type": _CTYPE,
    "host": _HOST,
    "user-agent": _AGENT,
    "accept": _ACCEPT,
    "accept-encoding": _ACCEPT_ENCODING,
    "authorization": _AUTH,
    # Framing and connection management belong to this client; a caller may not set them.
    "content-length": _OWNED,
    "transfer-encoding": _OWNED,
    "connection": _OWNED,
    "keep-alive": _OWNED,
    "upgrade": _OWNED,
    "te": _OWNED,
    "trailer": _OWNED,
    "expect": _OWNED,
}
#: Header names the client refuses from callers (it sets or forbids them itself).
OWNED_HEADERS: Final = frozenset(k for k, v in _SPECIAL_NAMES.items() if v == _OWNED)
_STR_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_KINDS: dict[str, int] = {}


def _kind(name: str) -> int:
    kind = _KINDS.get(name)
    if kind is None:
        if not isinstance(name, str) or not _STR_TOKEN.fullmatch(name):
            raise TransportError(
                f"refused to send header {name!r}: its name is not an HTTP token "
                "(CR, LF, NUL, spaces and separators are not allowed)",
                retryable=False,
            )
        kind = _SPECIAL_NAMES.get(name.lower(), _PLAIN)
        if len(_KINDS) >= _CACHE_SIZE:
            _KINDS.clear()
        _KINDS[name] = kind
    return kind


def _check_values(headers: list[tuple[str, str]], text: str) -> None:
    """Refuse CR, LF and NUL in any value (``text`` is the serialised block of them)."""
    lines = len(headers)
    if text.count("\n") == lines and text.count("\r") == lines and "\x00" not in text:
        return
    for name, value in headers:
        if "\r" in value or "\n" in value or "\x00" in value:
            raise TransportError(
                f"refused to send header {name!r}: its value holds CR, LF or NUL",
                retryable=False,
            )


def _serialise(headers: list[tuple[str, str]]) -> str:
    try:
        return "".join([f"{name}: {value}\r\n" for name, value in headers])
    except (TypeError, ValueError):
        raise TransportError("refused to send headers: expected (name, value) strings") from None


class Target:
    """Everything about one URL that the requests to it share, computed once."""

    __slots__ = (
        "_post_prefix",
        "_post_suffix",
        "auth",
        "host",
        "host_header",
        "key",
        "literal",
        "path",
        "port",
        "server_hostname",
        "tls",
        "user_agent",
    )

    def __init__(self, url: URL, user_agent: str) -> None:
        scheme = url.scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"scheme {scheme!r} is not http or https")
        host = url.raw_host
        port = url.port
        host_header = url.host_port_subcomponent
        if not host or port is None or not host_header:
            raise ValueError("no host")
        path = url.raw_path_qs or "/"
        for part in (host_header, path):
            if any(c in part for c in " \t\r\n\x00"):
                raise ValueError("the host or path holds spaces or control characters")
        self.tls = scheme == "https"
        self.host = host
        self.port = port
        self.key: Key = (scheme, host, port)
        self.host_header = host_header
        self.path = path
        self.user_agent = user_agent
        self.server_hostname = host.rstrip(".") if self.tls else None
        self.literal: list[ResolveResult] | None = None
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            self.literal = [
                ResolveResult(hostname=host, host=host, port=port, family=family, proto=0, flags=0)
            ]
        self.auth: str | None = None
        if url.raw_user is not None or url.raw_password is not None:
            credentials = f"{url.user or ''}:{url.password or ''}".encode("latin1")
            self.auth = "Basic " + base64.b64encode(credentials).decode("ascii")
        # Host, User-Agent first; Accept, Accept-Encoding, the URL's credentials and
        # Content-Length last: aiohttp's order, which receivers have seen for years.
        self._post_prefix = (
            f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {user_agent}\r\n"
        )
        self._post_suffix = "Accept: */*\r\nAccept-Encoding: gzip, deflate\r\n" + (
            f"Authorization: {self.auth}\r\n" if self.auth else ""
        )

    def post(self, headers: list[tuple[str, str]], length: int) -> bytes:
        """The encoded head of a POST of ``length`` bytes with ``headers`` (in this order,
        after Host and User-Agent)."""
        special = False
        # Content-Type is ordinary here; so is Authorization unless the URL carries one.
        ordinary = _CTYPE if self.auth else _AUTH
        for name, _ in headers:
            kind = _KINDS.get(name)
            if kind is None:
                kind = _kind(name)
            if kind > ordinary:
                special = True
        if special:
            return self.head("POST", headers, length, default_content_type=True)
        text = _serialise(headers)
        _check_values(headers, text)
        return (
            self._post_prefix + text + self._post_suffix + f"Content-Length: {length}\r\n\r\n"
        ).encode("utf-8")

    def head(
        self,
        method: str,
        headers: Iterable[tuple[str, str]],
        length: int | None,
        *,
        default_content_type: bool,
    ) -> bytes:
        """The encoded head of any request: ``length`` None sends no Content-Length;
        ``default_content_type`` adds ``application/octet-stream`` when none is given."""
        host: tuple[str, str] = ("Host", self.host_header)
        agent: tuple[str, str] = ("User-Agent", self.user_agent)
        given: list[tuple[str, str]] = []
        seen: set[int] = set()
        for name, value in headers:
            kind = _kind(name)
            if kind == _OWNED:
                raise TransportError(
                    f"refused to send header {name!r}: the HTTP client sets it", retryable=False
                )
            if kind == _HOST:
                host = (name, value)
                continue
            if kind == _AGENT and _AGENT not in seen:
                agent = (name, value)
                seen.add(kind)
                continue
            seen.add(kind)
            given.append((name, value))
        lines = [host, agent, *given]
        if _ACCEPT not in seen:
            lines.append(("Accept", "*/*"))
        if _ACCEPT_ENCODING not in seen:
            lines.append(("Accept-Encoding", "gzip, deflate"))
        if self.auth is not None:
            if _AUTH in seen:
                raise ValueError(
                    "Cannot combine AUTHORIZATION header with AUTH argument or credentials "
                    "encoded in URL"
                )
            lines.append(("Authorization", self.auth))
        if length is not None:
            lines.append(("Content-Length", str(length)))
        if default_content_type and _CTYPE not in seen:
            lines.append(("Content-Type", "application/octet-stream"))
        text = _serialise(lines)
        _check_values(lines, text)
        return f"{method} {self.path} HTTP/1.1\r\n{text}\r\n".encode()


# -- the pool ------------------------------------------------------------------------------


class ConnectionPool:
    """Kept-alive connections per ``(scheme, host, port)`` of one event loop.

    ``limit`` caps the open connections in all and ``limit_per_host`` per key (0: no cap);
    at a cap, callers wait in a queue (first come, first served) until a connection is
    released or closed. When only the total cap is reached and another host has an idle
    connection, that one is closed to make room.
    """

    def __init__(
        self,
        *,
        resolver: AbstractResolver,
        ssl_context: Callable[[], ssl.SSLContext],
        limit: int = 0,
        limit_per_host: int = 0,
        keepalive_timeout: float = 15.0,
        dns_ttl: float = DNS_TTL,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self._resolver = resolver
        self._ssl_context = ssl_context
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._keepalive = keepalive_timeout
        self._dns_ttl = dns_ttl
        self._idle: dict[Key, collections.deque[_Connection]] = {}
        self._per_host: dict[Key, int] = {}
        self._total = 0
        self._conns: set[_Connection] = set()
        self._waiters: collections.deque[tuple[Key, asyncio.Future[None]]] = collections.deque()
        self._dns: dict[tuple[str, int], tuple[float, list[ResolveResult]]] = {}
        self._lookups: dict[tuple[str, int], asyncio.Task[list[ResolveResult]]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self.closed = False

    @property
    def open_connections(self) -> int:
        """Connections open or being opened (what ``limit`` caps)."""
        return self._total

    @property
    def idle_connections(self) -> int:
        """Kept-alive connections waiting in the pool."""
        return sum(len(idle) for idle in self._idle.values())

    # -- sending -------------------------------------------------------------------------

    async def send(
        self, target: Target, data: bytes, *, cap: int, head_only: bool, timeouts: Timeouts
    ) -> Answer:
        """Write ``data`` (a whole request) to ``target``; its answer, at most ``cap``
        decoded body bytes. Raises OSError/ssl.SSLError/TimeoutError/AnswerError."""
        deadline = self.loop.time() + timeouts.total
        conn = self._take(target.key)
        if conn is None:
            conn = await self._acquire(target, deadline, timeouts.connect)
        waiter = conn.start(data, cap, head_only, deadline)
        try:
            return await waiter
        except BaseException:
            conn.abandon(waiter)
            raise

    def _take(self, key: Key) -> _Connection | None:
        """A live idle connection to ``key`` (the most recently used), or None."""
        idle = self._idle.get(key)
        if not idle:
            return None
        oldest = self.loop.time() - self._keepalive
        while idle:
            conn = idle.pop()
            conn.in_pool = False
            if conn.idle_since > oldest and conn.usable():
                return conn
            conn._close()
        return None

    async def _acquire(self, target: Target, deadline: float, connect: float) -> _Connection:
        key = target.key
        async with asyncio.timeout_at(deadline):
            first = True
            while True:
                if self.closed:
                    raise ConnectionError("the HTTP transport is closed")
                conn = self._take(key)
                if conn is not None:
                    return conn
                if self._room(key) or self._evict_for(key):
                    break
                await self._wait(key, first)
                first = False
            self._total += 1
            self._per_host[key] = self._per_host.get(key, 0) + 1
            try:
                conn = await self._connect(target, connect)
            except BaseException:
                self._total -= 1
                self._forget_host(key)
                self._wake()
                raise
            # The slot reserved above is the connection's now: discard() frees it.
            conn.counted = True
            self._conns.add(conn)
            if self.closed:
                conn._close()
                raise ConnectionError("the HTTP transport is closed")
            if not conn.usable():  # closed by the peer before anything was written
                conn._close()
                raise DisconnectedError(
                    "the connection was closed right after it was opened", reused=False
                )
            return conn

    def _room(self, key: Key) -> bool:
        return (not self._limit or self._total < self._limit) and (
            not self._limit_per_host or self._per_host.get(key, 0) < self._limit_per_host
        )

    def _idle_elsewhere(self, key: Key) -> collections.deque[_Connection] | None:
        if not self._limit or self._total < self._limit:
            return None
        if self._limit_per_host and self._per_host.get(key, 0) >= self._limit_per_host:
            return None
        for other, idle in self._idle.items():
            if other != key and idle:
                return idle
        return None

    def _evict_for(self, key: Key) -> bool:
        """Close another host's idle connection when only the total cap stands in the way."""
        idle = self._idle_elsewhere(key)
        if idle is None:
            return False
        conn = idle.popleft()
        conn.in_pool = False
        conn._close()
        return True

    async def _wait(self, key: Key, first: bool) -> None:
        future: asyncio.Future[None] = self.loop.create_future()
        entry = (key, future)
        if first:
            self._waiters.append(entry)
        else:  # woken but beaten to it: keep the place in the queue
            self._waiters.appendleft(entry)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self._wake()  # pass the wake-up on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(entry)
            raise

    def _wake(self) -> None:
        """Wake the first waiter that can proceed now."""
        waiters = self._waiters
        if not waiters:
            return
        for index, (key, future) in enumerate(waiters):
            if future.done():
                continue
            if self._idle.get(key) or self._room(key) or self._idle_elsewhere(key) is not None:
                del waiters[index]
                future.set_result(None)
                return

    def _forget_host(self, key: Key) -> None:
        count = self._per_host[key] - 1
        if count:
            self._per_host[key] = count
        else:
            del self._per_host[key]

    # -- connecting ----------------------------------------------------------------------

    async def _connect(self, target: Target, connect: float) -> _Connection:
        addresses = target.literal
        if addresses is None:
            addresses = await self._resolve(target.host, target.port)
        context = self._ssl_context() if target.tls else None
        error: BaseException | None = None
        for address in addresses:
            conn = _Connection(self, target.key)
            try:
                async with asyncio.timeout(connect):
                    await self.loop.create_connection(
                        partial(_same, conn),
                        host=address["host"],
                        port=address["port"],
                        family=address["family"],
                        proto=address["proto"],
                        flags=address["flags"],
                        ssl=context,
                        server_hostname=target.server_hostname,
                    )
            except (OSError, TimeoutError) as exc:
                error = exc
                continue
            return conn
        if error is None:
            raise OSError(f"{target.host}: no address to connect to")
        raise error

    async def _resolve(self, host: str, port: int) -> list[ResolveResult]:
        """The guard-checked addresses of ``host``, from the cache while fresh."""
        key = (host, port)
        cached = self._dns.get(key)
        if cached is not None and cached[0] > self.loop.time():
            return cached[1]
        lookup = self._lookups.get(key)
        if lookup is None:
            lookup = self.loop.create_task(self._lookup(host, port))
            self._lookups[key] = lookup
            lookup.add_done_callback(partial(self._lookup_done, key))
        return await asyncio.shield(lookup)

    async def _lookup(self, host: str, port: int) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, socket.AF_UNSPEC)
        if not results:
            raise OSError(f"{host}: the resolver returned no address")
        if len(self._dns) >= _CACHE_SIZE:
            self._dns.clear()
        self._dns[(host, port)] = (self.loop.time() + self._dns_ttl, results)
        return results

    def _lookup_done(self, key: tuple[str, int], task: asyncio.Task[list[ResolveResult]]) -> None:
        if self._lookups.get(key) is task:
            del self._lookups[key]
        if not task.cancelled():
            task.exception()  # retrieved: every caller may have gone

    # -- the pool's side of a connection -------------------------------------------------

    def release(self, conn: _Connection) -> None:
        """``conn`` answered completely and may be reused: keep it idle."""
        if self.closed or self._keepalive <= 0:
            conn._close()
            return
        conn.idle_since = now = self.loop.time()
        conn.in_pool = True
        idle = self._idle.get(conn.key)
        if idle is None:
            idle = self._idle[conn.key] = collections.deque()
        idle.append(conn)
        if self._sweeper is None:
            self._sweeper = self.loop.call_at(now + self._keepalive, self._sweep)
        if self._waiters:
            self._wake()

    def discard(self, conn: _Connection) -> None:
        """``conn`` is closed (or closing): out of the pool, its slot freed (idempotent)."""
        if conn.in_pool:
            conn.in_pool = False
            idle = self._idle.get(conn.key)
            if idle is not None:
                with contextlib.suppress(ValueError):
                    idle.remove(conn)
        if conn.counted:
            conn.counted = False
            self._conns.discard(conn)
            self._total -= 1
            self._forget_host(conn.key)
            if self._waiters:
                self._wake()

    def _sweep(self) -> None:
        """Close connections idle for ``keepalive_timeout``; come back for the next one."""
        self._sweeper = None
        now = self.loop.time()
        oldest = now - self._keepalive
        earliest: float | None = None
        for key, idle in list(self._idle.items()):
            while idle and idle[0].idle_since <= oldest:
                conn = idle.popleft()
                conn.in_pool = False
                conn._close()
            if idle:
                first = idle[0].idle_since
                earliest = first if earliest is None else min(earliest, first)
            else:
                self._idle.pop(key, None)
        if earliest is not None and not self.closed:
            self._sweeper = self.loop.call_at(earliest + self._keepalive, self._sweep)

    async def aclose(self) -> None:
        """Close every connection (requests in flight fail with a ConnectError)."""
        self.closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        # DNS lookups in flight are left to finish: cancelling one would surface as a
        # cancellation in every send waiting on it.
        while self._waiters:
            _, future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)  # it sees ``closed`` and gives up
        conns = list(self._conns)
        for idle in self._idle.values():
            conns += [c for c in idle if c not in self._conns]
        waiters = [conn.closed() for conn in conns]
        for conn in conns:
            if conn._waiter is not None:
                conn._fail(ConnectionError("the HTTP transport was closed"))
            else:
                conn._close()
        self._idle.clear()
        if waiters:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await asyncio.gather(*waiters, return_exceptions=True)
        await asyncio.sleep(0)


def _same(conn: _Connection) -> _Connection:
    return conn


# -- errors --------------------------------------------------------------------------------


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def transport_error(exc: Exception, target: str, timeouts: Timeouts) -> Exception:
    """The typed error for what went wrong talking to ``target`` (others pass unchanged).

    ``target`` is the URL with its credentials redacted; nothing else names the URL.
    """
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, TimeoutError):
        return DeliveryTimeoutError(
            f"timed out sending to {target} (budget {timeouts.total:g} s, "
            f"connect {timeouts.connect:g} s)"
        )
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        # Before ValueError/OSError: a certificate error is both.
        return TLSError(f"TLS failed with {target}: {describe(exc)}")
    if isinstance(exc, DisconnectedError):
        return ConnectError(f"connection to {target} lost: {exc}")
    if isinstance(exc, AnswerError):
        return TransportError(f"bad answer from {target}: {exc}")
    if isinstance(exc, ValueError):
        return TransportError(f"invalid URL {target}: {describe(exc)}", retryable=False)
    if isinstance(exc, OSError):
        return ConnectError(f"cannot connect to {target}: {describe(exc)}")
    return exc
