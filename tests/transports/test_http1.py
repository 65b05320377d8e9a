"""The HTTP transport's own HTTP/1.1 client (``webhookkit/transports/_http1.py``) on the wire.

Raw asyncio servers on 127.0.0.1 write answers byte for byte (keep-alive, Connection: close,
chunked, gzip, 1xx, truncated, oversized, malformed, hanging), and count the connections and
requests they see, so reuse and closing are observed from the server's side. aiohttp and TLS
(trustme) servers check the same client against real stacks. No timing assertions: waits are
bounded only so a broken client fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import random
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from conftest import Received, Receiver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transports.conftest import ReceiverFactory
from transports.helpers import outbound
from webhookkit import (
    BlockedAddressError,
    ConfigurationError,
    ConnectError,
    DeliveryTimeoutError,
    Timeouts,
    TransportError,
)
from webhookkit._sanitize import sanitize_headers
from webhookkit._secret import REDACTED, SENSITIVE_HEADERS
from webhookkit.transports._http1 import DRAIN_LIMIT, HEAD_LIMIT, ConnectionPool
from webhookkit.transports.http import (
    _EXCERPT_LIMIT,
    DEFAULT_USER_AGENT,
    HTTPTransport,
    record_headers,
)

LOOPBACK = ["127.0.0.1/32"]
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


async def until(predicate: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Wait until ``predicate()`` holds (a bound against hangs, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"gave up waiting for: {what}")
        await asyncio.sleep(0.005)


@dataclass
class Request:
    method: str
    path: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    connection: int
    reader: asyncio.StreamReader = field(repr=False)
    server: WireServer = field(repr=False)

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    async def until_client_closes(self) -> bool:
        """Answer nothing; return (False: done with the connection) once the client closed."""
        with contextlib.suppress(ConnectionError):
            while await self.reader.read(65536):
                pass
        self.server.client_closed += 1
        return False


Respond = Callable[[Request, asyncio.StreamWriter], Awaitable[bool]]


async def answer_ok(request: Request, writer: asyncio.StreamWriter) -> bool:
    writer.write(OK)
    return True


def answering(data: bytes, keep_open: bool = True) -> Respond:
    """Every request gets ``data``; the connection stays open unless ``keep_open`` is False."""

    async def respond(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(data)
        return keep_open

    return respond


@dataclass
class WireServer:
    """A raw HTTP/1.1 server: ``respond`` writes each answer and says whether to keep the
    connection open. Counts connections opened, connections the client closed, requests."""

    respond: Respond = answer_ok
    url: str = ""
    connections: int = 0
    client_closed: int = 0
    requests: list[Request] = field(default_factory=list)
    active: int = 0
    most_active: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        number = self.connections
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.client_closed += 1
                    return
                lines = head[:-4].split(b"\r\n")
                method, path, _ = lines[0].split(b" ", 2)
                headers = [tuple(line.split(b": ", 1)) for line in lines[1:]]
                request = Request(
                    method.decode(),
                    path.decode(),
                    headers,  # type: ignore[arg-type]
                    b"",
                    number,
                    reader,
                    self,
                )
                length = int(request.header(b"content-length") or 0)
                request.body = await reader.readexactly(length)
                self.requests.append(request)
                self.active += 1
                self.most_active = max(self.most_active, self.active)
                try:
                    keep = await self.respond(request, writer)
                    await writer.drain()
                finally:
                    self.active -= 1
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            self.client_closed += 1
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)


Servers = Callable[..., Awaitable[WireServer]]
Transports = Callable[..., HTTPTransport]


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    started: list[WireServer] = []

    async def make(respond: Respond = answer_ok) -> WireServer:
        server = WireServer(respond)
        await server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        await server.aclose()


@pytest.fixture
async def transports() -> AsyncIterator[Transports]:
    made: list[HTTPTransport] = []

    def make(**kwargs: object) -> HTTPTransport:
        kwargs.setdefault("allow_addresses", LOOPBACK)
        transport = HTTPTransport(**kwargs)  # type: ignore[arg-type]
        made.append(transport)
        return transport

    yield make
    for transport in made:
        await transport.aclose()


def pool_of(transport: HTTPTransport) -> ConnectionPool:
    pool = transport._pool
    assert pool is not None
    return pool


# -- keep-alive ---------------------------------------------------------------------------


async def test_sequential_sends_share_one_connection(
    servers: Servers, transports: Transports
) -> None:
    server = await servers()
    transport = transports()
    for n in range(5):
        result = await transport.send(outbound(server.url + f"/hook/{n}"))
        assert (result.ok, result.status_code, result.response_excerpt) == (True, 200, "ok")
    assert server.connections == 1
    assert [r.path for r in server.requests] == [f"/hook/{n}" for n in range(5)]
    assert pool_of(transport).idle_connections == 1


async def test_wire_bytes_are_aiohttps_header_order(
    servers: Servers, transports: Transports
) -> None:
    server = await servers()
    transport = transports()
    message = outbound(server.url + "/a/%7Eb?x=1#frag", custom_headers=(("x-tenant", "acme"),))
    await transport.send(message)
    [request] = server.requests
    assert request.method == "POST" and request.path == "/a/~b?x=1"
    assert [k for k, _ in request.headers] == [
        b"Host",
        b"User-Agent",
        b"Content-Type",
        b"X-Saleor-Event",
        b"X-Saleor-Domain",
        b"X-Saleor-Signature",
        b"Saleor-Event",
        b"Saleor-Domain",
        b"Saleor-Signature",
        b"Saleor-Api-Url",
        b"x-tenant",
        b"Accept",
        b"Accept-Encoding",
        b"Content-Length",
    ]
    assert request.header(b"host") == f"127.0.0.1:{server.port}".encode()
    assert request.header(b"user-agent") == DEFAULT_USER_AGENT.encode()
    assert request.body == b'{"id":1}'


async def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_shown(
    servers: Servers, transports: Transports
) -> None:
    server = await servers()
    transport = transports()
    url = server.url.replace("http://", "http://us%40er:p%3Aw@") + "/hook"
    result = await transport.send(outbound(url))
    assert result.ok
    [request] = server.requests
    assert request.header(b"authorization") == b"Basic dXNAZXI6cDp3"  # us@er:p:w
    assert "p:w" not in repr(result) and "p%3Aw" not in repr(result)
    await server.aclose()
    with pytest.raises(ConnectError) as caught:  # the error names the URL redacted
        await transports().send(outbound(url))
    assert "p%3Aw" not in str(caught.value) and "[secret]@127.0.0.1" in str(caught.value)


async def test_a_server_closing_an_idle_connection_is_not_reused(
    servers: Servers, transports: Transports
) -> None:
    server = await servers(answering(OK, keep_open=False))  # answers, then hangs up
    transport = transports()
    assert (await transport.send(outbound(server.url + "/1"))).ok
    await until(lambda: pool_of(transport).idle_connections == 0, "the client saw the close")
    assert (await transport.send(outbound(server.url + "/2"))).ok
    assert server.connections == 2
    assert [r.path for r in server.requests] == ["/1", "/2"]


async def test_a_kept_alive_connection_lost_mid_request_fails_retryably_and_is_not_resent(
    servers: Servers, transports: Transports
) -> None:
    # The race a pool cannot rule out: the server takes the request on a kept-alive
    # connection and closes without answering. It may have acted on it: no silent resend.
    async def respond(request: Request, writer: asyncio.StreamWriter) -> bool:
        if request.path == "/2":
            return False  # read it, close without a byte
        writer.write(OK)
        return True

    server = await servers(respond)
    transport = transports()
    assert (await transport.send(outbound(server.url + "/1"))).ok
    with pytest.raises(ConnectError) as caught:
        await transport.send(outbound(server.url + "/2"))
    assert caught.value.retryable is True
    assert "kept-alive" in str(caught.value) and "not resent" in str(caught.value)
    assert [r.path for r in server.requests] == ["/1", "/2"]  # /2 arrived once
    assert (await transport.send(outbound(server.url + "/3"))).ok
    assert server.connections == 2


async def test_connection_close_from_the_server_is_honoured(
    servers: Servers, transports: Transports
) -> None:
    answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    server = await servers(answering(answer))  # says close, leaves the socket open
    transport = transports()
    for n in range(3):
        assert (await transport.send(outbound(server.url + f"/{n}"))).ok
    assert server.connections == 3
    await until(lambda: server.client_closed == 3, "the client closed every connection")


async def test_idle_connections_are_closed_after_keepalive_timeout(
    servers: Servers, transports: Transports
) -> None:
    server = await servers()
    transport = transports(keepalive_timeout=0.05)
    assert (await transport.send(outbound(server.url + "/1"))).ok
    await until(lambda: server.client_closed == 1, "the idle connection was closed")
    assert pool_of(transport).idle_connections == 0
    assert (await transport.send(outbound(server.url + "/2"))).ok
    assert server.connections == 2


async def test_keepalive_timeout_zero_closes_after_each_answer(
    servers: Servers, transports: Transports
) -> None:
    server = await servers()
    transport = transports(keepalive_timeout=0)
    for n in range(2):
        assert (await transport.send(outbound(server.url + f"/{n}"))).ok
    assert server.connections == 2


async def test_bytes_arriving_on_an_idle_connection_retire_it(
    servers: Servers, transports: Transports
) -> None:
    async def respond(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(OK)
        if request.path == "/1":
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")  # nobody asked
        return True

    server = await servers(respond)
    transport = transports()
    assert (await transport.send(outbound(server.url + "/1"))).ok
    await until(lambda: server.client_closed == 1, "the client dropped the connection")
    assert (await transport.send(outbound(server.url + "/2"))).ok
    assert server.connections == 2


async def test_aclose_closes_every_connection(servers: Servers, transports: Transports) -> None:
    server = await servers()
    transport = transports()
    await asyncio.gather(*(transport.send(outbound(server.url + f"/{n}")) for n in range(3)))
    opened = server.connections
    assert opened >= 1
    await transport.aclose()
    await until(lambda: server.client_closed == opened, "every connection closed")
    assert (await transport.send(outbound(server.url + "/after"))).ok  # a new pool


async def test_aclose_fails_sends_in_flight_and_waiting_with_connect_errors(
    servers: Servers, transports: Transports
) -> None:
    server = await servers(hang)
    transport = transports(limit=1)
    in_flight = asyncio.create_task(transport.send(outbound(server.url + "/1")))
    await until(lambda: len(server.requests) == 1, "the first request is in flight")
    waiting = asyncio.create_task(transport.send(outbound(server.url + "/2")))
    await asyncio.sleep(0.01)
    await transport.aclose()
    for task in (in_flight, waiting):
        with pytest.raises(ConnectError, match="closed"):
            await task
    await until(lambda: server.client_closed == 1, "the connection was closed")
    assert [r.path for r in server.requests] == ["/1"]


# -- framing and encodings -----------------------------------------------------------------


def chunked(*parts: bytes, trailers: bytes = b"") -> bytes:
    body = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts)
    return body + b"0\r\n" + trailers + b"\r\n"


async def test_chunked_gzip_answer_is_decoded_and_the_connection_reused(
    servers: Servers, transports: Transports
) -> None:
    text = "bonjour, " * 50
    packed = gzip.compress(text.encode())
    answer = (
        b"HTTP/1.1 500 Oops\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked(packed[:10], packed[10:], trailers=b"X-Checksum: 1\r\n")
    )
    server = await servers(answering(answer))
    transport = transports()
    for _ in range(2):
        result = await transport.send(outbound(server.url))
        assert (result.status_code, result.retryable) == (500, True)
        assert result.response_excerpt == text
        assert ("Content-Encoding", "gzip") in result.response_headers
    assert server.connections == 1


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
async def test_deflate_answers_in_both_spellings(
    servers: Servers, transports: Transports, wbits: int
) -> None:
    packer = zlib.compressobj(wbits=wbits)
    packed = packer.compress(b"deflated answer") + packer.flush()
    answer = b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n%s" % (
        len(packed),
        packed,
    )
    server = await servers(answering(answer))
    result = await transports().send(outbound(server.url))
    assert result.response_excerpt == "deflated answer"


async def test_interim_1xx_answers_are_skipped(servers: Servers, transports: Transports) -> None:
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 7\r\n\r\ncreated"
    )
    server = await servers(answering(answer))
    transport = transports()
    for _ in range(2):
        result = await transport.send(outbound(server.url))
        assert (result.status_code, result.response_excerpt) == (201, "created")
        assert [k for k, _ in result.response_headers] == ["Content-Length"]
    assert server.connections == 1


async def test_http_1_0_answers(servers: Servers, transports: Transports) -> None:
    plain = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
    kept = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nkept"
    until_close = b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n\r\nno such hook"

    async def respond(request: Request, writer: asyncio.StreamWriter) -> bool:
        if request.path.startswith("/plain"):
            writer.write(plain)
            return True  # HTTP/1.0 without keep-alive: the client must not reuse it
        if request.path.startswith("/kept"):
            writer.write(kept)
            return True
        writer.write(until_close)
        return False  # the body ends when the connection does

    server = await servers(respond)
    transport = transports()
    for path in ("/plain1", "/plain2"):
        assert (await transport.send(outbound(server.url + path))).response_excerpt == "ok"
    assert server.connections == 2
    for path in ("/kept1", "/kept2"):
        assert (await transport.send(outbound(server.url + path))).response_excerpt == "kept"
    assert server.connections == 3
    result = await transport.send(outbound(server.url + "/eof"))
    assert (result.status_code, result.response_excerpt, result.retryable) == (
        404,
        "no such hook",
        False,
    )


async def test_head_and_no_body_statuses_read_no_body(
    servers: Servers, transports: Transports
) -> None:
    async def respond(request: Request, writer: asyncio.StreamWriter) -> bool:
        status = b"204 No Content" if request.method == "POST" else b"200 OK"
        writer.write(b"HTTP/1.1 %s\r\nContent-Length: 100\r\n\r\n" % status)
        return True

    server = await servers(respond)
    transport = transports()
    result = await transport.send(outbound(server.url + "/hook"))
    assert (result.status_code, result.response_excerpt) == (204, "")
    answer = await transport.request("HEAD", server.url + "/manifest")
    assert (answer.status, answer.body, answer.header("content-length")) == (200, b"", "100")
    assert server.connections == 1


# -- bodies over the cap ---------------------------------------------------------------------


async def test_a_huge_body_is_cut_to_the_excerpt_and_its_connection_closed(
    servers: Servers, transports: Transports
) -> None:
    size = 8 * 1024 * 1024
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size

    async def respond(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer)
        with contextlib.suppress(ConnectionError):
            for _ in range(size // 65536):
                writer.write(b"x" * 65536)
                await writer.drain()
        return True

    server = await servers(respond)
    transport = transports()
    for _ in range(2):
        result = await transport.send(outbound(server.url))
        assert result.ok
        assert result.response_excerpt == "x" * _EXCERPT_LIMIT + "..."
    assert server.connections == 2  # never reused: draining 8 MiB is not worth a connection
    await until(lambda: server.client_closed >= 1, "the client closed the first connection")


async def test_a_body_a_little_over_the_cap_is_drained_and_reused(
    servers: Servers, transports: Transports
) -> None:
    body = b"y" * (DRAIN_LIMIT // 2)
    server = await servers(
        answering(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    )
    transport = transports()
    for _ in range(2):
        result = await transport.send(outbound(server.url))
        assert result.response_excerpt == "y" * _EXCERPT_LIMIT + "..."
    assert server.connections == 1


async def test_sync_answers_are_read_up_to_body_limit(
    servers: Servers, transports: Transports
) -> None:
    body = b'{"ok":true,"pad":"' + b"z" * 20_000 + b'"}'
    packed = gzip.compress(body)
    server = await servers(
        answering(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
            % (len(packed), packed)
        )
    )
    transport = transports()
    whole = await transport.send(outbound(server.url, body_limit=100_000))
    assert whole.body == body
    cut = await transport.send(outbound(server.url, body_limit=10_000))
    assert cut.body == body[:10_000]
    assert (await transport.send(outbound(server.url))).body is None


async def test_request_refuses_an_answer_over_its_limit(
    servers: Servers, transports: Transports
) -> None:
    server = await servers(
        answering(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"a" * 300))
    )
    transport = transports()
    with pytest.raises(TransportError, match="larger than 299 bytes") as caught:
        await transport.request("GET", server.url, limit=299)
    assert caught.value.retryable is False
    assert (await transport.request("GET", server.url, limit=300)).body == b"a" * 300


def split_answers() -> dict[str, tuple[bytes, int, str]]:
    packed = gzip.compress(b"split across many reads " * 8)
    return {
        "length": (
            b"HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 11\r\n\r\nhello world",
            200,
            "hello world",
        ),
        "chunked-gzip-trailers": (
            b"HTTP/1.1 503 Busy\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunked(packed[:7], packed[7:30], packed[30:], trailers=b"X-T: 1\r\nX-U: 2\r\n"),
            503,
            "split across many reads " * 8,
        ),
        "interim-then-final": (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok",
            202,
            "ok",
        ),
    }


@pytest.mark.parametrize("name", list(split_answers()))
@pytest.mark.parametrize("seed", [1, 2])
async def test_answers_split_across_many_reads(
    servers: Servers, transports: Transports, name: str, seed: int
) -> None:
    answer, status, text = split_answers()[name]
    rng = random.Random(seed)

    async def respond(request: Request, writer: asyncio.StreamWriter) -> bool:
        at = 0
        while at < len(answer):
            step = rng.randint(1, 9)
            writer.write(answer[at : at + step])
            at += step
            await writer.drain()
            await asyncio.sleep(0.001)  # separate TCP segments, so separate reads
        return True

    server = await servers(respond)
    transport = transports()
    for _ in range(2):
        result = await transport.send(outbound(server.url))
        assert (result.status_code, result.response_excerpt) == (status, text)
    assert server.connections == 1


# -- broken answers ------------------------------------------------------------------------

MALFORMED = {
    "status-garbage": b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",
    "not-http": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "http2-version": b"HTTP/2 200\r\ncontent-length: 0\r\n\r\n",
    "ff-in-status": b"HTTP/1.1 \xff00 OK\r\nContent-Length: 0\r\n\r\n",
    "ff-in-name": b"HTTP/1.1 200 OK\r\nX-\xffBad: 1\r\nContent-Length: 0\r\n\r\n",
    "nul-in-value": b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 0\r\n\r\n",
    "bare-cr": b"HTTP/1.1 200 OK\r\nX-Bad: a\rb\r\nContent-Length: 0\r\n\r\n",
    "no-colon": b"HTTP/1.1 200 OK\r\nX-Bad\r\nContent-Length: 0\r\n\r\n",
    "space-before-colon": b"HTTP/1.1 200 OK\r\nX-Bad : 1\r\nContent-Length: 0\r\n\r\n",
    "folded-header": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 0\r\n\r\n",
    "bad-length": b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok",
    "two-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!",
    "bad-chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",
    "ff-chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\xff\r\n",
    "chunk-no-crlf": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n",
    "unknown-transfer-coding": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: br\r\n\r\nok",
    "bad-gzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope",
    "switching-protocols": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
}


@pytest.mark.parametrize("answer", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_answers_are_typed_errors_and_close_the_connection(
    servers: Servers, transports: Transports, answer: bytes
) -> None:
    async def respond(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer if request.path == "/bad" else OK)
        return True

    server = await servers(respond)
    transport = transports()
    assert (await transport.send(outbound(server.url + "/warm"))).ok
    with pytest.raises(TransportError) as caught:
        await transport.send(outbound(server.url + "/bad"))
    assert type(caught.value) is TransportError
    assert "bad answer from" in str(caught.value)
    assert caught.value.retryable is True
    await until(lambda: server.client_closed == 1, "the broken connection was closed")
    assert pool_of(transport).idle_connections == 0
    assert (await transport.send(outbound(server.url + "/after"))).ok
    assert server.connections == 2


async def test_oversized_header_blocks_are_refused(
    servers: Servers, transports: Transports
) -> None:
    many = b"".join(b"X-H%d: v\r\n" % n for n in range(200))
    answers = {
        "/big": b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * HEAD_LIMIT + b"\r\n\r\n",
        "/many": b"HTTP/1.1 200 OK\r\n" + many + b"Content-Length: 0\r\n\r\n",
    }

    async def respond(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(answers[request.path])
        return True

    server = await servers(respond)
    transport = transports()
    with pytest.raises(TransportError, match="over 65,536 bytes"):
        await transport.send(outbound(server.url + "/big"))
    with pytest.raises(TransportError, match="more than 128 header lines"):
        await transport.send(outbound(server.url + "/many"))
    await until(lambda: server.client_closed == 2, "both connections closed")


TRUNCATED = {
    "mid-status-line": (b"HTTP/1.1 20", TransportError),
    "mid-headers": (b"HTTP/1.1 200 OK\r\nContent-Le", TransportError),
    "mid-body": (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", TransportError),
    "mid-chunk": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", TransportError),
    "nothing": (b"", ConnectError),
}


@pytest.mark.parametrize(("answer", "kind"), TRUNCATED.values(), ids=TRUNCATED.keys())
async def test_truncated_answers_are_typed_errors(
    servers: Servers, transports: Transports, answer: bytes, kind: type[TransportError]
) -> None:
    server = await servers(answering(answer, keep_open=False))
    with pytest.raises(kind) as caught:
        await transports().send(outbound(server.url))
    assert type(caught.value) is kind
    assert caught.value.retryable is True


async def test_header_injection_is_refused_before_anything_is_sent(
    servers: Servers, transports: Transports
) -> None:
    server = await servers()
    transport = transports()
    for custom in (("x-a", "1\r\nX-Injected: 2"), ("x-a", "nul\x00"), ("x-a\r\nx-b", "1")):
        with pytest.raises(TransportError, match="refused to send header") as caught:
            await transport.send(outbound(server.url, custom_headers=(custom,)))
        assert caught.value.retryable is False
        assert "X-Injected: 2" not in str(caught.value) and "nul" not in str(caught.value)
    with pytest.raises(TransportError):
        await transport.send(outbound(server.url, api_url="https://x/\r\nX-Injected: 1"))
    assert server.requests == []
    with pytest.raises(ConfigurationError) as refused:
        HTTPTransport(user_agent="ua\r\nX-Injected: 1")
    assert refused.value.field == "user_agent"
    for name in ("Content-Length", "Host", "Transfer-Encoding", "connection"):
        with pytest.raises(ConfigurationError):
            HTTPTransport(delivery_id_header=name)
    with pytest.raises(ConfigurationError, match="headers:"):
        await transport.request("POST", server.url, headers=[("Content-Length", "5")])


# -- timeouts and cancellation ---------------------------------------------------------------


async def hang(request: Request, writer: asyncio.StreamWriter) -> bool:
    return await request.until_client_closes()


async def test_a_hanging_receiver_times_out_and_its_connection_is_closed(
    servers: Servers, transports: Transports
) -> None:
    server = await servers(hang)
    transport = transports()
    with pytest.raises(DeliveryTimeoutError) as caught:
        await transport.send(outbound(server.url, timeouts=Timeouts(connect=0.2, total=0.2)))
    assert caught.value.retryable is True
    assert "0.2 s" in str(caught.value)
    await until(lambda: server.client_closed == 1, "the client closed the hanging connection")
    assert pool_of(transport).open_connections == 0


async def test_a_receiver_hanging_mid_body_times_out(
    servers: Servers, transports: Transports
) -> None:
    async def respond(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()
        return await request.until_client_closes()

    server = await servers(respond)
    with pytest.raises(DeliveryTimeoutError):
        await transports().send(outbound(server.url, timeouts=Timeouts(connect=0.2, total=0.2)))
    await until(lambda: server.client_closed == 1, "the client closed the connection")


async def test_cancelling_mid_answer_closes_the_connection(
    servers: Servers, transports: Transports
) -> None:
    sent_half = asyncio.Event()

    async def respond(request: Request, writer: asyncio.StreamWriter) -> bool:
        if request.path == "/slow":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
            await writer.drain()
            sent_half.set()
            return await request.until_client_closes()
        writer.write(OK)
        return True

    server = await servers(respond)
    transport = transports()
    assert (await transport.send(outbound(server.url + "/warm"))).ok
    task = asyncio.create_task(transport.send(outbound(server.url + "/slow")))
    await sent_half.wait()
    await asyncio.sleep(0.01)  # let the client read the half it was sent
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: server.client_closed == 1, "the half-read connection was closed")
    pool = pool_of(transport)
    assert (pool.idle_connections, pool.open_connections) == (0, 0)
    assert (await transport.send(outbound(server.url + "/after"))).ok
    assert server.connections == 2


# -- connection limits -----------------------------------------------------------------------


def holding(release: asyncio.Event) -> Respond:
    async def respond(request: Request, writer: asyncio.StreamWriter) -> bool:
        await release.wait()
        writer.write(OK)
        return True

    return respond


async def test_limit_per_host_makes_callers_wait(servers: Servers, transports: Transports) -> None:
    release = asyncio.Event()
    server = await servers(holding(release))
    transport = transports(limit_per_host=2)
    sends = [asyncio.create_task(transport.send(outbound(server.url + f"/{n}"))) for n in range(6)]
    await until(lambda: len(server.requests) == 2, "two requests in flight")
    await asyncio.sleep(0.05)  # give a wrong client the chance to open a third connection
    assert (server.connections, len(server.requests)) == (2, 2)
    release.set()
    results = await asyncio.gather(*sends)
    assert all(r.ok for r in results)
    assert server.connections == 2 and server.most_active == 2


async def test_limit_caps_connections_across_hosts(
    servers: Servers, transports: Transports
) -> None:
    release = asyncio.Event()
    busy = {"now": 0, "most": 0}

    async def respond(request: Request, writer: asyncio.StreamWriter) -> bool:
        busy["now"] += 1
        busy["most"] = max(busy["most"], busy["now"])
        await release.wait()
        busy["now"] -= 1
        writer.write(OK)
        return True

    first = await servers(respond)
    second = await servers(respond)
    transport = transports(limit=3)
    sends = [
        asyncio.create_task(transport.send(outbound(server.url + f"/{n}")))
        for n in range(4)
        for server in (first, second)
    ]
    await until(lambda: len(first.requests) + len(second.requests) == 3, "three in flight")
    await asyncio.sleep(0.05)  # give a wrong client the chance to open a fourth connection
    assert first.connections + second.connections == 3
    assert pool_of(transport).open_connections == 3
    release.set()
    assert all(r.ok for r in await asyncio.gather(*sends))
    assert busy["most"] == 3
    assert len(first.requests) == len(second.requests) == 4
    # A waiter for one host may close the other host's idle connection to make room.
    assert pool_of(transport).open_connections <= 3


async def test_at_the_total_limit_another_hosts_idle_connection_makes_room(
    servers: Servers, transports: Transports
) -> None:
    first = await servers()
    second = await servers()
    transport = transports(limit=1)
    assert (await transport.send(outbound(first.url))).ok  # stays idle in the pool
    assert (await transport.send(outbound(second.url))).ok  # no deadlock: it is closed
    await until(lambda: first.client_closed == 1, "the idle connection made room")
    assert pool_of(transport).open_connections == 1


async def test_a_cancelled_waiter_gives_its_turn_away(
    servers: Servers, transports: Transports
) -> None:
    release = asyncio.Event()
    server = await servers(holding(release))
    transport = transports(limit=1)
    holder = asyncio.create_task(transport.send(outbound(server.url + "/holder")))
    await until(lambda: len(server.requests) == 1, "the holder is in flight")
    waiting = asyncio.create_task(transport.send(outbound(server.url + "/cancelled")))
    last = asyncio.create_task(transport.send(outbound(server.url + "/last")))
    await asyncio.sleep(0.01)
    waiting.cancel()
    release.set()
    assert (await holder).ok and (await last).ok
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert [r.path for r in server.requests] == ["/holder", "/last"]


async def test_a_wait_for_a_connection_counts_against_the_total_timeout(
    servers: Servers, transports: Transports
) -> None:
    server = await servers(hang)
    transport = transports(limit=1)
    short = Timeouts(connect=0.1, total=0.2)
    first = asyncio.create_task(transport.send(outbound(server.url + "/1", timeouts=short)))
    await until(lambda: len(server.requests) == 1, "the first request is in flight")
    with pytest.raises(DeliveryTimeoutError):
        await transport.send(outbound(server.url + "/2", timeouts=short))
    with pytest.raises(DeliveryTimeoutError):
        await first


# -- DNS, TLS, real servers --------------------------------------------------------------------


class CountingResolver(AbstractResolver):
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[ResolveResult]:
        self.lookups.append(host)
        await asyncio.sleep(0)
        return [
            ResolveResult(hostname=host, host=a, port=port, family=2, proto=0, flags=0)
            for a in self.answers[host]
        ]

    async def close(self) -> None:
        pass


async def test_dns_answers_are_cached_and_concurrent_lookups_shared(
    servers: Servers, transports: Transports
) -> None:
    server = await servers()
    resolver = CountingResolver({"hooks.example.test": ["127.0.0.1"]})
    transport = transports(resolver=resolver, keepalive_timeout=0)  # a new connection each
    url = f"http://hooks.example.test:{server.port}/hook"
    results = await asyncio.gather(*(transport.send(outbound(url)) for _ in range(5)))
    assert all(r.ok for r in results)
    assert (await transport.send(outbound(url))).ok
    assert resolver.lookups == ["hooks.example.test"]
    assert server.connections == 6
    assert server.requests[0].header(b"host") == f"hooks.example.test:{server.port}".encode()


async def test_only_checked_addresses_are_cached_and_connected_to(
    servers: Servers, transports: Transports
) -> None:
    server = await servers()
    resolver = CountingResolver({"mixed.test": ["10.1.1.1", "127.0.0.1"], "bad.test": ["10.0.0.1"]})
    transport = transports(resolver=resolver)
    assert (await transport.send(outbound(f"http://mixed.test:{server.port}/"))).ok
    for _ in range(2):  # refusals are not cached: each send asks (and is refused) again
        with pytest.raises(BlockedAddressError):
            await transport.send(outbound(f"http://bad.test:{server.port}/"))
    assert resolver.lookups == ["mixed.test", "bad.test", "bad.test"]
    assert server.connections == 1


async def test_tls_connections_are_verified_and_kept_alive(
    server_factory: ReceiverFactory, server_ssl: ssl.SSLContext, ca_file: Path
) -> None:
    receiver: Receiver = await server_factory(server_ssl)
    peers: list[str] = []

    def remember(request: web.Request, record: Received) -> web.Response:
        assert request.transport is not None
        peers.append(str(request.transport.get_extra_info("peername")))
        return web.Response(text="secure", headers={"Content-Type": "text/plain"})

    receiver.handler = remember
    transport = HTTPTransport(allow_addresses=LOOPBACK, ca_bundle=ca_file)
    try:
        for _ in range(3):
            result = await transport.send(outbound(receiver.url + "/tls"))
            assert (result.ok, result.response_excerpt) == (True, "secure")
        localhost = receiver.url.replace("127.0.0.1", "localhost")  # the cert names both
        assert (await transport.send(outbound(localhost + "/tls"))).ok
    finally:
        await transport.aclose()
    assert len(set(peers[:3])) == 1
    assert len(set(peers)) == 2


async def test_aiohttp_servers_chunked_and_compressed_answers(receiver: Receiver) -> None:
    async def stream(request: web.Request, record: Received) -> web.StreamResponse:
        response = web.StreamResponse(status=202, headers={"Content-Type": "text/plain"})
        response.enable_compression()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for n in range(3):
            await response.write(f"part {n};".encode())
        await response.write_eof()
        return response

    receiver.handler = stream
    transport = HTTPTransport(allow_addresses=LOOPBACK)
    try:
        for _ in range(2):
            result = await transport.send(outbound(receiver.url + "/stream"))
            assert (result.status_code, result.response_excerpt) == (202, "part 0;part 1;part 2;")
        assert pool_of(transport).idle_connections == 1
    finally:
        await transport.aclose()


# -- the attempt record ------------------------------------------------------------------------


def record_headers_before(headers: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """record_headers as it was before the fast path (the reference it must equal)."""
    out = []
    for key, value in sanitize_headers(headers):
        lower = key.lower()
        if lower in SENSITIVE_HEADERS or lower.startswith("authorization"):
            value = REDACTED
        out.append((key, value))
    return tuple(out)


header_text = st.one_of(
    st.sampled_from(
        ["Saleor-Signature", "authorization-x", "AUTHORIZATION", "Set-Cookie", "X-Trace", "ok"]
    ),
    st.text(max_size=20),
    st.text(alphabet="ab\x00\x7f\ud800é\t", max_size=5),
    st.just("v" * 9000),
)


@given(st.lists(st.tuples(header_text, header_text), max_size=6))
@settings(max_examples=300, deadline=None)
def test_record_headers_equals_the_reference(headers: list[tuple[str, str]]) -> None:
    assert record_headers(headers) == record_headers_before(headers)
    assert record_headers(tuple(headers)) == record_headers_before(headers)


# -- generated answers ---------------------------------------------------------------------

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
OWN_FRAMING = {"content-length", "transfer-encoding", "connection", "content-encoding"}


@st.composite
def generated_answers(draw: st.DrawFn) -> tuple[bytes, int, list[tuple[str, str]], bytes]:
    """A well-formed answer, and what the client must make of it."""
    status = draw(st.sampled_from([200, 201, 202, 299, 400, 404, 418, 500, 503, 599]))
    names = st.text(TOKEN_CHARS, min_size=1, max_size=12).filter(
        lambda n: n.lower() not in OWN_FRAMING
    )
    values = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30)
    headers = draw(st.lists(st.tuples(names, values), max_size=6))
    body = draw(st.binary(max_size=3000))
    coding = draw(st.sampled_from(["identity", "gzip", "deflate"]))
    wire = body
    if coding == "gzip":
        wire = gzip.compress(body)
    elif coding == "deflate":
        wire = zlib.compress(body)
    framing = [f"{name}: {value}" for name, value in headers]
    sent = list(headers)
    if coding != "identity":
        framing.append(f"Content-Encoding: {coding}")
        sent.append(("Content-Encoding", coding))
    if draw(st.booleans()):
        framing.append(f"Content-Length: {len(wire)}")
        sent.append(("Content-Length", str(len(wire))))
        payload = wire
    else:
        framing.append("Transfer-Encoding: chunked")
        sent.append(("Transfer-Encoding", "chunked"))
        cuts = sorted(draw(st.lists(st.integers(0, len(wire)), max_size=5)))
        parts = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
        payload = chunked(
            *[p for p in parts if p], trailers=draw(st.sampled_from([b"", b"T: 1\r\n"]))
        )
    head = f"HTTP/1.1 {status} Whatever\r\n" + "".join(f"{line}\r\n" for line in framing) + "\r\n"
    return head.encode() + payload, status, sent, body


@given(generated_answers(), st.randoms(use_true_random=False))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_answers_parse_to_what_was_sent(
    answer: tuple[bytes, int, list[tuple[str, str]], bytes], rng: random.Random
) -> None:
    data, status, headers, body = answer

    async def respond(request: Request, writer: asyncio.StreamWriter) -> bool:
        at = 0
        while at < len(data):  # in pieces, each its own write
            step = rng.randint(1, 400)
            writer.write(data[at : at + step])
            at += step
            await writer.drain()
        return True

    async def roundtrip() -> None:
        server = WireServer(respond)
        await server.start()
        transport = HTTPTransport(allow_addresses=LOOPBACK)
        try:
            for _ in range(2):
                result = await transport.send(outbound(server.url, body_limit=10_000))
                assert result.status_code == status
                assert list(result.response_headers) == headers
                assert result.body == body
            assert server.connections == 1
        finally:
            await transport.aclose()
            await server.aclose()

    asyncio.run(roundtrip())
