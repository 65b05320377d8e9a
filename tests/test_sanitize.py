"""Attempt fields any store can keep: sanitize_text / sanitize_headers, and the HTTP transport
recording a receiver's NUL bytes and undecodable header bytes as valid text."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhookkit._sanitize import REPLACEMENT, sanitize_headers, sanitize_text
from webhookkit.transports.base import OutboundMessage
from webhookkit.transports.http import HTTPTransport

ALLOWED_CONTROLS = {"\t", "\n", "\r"}
NASTY = ["\x00", "a\x00b", "\udcff", "\ud800x", "\x1b[31m", "\x7f", "\ufffe", "é\x00\udfff", ""]


def storable(text: str) -> bool:
    """True if ``text`` is valid UTF-8 text without NUL or C0 controls other than tab/LF/CR."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(ord(c) < 0x20 and c not in ALLOWED_CONTROLS for c in text)


@given(st.text(alphabet=st.characters(codec=None)), st.integers(min_value=0, max_value=64))
def test_sanitized_text_is_storable_and_bounded(text: str, limit: int) -> None:
    out = sanitize_text(text, limit)
    assert storable(out)
    assert len(out) <= limit + 3
    if len(text) <= limit:
        assert len(out) == len(text)  # one replacement per bad character, nothing dropped
    else:
        assert out.endswith("...")


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"])))
def test_clean_text_is_unchanged(text: str) -> None:
    assert sanitize_text(text, 10_000) == text[:10_000] + ("..." if len(text) > 10_000 else "")


@given(st.binary())
def test_bytes_are_decoded_with_replacement(raw: bytes) -> None:
    out = sanitize_text(raw, 10_000)
    assert storable(out)
    if b"\x00" not in raw:
        try:
            expected = raw.decode("utf-8")
        except UnicodeDecodeError:
            return
        if storable(expected):
            assert out == expected[:10_000] + ("..." if len(expected) > 10_000 else "")


@given(
    st.lists(
        st.tuples(
            st.one_of(st.text(), st.binary()),
            st.one_of(st.text(), st.binary()),
        ),
        max_size=8,
    )
)
def test_sanitized_headers_are_storable_pairs(pairs: list[tuple[str | bytes, str | bytes]]) -> None:
    out = sanitize_headers(pairs)
    assert len(out) == len(pairs)
    for name, value in out:
        assert isinstance(name, str) and isinstance(value, str)
        assert storable(name) and storable(value)


def test_known_bad_characters_become_the_replacement_character() -> None:
    assert sanitize_text("a\x00b", 10) == f"a{REPLACEMENT}b"
    assert sanitize_text("\udcff", 10) == REPLACEMENT
    assert sanitize_text(b"\xff\x00ok", 10) == f"{REPLACEMENT}{REPLACEMENT}ok"
    assert sanitize_text("tab\tnl\ncr\r", 20) == "tab\tnl\ncr\r"
    assert sanitize_text("abcdef", 3) == "abc..."
    assert sanitize_headers([(b"X-\xff", "v\x00")]) == ((f"X-{REPLACEMENT}", f"v{REPLACEMENT}"),)


def test_sanitized_text_is_accepted_by_sqlite() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (v TEXT NOT NULL)")
    for text in NASTY:
        db.execute("INSERT INTO t VALUES (?)", (sanitize_text(text, 100),))
    rows = [r[0] for r in db.execute("SELECT v FROM t")]
    assert rows == [sanitize_text(text, 100) for text in NASTY]


async def test_sanitized_text_is_accepted_by_postgresql(pg_dsn: str) -> None:
    connection = await asyncpg.connect(pg_dsn)
    try:
        await connection.execute("CREATE TABLE t (n int, v text NOT NULL)")
        with pytest.raises(asyncpg.PostgresError):  # the reason sanitising exists
            await connection.execute("INSERT INTO t VALUES (0, $1)", "a\x00b")
        for n, text in enumerate(NASTY, start=1):
            await connection.execute("INSERT INTO t VALUES ($1, $2)", n, sanitize_text(text, 100))
        rows = await connection.fetch("SELECT v FROM t ORDER BY n")
    finally:
        await connection.close()
    assert [r["v"] for r in rows] == [sanitize_text(text, 100) for text in NASTY]


# -- the HTTP transport records poison answers as storable text ------------------------------


@pytest.fixture
async def raw_server() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A loopback server that answers every request with raw bytes an aiohttp server would
    never send: a 0xFF byte and a NUL in headers, NUL and invalid UTF-8 in the body."""
    requests: list[bytes] = []
    body = b"bad \x00 body \xff\xfe end"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        requests.append(head)
        writer.write(
            b"HTTP/1.1 503 Service Unavailable\r\n"
            b"X-Raw: caf\xe9 \xff\r\n"
            b"X-Latin: \xc3\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n"
            b"Connection: close\r\n\r\n" + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", requests
    finally:
        server.close()
        await server.wait_closed()


def _message(url: str) -> OutboundMessage:
    return OutboundMessage(
        url=url,
        body=b"{}",
        event="order_created",
        domain="shop.example.com",
        api_url="https://shop.example.com/graphql/",
    )


async def test_http_transport_records_poison_answers_as_storable_text(
    raw_server: tuple[str, list[bytes]],
) -> None:
    url, requests = raw_server
    transport = HTTPTransport(allow_addresses=["127.0.0.1/32"])
    try:
        result = await transport.send(_message(f"{url}/hook"))
    finally:
        await transport.aclose()
    assert len(requests) == 1
    assert result.status_code == 503 and result.retryable
    assert storable(result.response_excerpt)
    assert result.response_excerpt.startswith(f"bad {REPLACEMENT} body ")
    headers = dict(result.response_headers)
    for name, value in result.response_headers:
        assert storable(name) and storable(value)
    assert headers["X-Raw"].startswith("caf")
    assert REPLACEMENT in headers["X-Raw"]
    assert REPLACEMENT in headers["X-Latin"]


async def test_guarded_request_sanitises_headers_but_keeps_the_body(
    raw_server: tuple[str, list[bytes]],
) -> None:
    url, _ = raw_server
    transport = HTTPTransport(allow_addresses=["127.0.0.1/32"])
    try:
        answer = await transport.request("GET", f"{url}/manifest")
    finally:
        await transport.aclose()
    assert answer.body == b"bad \x00 body \xff\xfe end"
    assert all(storable(n) and storable(v) for n, v in answer.headers)
