"""Saleor's default signature: JWS RS256 with a detached, unencoded payload (RFC 7797)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..exceptions import InvalidKeyError, SignatureError
from ._b64 import b64url_decode, b64url_encode

__all__ = ["JWSSigner", "RSAKey", "jwk_thumbprint", "verify_jws"]

MIN_RSA_BITS = 2048


def _compact(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _int_b64(value: int) -> str:
    return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint: SHA-256 over the required members, sorted and compact."""
    kty = jwk.get("kty")
    members = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
    if kty not in members:
        raise InvalidKeyError(f"jwk: unsupported kty {kty!r}", field="key")
    required = {name: jwk[name] for name in members[str(kty)]}
    return b64url_encode(hashlib.sha256(_compact(required)).digest())


class RSAKey:
    """An RSA private key for RS256; the repr shows only the ``kid``."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise InvalidKeyError("key: expected an RSA private key", field="key")
        if private_key.key_size < MIN_RSA_BITS:
            raise InvalidKeyError(
                f"key: RSA key of {private_key.key_size} bits; receivers refuse fewer than "
                f"{MIN_RSA_BITS}",
                field="key",
            )
        self._key = private_key
        numbers = private_key.public_key().public_numbers()
        self._public = {"kty": "RSA", "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}
        self.kid = jwk_thumbprint(self._public)

    @classmethod
    def generate(cls, bits: int = 2048) -> RSAKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def from_pem(cls, pem: bytes | str, password: bytes | None = None) -> RSAKey:
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except (ValueError, TypeError) as exc:
            # The library's message may quote key material; say only what kind of failure.
            raise InvalidKeyError(
                f"key: not a usable PEM private key ({type(exc).__name__})", field="key"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise InvalidKeyError(
                f"key: expected an RSA private key, got {type(key).__name__}", field="key"
            )
        return cls(key)

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The JWK in Saleor's member set."""
        return {
            "kty": "RSA",
            "key_ops": ["verify"],
            "n": self._public["n"],
            "e": self._public["e"],
            "use": "sig",
            "kid": self.kid,
            "alg": "RS256",
        }

    def sign_rs256(self, data: bytes) -> bytes:
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def __repr__(self) -> str:
        return f"RSAKey(kid={self.kid!r})"


class JWSSigner:
    """Signs bodies as ``<b64url(header)>..<b64url(signature)>``, byte-exact with Saleor."""

    kind = "jws"

    def __init__(self, key: RSAKey) -> None:
        self.key = key
        header = {"alg": "RS256", "b64": False, "crit": ["b64"], "kid": key.kid, "typ": "JWT"}
        self._header_b64 = b64url_encode(_compact(header))
        self._prefix = self._header_b64.encode("ascii") + b"."

    def sign(self, body: bytes, /) -> str:
        signature = self.key.sign_rs256(self._prefix + body)
        return f"{self._header_b64}..{b64url_encode(signature)}"

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        return {"keys": [self.key.public_jwk]}

    def __repr__(self) -> str:
        return f"JWSSigner(kid={self.key.kid!r})"


def _public_key_from_jwk(jwk: Mapping[str, Any]) -> rsa.RSAPublicKey:
    try:
        n = int.from_bytes(b64url_decode(str(jwk["n"]), what="jwk n"), "big")
        e = int.from_bytes(b64url_decode(str(jwk["e"]), what="jwk e"), "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    except (KeyError, ValueError) as exc:
        raise SignatureError("JWKS: RSA key without usable 'n' and 'e'") from exc


def verify_jws(body: bytes, signature: str, jwks: Mapping[str, Any]) -> None:
    """Verify a detached RS256 JWS over ``body`` against a JWKS document.

    Raises :class:`SignatureError` for a malformed header, an unknown ``kid``, a wrong ``alg``,
    ``b64`` without ``crit``, or a signature that does not match.
    """
    if not isinstance(signature, str) or signature.count(".") != 2:
        raise SignatureError("JWS: expected '<header>..<signature>'")
    header_b64, payload_part, sig_b64 = signature.split(".")
    if payload_part:
        raise SignatureError("JWS: payload must be detached (empty middle part)")
    try:
        header = json.loads(b64url_decode(header_b64, what="JWS header"))
    except ValueError as exc:
        raise SignatureError("JWS header: not JSON") from exc
    if not isinstance(header, dict):
        raise SignatureError("JWS header: not a JSON object")
    if header.get("alg") != "RS256":
        raise SignatureError(f"JWS header: alg {header.get('alg')!r} is not RS256")
    if header.get("b64") is not False or header.get("crit") != ["b64"]:
        raise SignatureError("JWS header: expected b64=false with crit=['b64']")
    keys: Sequence[Mapping[str, Any]] = [
        k for k in jwks.get("keys", []) if isinstance(k, Mapping) and k.get("kty") == "RSA"
    ]
    kid = header.get("kid")
    candidates = [k for k in keys if k.get("kid") == kid] if kid is not None else list(keys)
    if not candidates:
        raise SignatureError(f"JWS: no key in the JWKS has kid {kid!r}")
    raw_sig = b64url_decode(sig_b64, what="JWS signature")
    signing_input = header_b64.encode("ascii") + b"." + body
    for jwk in candidates:
        try:
            _public_key_from_jwk(jwk).verify(
                raw_sig, signing_input, padding.PKCS1v15(), hashes.SHA256()
            )
            return
        except InvalidSignature:
            continue
    raise SignatureError("JWS: signature does not match the body")
