"""Properties over arbitrary input: sign -> verify round trips under any header casing, any
single-byte change is rejected, and no input makes a verifier raise anything but
SignatureError subclasses."""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhookkit.exceptions import SignatureError, SignatureMismatchError
from webhookkit.signing import (
    HMACVerifier,
    JWKSVerifier,
    JWSSigner,
    KeySet,
    PublicKeys,
    StandardWebhooksSigner,
    StandardWebhooksVerifier,
    hmac_signature,
    new_keypair,
    new_secret,
    verify_jws,
)
from webhookkit.signing.jws import parse_detached_jws

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIGNERS = {alg: JWSSigner(KeySet.generate(alg)) for alg in ("RS256", "ES256", "EdDSA")}
KEYS = {alg: PublicKeys.from_jwks(signer.jwks()) for alg, signer in SIGNERS.items()}
HMAC_SECRET = "s3cret-key"
STD_SECRET = new_secret()
STD_PRIVATE, STD_PUBLIC = new_keypair()
STD_SIGNER = StandardWebhooksSigner([STD_SECRET, STD_PRIVATE])
NOW = 1_700_000_000


@st.composite
def casing(draw: st.DrawFn, name: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return "".join(c.upper() if flip else c.lower() for c, flip in zip(name, flips, strict=True))


@st.composite
def changed(draw: st.DrawFn, body: bytes) -> bytes:
    """``body`` with exactly one byte replaced by a different value."""
    index = draw(st.integers(0, len(body) - 1))
    value = draw(st.integers(0, 255).filter(lambda v: v != body[index]))
    return body[:index] + bytes([value]) + body[index + 1 :]


bodies = st.binary(max_size=2048)
nonempty = st.binary(min_size=1, max_size=2048)
algs = st.sampled_from(sorted(SIGNERS))


@SETTINGS
@given(body=bodies, name=casing("Saleor-Signature"))
def test_hmac_round_trip_any_body_any_casing(body: bytes, name: str) -> None:
    HMACVerifier(HMAC_SECRET).check(body, {name: hmac_signature(body, HMAC_SECRET)})


@SETTINGS
@given(body=bodies, alg=algs, name=casing("Saleor-Signature"))
def test_jws_round_trip_any_body_any_casing(body: bytes, alg: str, name: str) -> None:
    signer = SIGNERS[alg]
    verifier = JWKSVerifier(jwks=signer.jwks())
    asyncio.run(verifier.verify(body, {name: signer.sign(body)}))


@SETTINGS
@given(
    body=bodies,
    names=st.tuples(*(casing(n) for n in ("webhook-id", "webhook-timestamp", "webhook-signature"))),
)
def test_standard_round_trip_any_body_any_casing(body: bytes, names: tuple[str, str, str]) -> None:
    values = [v for _, v in STD_SIGNER.headers("msg_1", NOW, body)]
    headers = dict(zip(names, values, strict=True))
    for secret in (STD_SECRET, STD_PUBLIC):
        StandardWebhooksVerifier(secret, now=lambda: NOW).check(body, headers)


@SETTINGS
@given(data=st.data(), body=nonempty)
def test_any_single_byte_change_is_rejected_by_hmac(data: st.DataObject, body: bytes) -> None:
    signature = hmac_signature(body, HMAC_SECRET)
    other = data.draw(changed(body))
    try:
        HMACVerifier(HMAC_SECRET).check(other, {"Saleor-Signature": signature})
    except SignatureMismatchError:
        return
    raise AssertionError("changed body accepted")


@SETTINGS
@given(data=st.data(), body=nonempty, alg=algs)
def test_any_single_byte_change_is_rejected_by_jws(
    data: st.DataObject, body: bytes, alg: str
) -> None:
    signature = SIGNERS[alg].sign(body)
    other = data.draw(changed(body))
    try:
        verify_jws(other, signature, KEYS[alg])
    except SignatureMismatchError:
        return
    raise AssertionError("changed body accepted")


@SETTINGS
@given(data=st.data(), body=nonempty)
def test_any_single_byte_change_is_rejected_by_standard_webhooks(
    data: st.DataObject, body: bytes
) -> None:
    headers = dict(STD_SIGNER.headers("msg_1", NOW, body))
    other = data.draw(changed(body))
    for secret in (STD_SECRET, STD_PUBLIC):
        try:
            StandardWebhooksVerifier(secret, now=lambda: NOW).check(other, headers)
        except SignatureMismatchError:
            continue
        raise AssertionError("changed body accepted")


@SETTINGS
@given(data=st.data(), alg=algs)
def test_any_single_byte_change_to_the_jws_value_is_rejected(data: st.DataObject, alg: str) -> None:
    body = b'{"id":1}'
    signature = SIGNERS[alg].sign(body).encode()
    index = data.draw(st.integers(0, len(signature) - 1))
    value = data.draw(st.integers(0, 127).filter(lambda v: v != signature[index]))
    mutated = (signature[:index] + bytes([value]) + signature[index + 1 :]).decode("latin-1")
    try:
        verify_jws(body, mutated, KEYS[alg])
    except SignatureError:
        return
    # A change in base64url's final character can leave the decoded bytes unchanged.
    assert parse_detached_jws(mutated).signature == parse_detached_jws(signature.decode()).signature


header_text = st.text(max_size=600) | st.from_regex(
    r"[A-Za-z0-9_\-]{0,200}\.\.?[A-Za-z0-9_\-]{0,400}"
)


@SETTINGS
@given(body=bodies, value=header_text)
def test_arbitrary_saleor_signature_values_raise_only_signature_errors(
    body: bytes, value: str
) -> None:
    headers = {"Saleor-Signature": value}
    for verifier in (HMACVerifier(HMAC_SECRET), JWKSVerifier(jwks=SIGNERS["RS256"].jwks())):
        with contextlib.suppress(SignatureError):
            asyncio.run(verifier.verify(body, headers))


@SETTINGS
@given(
    body=bodies,
    msg_id=st.text(max_size=300),
    stamp=st.text(max_size=20) | st.integers(NOW - 1000, NOW + 1000).map(str),
    signature=st.text(max_size=300)
    | st.lists(
        st.tuples(st.sampled_from(["v1", "v1a", "v2", ""]), st.text(max_size=100)), max_size=4
    ).map(lambda items: " ".join(f"{v},{s}" for v, s in items)),
)
def test_arbitrary_standard_headers_raise_only_signature_errors(
    body: bytes, msg_id: str, stamp: str, signature: str
) -> None:
    headers = {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": signature}
    for secret in (STD_SECRET, STD_PUBLIC):
        with contextlib.suppress(SignatureError):
            StandardWebhooksVerifier(secret, now=lambda: NOW).check(body, headers)
