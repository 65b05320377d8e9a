"""Receiver-side verifiers: HMAC, JWKS (fetch, cache, refetch on unknown kid), Standard Webhooks."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import pytest

from webhookkit import InvalidKeyError
from webhookkit.exceptions import (
    JWKSFetchError,
    MalformedSignatureError,
    SignatureMismatchError,
    TimestampError,
    UnknownKeyError,
)
from webhookkit.signing import (
    HMACVerifier,
    JWKSVerifier,
    JWSSigner,
    StandardWebhooksSigner,
    StandardWebhooksVerifier,
    generate_key,
    hmac_signature,
    jwks_url_for,
    new_keypair,
    new_secret,
)

from .conftest import JWKSServer

BODY = b'{"checkout":{"id":"Q2hlY2tvdXQ6MQ=="}}'


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- HMAC ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["Saleor-Signature", "saleor-signature", "SALEOR-SIGNATURE", "X-Saleor-Signature"]
)
async def test_hmac_verifier_accepts_any_header_casing(name: str) -> None:
    await HMACVerifier("s3cret").verify(BODY, {name: hmac_signature(BODY, "s3cret")})


async def test_hmac_verifier_accepts_any_of_several_secrets_and_uppercase_hex() -> None:
    verifier = HMACVerifier(["new", "old"])
    await verifier.verify(BODY, {"Saleor-Signature": hmac_signature(BODY, "old").upper()})
    assert "old" not in repr(verifier)


@pytest.mark.parametrize(
    ("headers", "error", "reason"),
    [
        ({}, MalformedSignatureError, "missing"),
        ({"Saleor-Signature": "abc"}, MalformedSignatureError, "64 hex"),
        ({"Saleor-Signature": "g" * 64}, MalformedSignatureError, "64 hex"),
        ({"Saleor-Signature": "a" * 65}, MalformedSignatureError, "64 hex"),
        ({"Saleor-Signature": hmac_signature(BODY, "other")}, SignatureMismatchError, "match"),
        (
            {"Saleor-Signature": hmac_signature(BODY + b" ", "s3cret")},
            SignatureMismatchError,
            "match",
        ),
    ],
    ids=["missing", "short", "not-hex", "long", "wrong-secret", "other-body"],
)
async def test_hmac_verifier_failures_say_which(
    headers: dict[str, str], error: type[Exception], reason: str
) -> None:
    with pytest.raises(error, match=reason):
        await HMACVerifier("s3cret").verify(BODY, headers)


def test_hmac_verifier_needs_a_secret() -> None:
    with pytest.raises(InvalidKeyError):
        HMACVerifier([])
    with pytest.raises(InvalidKeyError):
        HMACVerifier("")


# -- JWKS ------------------------------------------------------------------------------------


async def test_jwks_is_fetched_once_and_cached(jwks_server: JWKSServer) -> None:
    signature = JWSSigner(jwks_server.keys).sign(BODY)
    verifier = JWKSVerifier(jwks_server.url)
    for _ in range(5):
        await verifier.verify(BODY, {"saleor-signature": signature})
    assert jwks_server.hits == 1
    assert verifier.fetches == 1


async def test_concurrent_first_requests_share_one_fetch(jwks_server: JWKSServer) -> None:
    signature = JWSSigner(jwks_server.keys).sign(BODY)
    verifier = JWKSVerifier(jwks_server.url)
    await asyncio.gather(
        *(verifier.verify(BODY, {"Saleor-Signature": signature}) for _ in range(20))
    )
    assert jwks_server.hits == 1


async def test_unknown_kid_refetches_once_then_waits_for_the_interval(
    jwks_server: JWKSServer,
) -> None:
    ticker = Ticker()
    signer = JWSSigner(jwks_server.keys)
    verifier = JWKSVerifier(jwks_server.url, refetch_interval=30, monotonic=ticker)
    await verifier.verify(BODY, {"Saleor-Signature": signer.sign(BODY)})
    assert jwks_server.hits == 1

    # The sender rotates; the first signature by the new key makes the verifier look again.
    new = generate_key("RS256")
    jwks_server.keys.add(new)
    jwks_server.keys.activate(new.kid)
    ticker.now += 31
    await verifier.verify(BODY, {"Saleor-Signature": signer.sign(BODY)})
    assert jwks_server.hits == 2

    # Forged kids cannot make it hammer the sender: within the interval no new fetch.
    stranger = JWSSigner(generate_key("RS256")).sign(BODY)
    ticker.now += 5
    for _ in range(3):
        with pytest.raises(UnknownKeyError, match="no usable key"):
            await verifier.verify(BODY, {"Saleor-Signature": stranger})
    assert jwks_server.hits == 2
    ticker.now += 30
    with pytest.raises(UnknownKeyError):
        await verifier.verify(BODY, {"Saleor-Signature": stranger})
    assert jwks_server.hits == 3


async def test_cache_expires_after_cache_ttl_and_survives_a_failed_refresh(
    jwks_server: JWKSServer,
) -> None:
    ticker = Ticker()
    signature = JWSSigner(jwks_server.keys).sign(BODY)
    verifier = JWKSVerifier(jwks_server.url, refetch_interval=1, cache_ttl=60, monotonic=ticker)
    await verifier.verify(BODY, {"Saleor-Signature": signature})
    ticker.now += 59
    await verifier.verify(BODY, {"Saleor-Signature": signature})
    assert jwks_server.hits == 1
    ticker.now += 2
    jwks_server.status = 500
    await verifier.verify(BODY, {"Saleor-Signature": signature})  # stale keys still serve
    assert jwks_server.hits == 2


async def test_rotation_without_publishing_first_heals_at_the_next_delivery(
    jwks_server: JWKSServer,
) -> None:
    ticker = Ticker()
    verifier = JWKSVerifier(jwks_server.url, monotonic=ticker)  # the defaults
    await verifier.verify(BODY, {"Saleor-Signature": JWSSigner(jwks_server.keys).sign(BODY)})
    # The sender swaps keys at once: the old key is gone, the new one signs immediately.
    old = jwks_server.keys.active.kid
    new = generate_key("RS256")
    jwks_server.keys.add(new)
    jwks_server.keys.activate(new.kid)
    jwks_server.keys.remove(old)
    ticker.now += 1  # Saleor's next delivery comes seconds later, past the 1 s floor
    await verifier.verify(BODY, {"Saleor-Signature": JWSSigner(jwks_server.keys).sign(BODY)})
    assert jwks_server.hits == 2


async def test_unknown_kids_refetch_at_most_once_per_second_and_never_concurrently() -> None:
    ticker = Ticker()
    signer = JWSSigner(generate_key("EdDSA"))
    document = json.dumps(signer.jwks()).encode()
    calls: list[str] = []
    running = 0
    overlap = False

    async def fetch(url: str) -> bytes:
        nonlocal running, overlap
        calls.append(url)
        running += 1
        overlap |= running > 1
        await asyncio.sleep(0.01)
        running -= 1
        return document

    verifier = JWKSVerifier(
        "https://shop.example.com/.well-known/jwks.json", fetch=fetch, monotonic=ticker
    )
    await verifier.verify(BODY, {"Saleor-Signature": signer.sign(BODY)})
    forged = JWSSigner(generate_key("EdDSA")).sign(BODY)
    ticker.now += 1
    results = await asyncio.gather(
        *(verifier.verify(BODY, {"Saleor-Signature": forged}) for _ in range(20)),
        return_exceptions=True,
    )
    assert all(isinstance(r, UnknownKeyError) for r in results)
    assert len(calls) == 2 and not overlap
    ticker.now += 0.5
    with pytest.raises(UnknownKeyError):
        await verifier.verify(BODY, {"Saleor-Signature": forged})
    assert len(calls) == 2  # within the floor: no fetch
    ticker.now += 0.5
    with pytest.raises(UnknownKeyError):
        await verifier.verify(BODY, {"Saleor-Signature": forged})
    assert len(calls) == 3
    assert calls == ["https://shop.example.com/.well-known/jwks.json"] * 3


@pytest.mark.parametrize("raised", [RuntimeError("boom"), OSError("down"), TimeoutError()])
async def test_a_failing_fetch_function_gives_jwks_fetch_error(raised: Exception) -> None:
    async def fetch(url: str) -> bytes:
        raise raised

    signer = JWSSigner(generate_key("EdDSA"))
    verifier = JWKSVerifier("https://shop.example.com/jwks.json", fetch=fetch)
    with pytest.raises(JWKSFetchError, match="failed"):
        await verifier.verify(BODY, {"Saleor-Signature": signer.sign(BODY)})


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, None, "HTTP 500"),
        (None, b"not json", "unusable"),
        (None, b'{"keys": 1}', "unusable"),
        (None, b'{"keys": []}' + b" " * 300_000, "larger than"),
    ],
    ids=["http-500", "not-json", "no-keys-list", "oversized"],
)
async def test_jwks_fetch_failures_raise_jwks_fetch_error(
    jwks_server: JWKSServer, status: int | None, body: bytes | None, reason: str
) -> None:
    jwks_server.status, jwks_server.body = status, body
    signature = JWSSigner(jwks_server.keys).sign(BODY)
    with pytest.raises(JWKSFetchError, match=reason):
        await JWKSVerifier(jwks_server.url).verify(BODY, {"Saleor-Signature": signature})


async def test_a_sender_that_is_down_is_not_hammered(jwks_server: JWKSServer) -> None:
    ticker = Ticker()
    jwks_server.status = 503
    signature = JWSSigner(jwks_server.keys).sign(BODY)
    verifier = JWKSVerifier(jwks_server.url, refetch_interval=30, monotonic=ticker)
    for _ in range(3):
        with pytest.raises(JWKSFetchError):
            await verifier.verify(BODY, {"Saleor-Signature": signature})
    assert jwks_server.hits == 1
    ticker.now += 31
    jwks_server.status = None
    await verifier.verify(BODY, {"Saleor-Signature": signature})
    assert jwks_server.hits == 2


async def test_unreachable_jwks_raises_jwks_fetch_error(jwks_server: JWKSServer) -> None:
    signature = JWSSigner(jwks_server.keys).sign(BODY)
    url = "http://127.0.0.1:1/.well-known/jwks.json"  # nothing listens on port 1
    with pytest.raises(JWKSFetchError, match="failed"):
        await JWKSVerifier(url, timeout=5).verify(BODY, {"Saleor-Signature": signature})


async def test_static_jwks_and_malformed_headers() -> None:
    signer = JWSSigner(generate_key("EdDSA"))
    verifier = JWKSVerifier(jwks=signer.jwks())
    await verifier.verify(BODY, {"Saleor-Signature": signer.sign(BODY)})
    with pytest.raises(MalformedSignatureError, match="missing"):
        await verifier.verify(BODY, {})
    with pytest.raises(MalformedSignatureError):
        await verifier.verify(BODY, {"Saleor-Signature": hmac_signature(BODY, "x")})
    with pytest.raises(SignatureMismatchError):
        await verifier.verify(BODY[1:], {"Saleor-Signature": signer.sign(BODY)})


def test_jwks_verifier_configuration() -> None:
    assert jwks_url_for("https://shop.example.com/graphql/") == (
        "https://shop.example.com/.well-known/jwks.json"
    )
    assert JWKSVerifier.for_saleor("http://127.0.0.1:8000/graphql/").jwks_url == (
        "http://127.0.0.1:8000/.well-known/jwks.json"
    )
    with pytest.raises(InvalidKeyError):
        JWKSVerifier()
    with pytest.raises(InvalidKeyError):
        JWKSVerifier("ftp://x/jwks.json")
    with pytest.raises(InvalidKeyError):
        jwks_url_for("shop.example.com")


# -- Standard Webhooks -----------------------------------------------------------------------


def std_headers(signer: StandardWebhooksSigner, stamp: int, body: bytes = BODY) -> dict[str, str]:
    return dict(signer.headers("msg_1", stamp, body))


async def test_standard_verifier_accepts_hmac_and_ed25519() -> None:
    secret = new_secret()
    private, public = new_keypair()
    signer = StandardWebhooksSigner([secret, private])
    headers = std_headers(signer, int(time.time()))
    assert headers["webhook-signature"].startswith("v1,")
    assert " v1a," in headers["webhook-signature"]
    await StandardWebhooksVerifier(secret).verify(BODY, headers)
    await StandardWebhooksVerifier(public).verify(BODY, headers)
    await StandardWebhooksVerifier([new_secret(), public]).verify(BODY, headers)
    upper = {k.upper(): v for k, v in headers.items()}
    await StandardWebhooksVerifier(secret).verify(BODY, upper)


async def test_standard_verifier_tolerance_window() -> None:
    secret = new_secret()
    signer = StandardWebhooksSigner(secret)
    now = 1_700_000_000.0
    verifier = StandardWebhooksVerifier(secret, tolerance=timedelta(minutes=5), now=lambda: now)
    await verifier.verify(BODY, std_headers(signer, int(now) - 299))
    await verifier.verify(BODY, std_headers(signer, int(now) + 299))
    with pytest.raises(TimestampError, match="old"):
        await verifier.verify(BODY, std_headers(signer, int(now) - 301))
    with pytest.raises(TimestampError, match="future"):
        await verifier.verify(BODY, std_headers(signer, int(now) + 301))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"webhook-id": None}, MalformedSignatureError),
        ({"webhook-timestamp": None}, MalformedSignatureError),
        ({"webhook-signature": None}, MalformedSignatureError),
        ({"webhook-timestamp": "12.5"}, MalformedSignatureError),
        ({"webhook-timestamp": "-1"}, MalformedSignatureError),
        ({"webhook-timestamp": "9" * 40}, MalformedSignatureError),
        ({"webhook-signature": "v1"}, MalformedSignatureError),
        ({"webhook-signature": ",abc"}, MalformedSignatureError),
        ({"webhook-signature": "v1,***"}, MalformedSignatureError),
        ({"webhook-signature": "v1," + "A" * 5000}, MalformedSignatureError),
        ({"webhook-id": "x" * 300}, MalformedSignatureError),
        ({"webhook-signature": "v2,AAAA"}, UnknownKeyError),
        ({"webhook-signature": "v1a,AAAA"}, UnknownKeyError),
        ({"webhook-signature": "v1,AAAA v9,BBBB"}, SignatureMismatchError),
        ({"webhook-id": "msg_2"}, SignatureMismatchError),
    ],
    ids=lambda v: str(v)[:40],
)
async def test_standard_verifier_failures_say_which(
    change: dict[str, str | None], error: type[Exception]
) -> None:
    secret = new_secret()
    now = int(time.time())
    headers: dict[str, str] = std_headers(StandardWebhooksSigner(secret), now)
    for name, value in change.items():
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    with pytest.raises(error):
        await StandardWebhooksVerifier(secret, now=lambda: now).verify(BODY, headers)
