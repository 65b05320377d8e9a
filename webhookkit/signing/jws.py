"""Saleor's default signature: a JWS with a detached, unencoded payload (RFC 7797).

The protected header is compact JSON with sorted keys,
``{"alg":"RS256","b64":false,"crit":["b64"],"kid":"<kid>","typ":"JWT"}``; the signing input is
``base64url(header) + "." + body``; the value sent is ``<b64url(header)>..<b64url(signature)>``.
The receiver side (:func:`parse_detached_jws`, :class:`PublicKeys`, :func:`verify_jws`) follows
the rules of ``jose.flattenedVerify`` as Saleor's app SDK calls it, and is stricter where jose
is lenient only by accident of version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ..exceptions import (
    InvalidKeyError,
    MalformedSignatureError,
    SignatureError,
    SignatureMismatchError,
    UnknownKeyError,
)
from ._b64 import b64url_decode, b64url_encode
from ._checks import body_bytes
from .keys import (
    ALGORITHMS,
    MIN_RSA_BITS,
    KeySet,
    RSAKey,
    SigningKey,
    compact_json,
    jwk_thumbprint,
)

__all__ = [
    "MAX_SIGNATURE_LENGTH",
    "DetachedJWS",
    "JWSSigner",
    "PublicJWK",
    "PublicKeys",
    "RSAKey",
    "jwk_thumbprint",
    "parse_detached_jws",
    "verify_jws",
]

#: Longest signature header accepted; Saleor's is about 450 characters (RS256, 2048 bits).
MAX_SIGNATURE_LENGTH = 4096


def saleor_header(key: SigningKey) -> dict[str, Any]:
    """The protected header Saleor sends, for ``key``'s algorithm and kid."""
    return {"alg": key.alg, "b64": False, "crit": ["b64"], "kid": key.kid, "typ": "JWT"}


class JWSSigner:
    """Signs bodies as ``<b64url(header)>..<b64url(signature)>``, byte-exact with Saleor.

    Holds a :class:`KeySet` (one key is wrapped in a set) and signs with its active key at call
    time, so a rotation takes effect on the next signature.
    """

    kind = "jws"

    def __init__(self, key: SigningKey | KeySet) -> None:
        self.keys = key if isinstance(key, KeySet) else KeySet([key])
        self._prefixes: dict[str, tuple[str, bytes]] = {}

    @property
    def key(self) -> SigningKey:
        """The active key."""
        return self.keys.active

    def _prefix(self, key: SigningKey) -> tuple[str, bytes]:
        cached = self._prefixes.get(key.kid)
        if cached is None:
            header_b64 = b64url_encode(compact_json(saleor_header(key)))
            cached = (header_b64, header_b64.encode("ascii") + b".")
            self._prefixes[key.kid] = cached
        return cached

    def sign(self, body: bytes, /) -> str:
        key = self.keys.active
        header_b64, prefix = self._prefix(key)
        return f"{header_b64}..{b64url_encode(key.sign(prefix + body))}"

    def jwks(self, now: datetime | None = None) -> dict[str, list[dict[str, Any]]]:
        """The JWKS of every published key (see :meth:`KeySet.jwks`)."""
        return self.keys.jwks(now)

    def __repr__(self) -> str:
        return f"JWSSigner({self.keys!r})"


# -- receiver side ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DetachedJWS:
    """A parsed ``<header>..<signature>`` value; ``kid`` is None when the header has none."""

    header_b64: str
    header: Mapping[str, Any] = field(repr=False)
    signature: bytes = field(repr=False)
    alg: str
    kid: str | None

    def signing_input(self, body: bytes) -> bytes:
        return self.header_b64.encode("ascii") + b"." + body


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedSignatureError(f"JWS header: duplicate member {key!r}")
        result[key] = value
    return result


def parse_detached_jws(signature: str, *, algorithms: Sequence[str] = ALGORITHMS) -> DetachedJWS:
    """Parse and check a detached, unencoded JWS; raises :class:`MalformedSignatureError`.

    Refused: anything but three parts with an empty middle; a header that is not a base64url
    JSON object (duplicate members included); ``alg`` missing, ``none`` or not in
    ``algorithms``; ``b64`` other than ``false``; ``crit`` not naming ``b64`` or naming a
    parameter this verifier does not understand; a non-string ``kid``; oversized values.
    """
    if not isinstance(signature, str) or not signature:
        raise MalformedSignatureError("JWS: signature header is missing or empty")
    if len(signature) > MAX_SIGNATURE_LENGTH:
        raise MalformedSignatureError(
            f"JWS: signature header of {len(signature)} characters, at most "
            f"{MAX_SIGNATURE_LENGTH} accepted"
        )
    parts = signature.split(".")
    if len(parts) != 3:
        raise MalformedSignatureError(
            f"JWS: expected '<header>..<signature>' (3 parts), got {len(parts)} part(s)"
        )
    header_b64, payload_part, sig_b64 = parts
    if payload_part:
        raise MalformedSignatureError("JWS: payload must be detached (empty middle part)")
    try:
        raw_header = b64url_decode(header_b64, what="JWS header")
        header = json.loads(raw_header, object_pairs_hook=_no_duplicates)
    except SignatureError as exc:
        raise MalformedSignatureError(str(exc)) from None
    except (ValueError, RecursionError):
        raise MalformedSignatureError("JWS header: not JSON") from None
    if not isinstance(header, dict):
        raise MalformedSignatureError("JWS header: not a JSON object")
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise MalformedSignatureError("JWS header: 'alg' missing or not a string")
    if alg.lower() == "none":
        raise MalformedSignatureError("JWS header: alg 'none' is never accepted")
    if alg not in algorithms:
        raise MalformedSignatureError(
            f"JWS header: alg {alg[:20]!r} not accepted (accepted: {list(algorithms)})"
        )
    if header.get("b64") is not False:
        raise MalformedSignatureError("JWS header: expected an unencoded payload (b64: false)")
    crit = header.get("crit")
    if not isinstance(crit, list) or "b64" not in crit:
        raise MalformedSignatureError("JWS header: b64: false needs crit: ['b64']")
    not_understood = [c for c in crit if c != "b64"]
    if not_understood:
        raise MalformedSignatureError(
            f"JWS header: crit names parameters not understood: {not_understood[:5]!r}"
        )
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise MalformedSignatureError("JWS header: 'kid' is not a string")
    try:
        raw_sig = b64url_decode(sig_b64, what="JWS signature")
    except SignatureError as exc:
        raise MalformedSignatureError(str(exc)) from None
    return DetachedJWS(header_b64=header_b64, header=header, signature=raw_sig, alg=alg, kid=kid)


_PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


@dataclass(frozen=True, slots=True)
class PublicJWK:
    """A verification key taken from a JWKS: its ``kid`` (may be None), ``alg`` and key."""

    kid: str | None
    alg: str
    key: _PublicKey = field(repr=False)

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            if isinstance(self.key, rsa.RSAPublicKey):
                self.key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            elif isinstance(self.key, ec.EllipticCurvePublicKey):
                if len(signature) != 64:
                    return False
                der = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
                self.key.verify(der, data, ec.ECDSA(hashes.SHA256()))
            else:
                self.key.verify(signature, data)
        except InvalidSignature:
            return False
        return True


def _b64_int(jwk: Mapping[str, Any], name: str) -> int:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise InvalidKeyError(f"jwk: member {name!r} missing", field="jwks")
    try:
        return int.from_bytes(b64url_decode(value, what=f"jwk {name}"), "big")
    except SignatureError:
        raise InvalidKeyError(f"jwk: member {name!r} is not base64url", field="jwks") from None


def public_jwk(jwk: Mapping[str, Any]) -> PublicJWK:
    """A :class:`PublicJWK` from one JWK; raises :class:`InvalidKeyError` if it is unusable
    (unsupported type or curve, RSA under 2048 bits, ``use``/``key_ops`` not for verifying)."""
    kty = jwk.get("kty")
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidKeyError("jwk: 'kid' is not a string", field="jwks")
    if jwk.get("use", "sig") != "sig":
        raise InvalidKeyError("jwk: 'use' is not 'sig'", field="jwks")
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise InvalidKeyError("jwk: 'key_ops' does not allow 'verify'", field="jwks")
    key: _PublicKey
    try:
        if kty == "RSA":
            key = rsa.RSAPublicNumbers(_b64_int(jwk, "e"), _b64_int(jwk, "n")).public_key()
            if key.key_size < MIN_RSA_BITS:
                raise InvalidKeyError(
                    f"jwk: RSA key of {key.key_size} bits, fewer than {MIN_RSA_BITS}", field="jwks"
                )
            natural = "RS256"
        elif kty == "EC" and jwk.get("crv") == "P-256":
            key = ec.EllipticCurvePublicNumbers(
                _b64_int(jwk, "x"), _b64_int(jwk, "y"), ec.SECP256R1()
            ).public_key()
            natural = "ES256"
        elif kty == "OKP" and jwk.get("crv") == "Ed25519":
            x = jwk.get("x")
            raw = b64url_decode(x, what="jwk x") if isinstance(x, str) else b""
            key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
            natural = "EdDSA"
        else:
            raise InvalidKeyError(
                f"jwk: unsupported key type {kty!r} / curve {jwk.get('crv')!r}", field="jwks"
            )
    except (ValueError, SignatureError) as exc:
        if isinstance(exc, InvalidKeyError):
            raise
        raise InvalidKeyError(f"jwk: {kty} key members are not a valid key", field="jwks") from None
    alg = jwk.get("alg", natural)
    if alg != natural:
        raise InvalidKeyError(f"jwk: alg {alg!r} does not fit a {kty} key", field="jwks")
    return PublicJWK(kid=kid, alg=natural, key=key)


class PublicKeys:
    """A parsed JWKS: usable keys by ``kid``, and why any others were refused.

    Parsing happens once per JWKS document, never per signature.
    """

    def __init__(self, keys: Sequence[PublicJWK] = (), refused: Mapping[str, str] | None = None):
        self.keys = tuple(keys)
        self.refused = dict(refused or {})
        self._by_kid = {k.kid: k for k in self.keys if k.kid is not None}

    @classmethod
    def from_jwks(cls, document: Mapping[str, Any] | str | bytes) -> PublicKeys:
        """Parse a JWKS (object or JSON text); raises :class:`InvalidKeyError` if it is not
        ``{"keys": [...]}``. Unusable keys are skipped and listed in ``refused``."""
        if isinstance(document, str | bytes):
            try:
                document = json.loads(document)
            except (ValueError, RecursionError):
                raise InvalidKeyError("jwks: not JSON", field="jwks") from None
        if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
            raise InvalidKeyError("jwks: expected an object with a 'keys' list", field="jwks")
        keys: list[PublicJWK] = []
        refused: dict[str, str] = {}
        for index, jwk in enumerate(document["keys"]):
            if not isinstance(jwk, Mapping):
                continue
            try:
                keys.append(public_jwk(jwk))
            except InvalidKeyError as exc:
                kid = jwk.get("kid")
                refused[kid if isinstance(kid, str) else f"#{index}"] = str(exc)
        return cls(keys, refused)

    def __len__(self) -> int:
        return len(self.keys)

    def has_kid(self, kid: str | None) -> bool:
        return kid is None or kid in self._by_kid

    def select(self, jws: DetachedJWS) -> PublicJWK:
        """The key that must have made ``jws``; raises :class:`UnknownKeyError`."""
        if jws.kid is not None:
            found = self._by_kid.get(jws.kid)
            if found is None:
                why = self.refused.get(jws.kid)
                detail = f" (refused: {why})" if why else ""
                raise UnknownKeyError(f"JWS: no usable key in the JWKS has kid {jws.kid!r}{detail}")
        else:
            fitting = [k for k in self.keys if k.alg == jws.alg]
            if len(fitting) != 1:
                # jose (and so Saleor's SDK) refuses to guess between several keys.
                raise UnknownKeyError(
                    f"JWS: header has no kid and the JWKS has {len(fitting)} {jws.alg} keys"
                )
            found = fitting[0]
        if found.alg != jws.alg:
            raise UnknownKeyError(
                f"JWS: header alg {jws.alg!r} differs from the key's alg {found.alg!r}"
            )
        return found

    def verify(self, body: bytes, jws: DetachedJWS) -> None:
        """Raise unless ``jws`` is a signature over ``body`` by one of these keys."""
        if not self.select(jws).verify(jws.signature, jws.signing_input(body_bytes(body))):
            raise SignatureMismatchError("JWS: signature does not match the body")


def verify_jws(
    body: bytes,
    signature: str,
    jwks: Mapping[str, Any] | PublicKeys,
    *,
    algorithms: Sequence[str] = ALGORITHMS,
) -> None:
    """Verify a detached JWS over ``body`` against a JWKS document (or parsed keys).

    Raises a :class:`SignatureError` subclass: malformed header, unknown key, or mismatch.
    """
    body = body_bytes(body)
    jws = parse_detached_jws(signature, algorithms=algorithms)
    try:
        keys = jwks if isinstance(jwks, PublicKeys) else PublicKeys.from_jwks(jwks)
    except InvalidKeyError as exc:
        raise UnknownKeyError(f"JWKS unusable: {exc}") from None
    keys.verify(body, jws)
