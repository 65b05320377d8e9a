"""The JWS profile: byte-exact with Saleor on the way out, strict and typed on the way in."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from webhookkit.exceptions import (
    MalformedSignatureError,
    SignatureError,
    SignatureMismatchError,
    UnknownKeyError,
)
from webhookkit.signing import JWSSigner, KeySet, PublicKeys, RSAKey, generate_key, verify_jws
from webhookkit.signing._b64 import b64url_encode
from webhookkit.signing.keys import compact_json

BODY = b'{"order":{"id":"T3JkZXI6MQ=="}}'
KEY = RSAKey.generate()
SIGNER = JWSSigner(KEY)
JWKS = SIGNER.jwks()


def _b64(raw: bytes) -> str:
    return b64url_encode(raw)


def signed_with_header(header: dict[str, Any] | bytes, body: bytes = BODY, key: Any = KEY) -> str:
    raw = header if isinstance(header, bytes) else compact_json(header)
    header_b64 = _b64(raw)
    return f"{header_b64}..{_b64(key.sign(header_b64.encode() + b'.' + body))}"


def good_header(**changes: Any) -> dict[str, Any]:
    header: dict[str, Any] = {
        "alg": "RS256",
        "b64": False,
        "crit": ["b64"],
        "kid": KEY.kid,
        "typ": "JWT",
    }
    for name, value in changes.items():
        if value is ...:
            header.pop(name)
        else:
            header[name] = value
    return header


def test_signature_is_byte_exact_with_saleor() -> None:
    signature = SIGNER.sign(BODY)
    header_b64, middle, sig_b64 = signature.split(".")
    assert middle == ""
    header = base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4))
    assert header == (
        b'{"alg":"RS256","b64":false,"crit":["b64"],"kid":"' + KEY.kid.encode() + b'","typ":"JWT"}'
    )
    # Independent check: RS256 over base64url(header) + "." + the raw body bytes.
    raw_sig = base64.urlsafe_b64decode(sig_b64 + "=" * (-len(sig_b64) % 4))
    public = KEY._private.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(raw_sig, header_b64.encode() + b"." + BODY, padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_each_algorithm_round_trips(alg: str) -> None:
    signer = JWSSigner(KeySet.generate(alg))
    signature = signer.sign(BODY)
    verify_jws(BODY, signature, signer.jwks())
    with pytest.raises(SignatureMismatchError):
        verify_jws(BODY + b" ", signature, signer.jwks())


def test_signer_follows_the_active_key() -> None:
    keys = KeySet.generate()
    signer = JWSSigner(keys)
    first = signer.sign(BODY)
    new = generate_key("ES256")
    keys.add(new)
    keys.activate(new.kid)
    second = signer.sign(BODY)
    assert signer.key is new
    assert json.loads(base64.urlsafe_b64decode(second.split(".")[0] + "=="))["alg"] == "ES256"
    verify_jws(BODY, first, signer.jwks())  # the retired key is still published
    verify_jws(BODY, second, signer.jwks())


GOOD = SIGNER.sign(BODY)
HEADER_B64, _, SIG_B64 = GOOD.split(".")

MALFORMED: dict[str, Any] = {
    "empty": "",
    "not-a-string": None,
    "one-part": "abc",
    "two-parts": "abc.def",
    "four-parts": f"{HEADER_B64}...{SIG_B64}",
    "attached-payload": f"{HEADER_B64}.{_b64(BODY)}.{SIG_B64}",
    "header-not-base64": f"!!!..{SIG_B64}",
    "header-padding": f"{HEADER_B64}=..{SIG_B64}",
    "header-not-json": f"{_b64(b'not json')}..{SIG_B64}",
    "header-json-array": signed_with_header(b'["alg","RS256"]'),
    "header-bad-utf8": _b64(b'{"alg":"\xff"}') + ".." + SIG_B64,
    "header-deep-nesting": _b64(b"[" * 2900) + ".." + SIG_B64,
    "duplicate-alg": signed_with_header(
        b'{"alg":"RS256","alg":"none","b64":false,"crit":["b64"],"kid":"x"}'
    ),
    "alg-missing": signed_with_header(good_header(alg=...)),
    "alg-none": signed_with_header(good_header(alg="none")),
    "alg-None-case": signed_with_header(good_header(alg="None")),
    "alg-hs256": signed_with_header(good_header(alg="HS256")),
    "alg-rs512": signed_with_header(good_header(alg="RS512")),
    "alg-not-string": signed_with_header(good_header(alg=256)),
    "b64-true": signed_with_header(good_header(b64=True)),
    "b64-missing": signed_with_header(good_header(b64=...)),
    "b64-string": signed_with_header(good_header(b64="false")),
    "crit-missing": signed_with_header(good_header(crit=...)),
    "crit-empty": signed_with_header(good_header(crit=[])),
    "crit-not-list": signed_with_header(good_header(crit="b64")),
    "crit-unknown-extension": signed_with_header(good_header(crit=["b64", "exp"])),
    "kid-number": signed_with_header(good_header(kid=7)),
    "signature-empty": f"{HEADER_B64}..",
    "signature-not-base64": f"{HEADER_B64}..{SIG_B64[:-2]}+/",
    "signature-impossible-length": f"{HEADER_B64}..{'A' * 5}",
    "oversized": f"{HEADER_B64}..{'A' * 5000}",
    "oversized-header": signed_with_header(good_header(pad="x" * 5000)),
    "whitespace-inside": f"{HEADER_B64} ..{SIG_B64}",
    "non-ascii": f"{HEADER_B64}..{SIG_B64[:-1]}é",
}


@pytest.mark.parametrize("signature", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_signatures_raise_malformed_signature_error(signature: Any) -> None:
    with pytest.raises(MalformedSignatureError):
        verify_jws(BODY, signature, JWKS)


OTHER_KEY = RSAKey.generate()
WRONG: dict[str, tuple[str, type[SignatureError]]] = {
    "truncated-signature": (
        f"{HEADER_B64}..{SIG_B64[: len(SIG_B64) // 2]}",
        SignatureMismatchError,
    ),
    "signature-of-other-body": (SIGNER.sign(BODY + b"x"), SignatureMismatchError),
    "other-key-same-kid": (
        signed_with_header(good_header(), key=OTHER_KEY),
        SignatureMismatchError,
    ),
    "unknown-kid": (JWSSigner(OTHER_KEY).sign(BODY), UnknownKeyError),
    "kid-differs-in-case": (
        signed_with_header(good_header(kid=KEY.kid.swapcase())),
        UnknownKeyError,
    ),
    "wrong-alg-for-key": (
        signed_with_header(good_header(alg="ES256"), key=generate_key("ES256")),
        UnknownKeyError,
    ),
}


@pytest.mark.parametrize("case", WRONG.values(), ids=WRONG.keys())
def test_wrong_signatures_raise_their_subclass(case: tuple[str, type[SignatureError]]) -> None:
    signature, expected = case
    with pytest.raises(expected):
        verify_jws(BODY, signature, JWKS)


def test_truncated_body_is_a_mismatch() -> None:
    with pytest.raises(SignatureMismatchError):
        verify_jws(BODY[:-1], GOOD, JWKS)


def test_no_kid_uses_the_only_key_and_refuses_to_guess_between_two() -> None:
    no_kid = signed_with_header(good_header(kid=...))
    verify_jws(BODY, no_kid, JWKS)
    two = {"keys": [*JWKS["keys"], RSAKey.generate().public_jwk]}
    with pytest.raises(UnknownKeyError, match="no kid"):
        verify_jws(BODY, no_kid, two)


def test_jwks_keys_unfit_for_verifying_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    numbers = small.public_key().public_numbers()
    jwk = {
        "kty": "RSA",
        "n": _b64(numbers.n.to_bytes(128, "big")),
        "e": "AQAB",
        "kid": "small",
        "alg": "RS256",
    }
    small_sig = signed_with_header(good_header(kid="small"), key=_RawRSA(small))
    with pytest.raises(UnknownKeyError, match="1024 bits"):
        verify_jws(BODY, small_sig, {"keys": [jwk]})
    for change in ({"use": "enc"}, {"key_ops": ["encrypt"]}, {"alg": "ES256"}, {"n": "!!"}):
        bad = {**KEY.public_jwk, **change}
        with pytest.raises(UnknownKeyError):
            verify_jws(BODY, GOOD, {"keys": [bad]})
    assert "small" in PublicKeys.from_jwks({"keys": [jwk]}).refused


class _RawRSA:
    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize(
    "jwks",
    [{}, {"keys": "x"}, {"keys": [1, "a"]}, {"keys": [{"kty": "oct", "k": "AA"}]}],
    ids=["no-keys", "keys-not-list", "junk-entries", "symmetric-key"],
)
def test_unusable_jwks_documents_raise_unknown_key(jwks: dict[str, Any]) -> None:
    with pytest.raises(UnknownKeyError):
        verify_jws(BODY, GOOD, jwks)
