"""Signing keys (RS256, ES256, EdDSA) and the :class:`KeySet` that rotates them.

A key's ``kid`` is its RFC 7638 thumbprint, so the same key always has the same ``kid`` and a
receiver can match a signature to a JWK without any other agreement. Private material is never
shown: reprs carry the ``kid`` only and load errors name the kind of failure, never the input.
"""

from __future__ import annotations

import abc
import enum
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Self

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ..clock import Clock
from ..exceptions import InvalidKeyError
from ._b64 import b64url_encode

__all__ = [
    "ALGORITHMS",
    "ECKey",
    "Ed25519Key",
    "KeySet",
    "KeyState",
    "PublishedKey",
    "RSAKey",
    "SigningKey",
    "generate_key",
    "jwk_thumbprint",
    "load_key",
]

MIN_RSA_BITS = 2048
#: The JWS algorithms webhookkit signs with; RS256 is Saleor's and the default.
ALGORITHMS = ("RS256", "ES256", "EdDSA")


def compact_json(obj: Mapping[str, Any]) -> bytes:
    """Sorted keys, no spaces: Saleor's JWS header form and RFC 7638's hash input."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _int_b64(value: int, length: int | None = None) -> str:
    size = length if length is not None else (value.bit_length() + 7) // 8 or 1
    return b64url_encode(value.to_bytes(size, "big"))


_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint: SHA-256 over the required members, sorted and compact, base64url."""
    kty = jwk.get("kty")
    if not isinstance(kty, str) or kty not in _THUMBPRINT_MEMBERS:
        raise InvalidKeyError(f"jwk: unsupported kty {kty!r}", field="key")
    try:
        required = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[kty]}
    except KeyError as exc:
        raise InvalidKeyError(
            f"jwk: {kty} key without member {exc.args[0]!r}", field="key"
        ) from None
    return b64url_encode(hashlib.sha256(compact_json(required)).digest())


class SigningKey(abc.ABC):
    """A private key that signs JWS; subclasses fix the algorithm.

    ``kid`` is the RFC 7638 thumbprint of the public key. The repr shows only the algorithm
    and the ``kid``; :meth:`private_pem` is the one way to get the private material out.
    """

    alg: ClassVar[str]
    kid: str
    #: True for a key made by :meth:`generate` in this process (never loaded from a PEM): it
    #: dies with the process, so a durable store shared by several processes must not rely
    #: on it (see :mod:`webhookkit.keyring`).
    ephemeral: bool = False

    def __init__(self, public_members: Mapping[str, str]) -> None:
        self._public = dict(public_members)
        self.kid = jwk_thumbprint(self._public)

    @abc.abstractmethod
    def sign(self, data: bytes, /) -> bytes:
        """The raw JWS signature of ``data`` (for ES256: ``r || s``, 64 bytes)."""

    @property
    @abc.abstractmethod
    def _private(
        self,
    ) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey: ...

    @classmethod
    @abc.abstractmethod
    def generate(cls) -> Self:
        """A fresh key of this type."""

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public JWK in Saleor's member set: ``kty``, ``key_ops``, key members, ``use``,
        ``kid``, ``alg``."""
        jwk: dict[str, Any] = {"kty": self._public["kty"], "key_ops": ["verify"]}
        jwk.update((k, v) for k, v in self._public.items() if k != "kty")
        jwk.update(use="sig", kid=self.kid, alg=self.alg)
        return jwk

    def private_pem(self, password: bytes | None = None) -> bytes:
        """PKCS#8 PEM of the private key, encrypted when ``password`` is given."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def public_pem(self) -> bytes:
        return self._private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_pem(cls, pem: bytes | str, password: bytes | None = None) -> Self:
        """Load a PEM private key; it must be of this class's type (use :func:`load_key` for
        any type)."""
        key = load_key(pem, password=password)
        if not isinstance(key, cls):
            raise InvalidKeyError(
                f"key: expected a {cls.alg} key, the PEM holds a {key.alg} key", field="key"
            )
        return key

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], password: bytes | None = None) -> Self:
        """Load a PEM private key from a file."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InvalidKeyError(
                f"key: cannot read {os.fspath(path)!r} ({type(exc).__name__})", field="key"
            ) from None
        return cls.from_pem(data, password)

    @classmethod
    def from_env(cls, name: str, password: bytes | None = None) -> Self:
        """Load a PEM private key from the environment variable ``name``."""
        value = os.environ.get(name)
        if not value:
            raise InvalidKeyError(f"key: environment variable {name!r} is not set", field="key")
        return cls.from_pem(value, password)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SigningKey):
            return NotImplemented
        return self.alg == other.alg and self.kid == other.kid

    def __hash__(self) -> int:
        return hash((self.alg, self.kid))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alg={self.alg!r}, kid={self.kid!r})"

    def __reduce__(self) -> Any:
        # Pickling would carry the private key into caches, queues and logs; refuse it.
        raise TypeError(f"{type(self).__name__} cannot be pickled; store private_pem() instead")


class RSAKey(SigningKey):
    """An RSA key for RS256 (Saleor's algorithm), at least 2048 bits."""

    alg = "RS256"

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
        super().__init__({"kty": "RSA", "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)})

    @property
    def _private(self) -> rsa.RSAPrivateKey:
        return self._key

    @classmethod
    def generate(cls, bits: int = 2048) -> RSAKey:
        key = cls(rsa.generate_private_key(public_exponent=65537, key_size=bits))
        key.ephemeral = True
        return key

    def sign(self, data: bytes, /) -> bytes:
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def sign_rs256(self, data: bytes) -> bytes:
        """Alias of :meth:`sign`, kept for earlier callers."""
        return self.sign(data)

    @property
    def public_jwk(self) -> dict[str, Any]:
        # Saleor's exact member order: kty, key_ops, n, e, use, kid, alg.
        return {
            "kty": "RSA",
            "key_ops": ["verify"],
            "n": self._public["n"],
            "e": self._public["e"],
            "use": "sig",
            "kid": self.kid,
            "alg": "RS256",
        }


class ECKey(SigningKey):
    """A P-256 key for ES256."""

    alg = "ES256"

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise InvalidKeyError("key: ES256 needs an EC private key on curve P-256", field="key")
        self._key = private_key
        numbers = private_key.public_key().public_numbers()
        super().__init__(
            {
                "kty": "EC",
                "crv": "P-256",
                "x": _int_b64(numbers.x, 32),
                "y": _int_b64(numbers.y, 32),
            }
        )

    @property
    def _private(self) -> ec.EllipticCurvePrivateKey:
        return self._key

    @classmethod
    def generate(cls) -> ECKey:
        key = cls(ec.generate_private_key(ec.SECP256R1()))
        key.ephemeral = True
        return key

    def sign(self, data: bytes, /) -> bytes:
        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class Ed25519Key(SigningKey):
    """An Ed25519 key for EdDSA (RFC 8037)."""

    alg = "EdDSA"

    def __init__(self, private_key: ed25519.Ed25519PrivateKey) -> None:
        if not isinstance(private_key, ed25519.Ed25519PrivateKey):
            raise InvalidKeyError("key: EdDSA needs an Ed25519 private key", field="key")
        self._key = private_key
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        super().__init__({"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)})

    @property
    def _private(self) -> ed25519.Ed25519PrivateKey:
        return self._key

    @classmethod
    def generate(cls) -> Ed25519Key:
        key = cls(ed25519.Ed25519PrivateKey.generate())
        key.ephemeral = True
        return key

    def sign(self, data: bytes, /) -> bytes:
        return self._key.sign(data)


_BY_ALG: dict[str, type[RSAKey] | type[ECKey] | type[Ed25519Key]] = {
    "RS256": RSAKey,
    "ES256": ECKey,
    "EdDSA": Ed25519Key,
}


def generate_key(alg: str = "RS256") -> SigningKey:
    """A new key for ``alg``: ``RS256`` (default, 2048 bits), ``ES256`` or ``EdDSA``."""
    try:
        return _BY_ALG[alg].generate()
    except (KeyError, TypeError):
        raise InvalidKeyError(
            f"alg: {alg!r} is not one of {list(ALGORITHMS)}", field="alg"
        ) from None


def load_key(pem: bytes | str, *, password: bytes | None = None) -> SigningKey:
    """A :class:`SigningKey` from a PEM private key of any supported type."""
    try:
        data = pem.encode("utf-8") if isinstance(pem, str) else pem
    except UnicodeEncodeError:
        raise InvalidKeyError("key: PEM text holds lone surrogates", field="key") from None
    if not isinstance(data, bytes | bytearray):
        raise InvalidKeyError("key: expected PEM text or bytes", field="key")
    if password is not None and not isinstance(password, bytes):
        raise InvalidKeyError("password: expected bytes or None", field="password")
    try:
        key = serialization.load_pem_private_key(bytes(data), password=password)
    except Exception as exc:  # ValueError, TypeError, UnsupportedAlgorithm...
        # The library's message may quote key material; say only what kind of failure.
        raise InvalidKeyError(
            f"key: not a usable PEM private key ({type(exc).__name__})", field="key"
        ) from None
    if isinstance(key, rsa.RSAPrivateKey):
        return RSAKey(key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ECKey(key)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return Ed25519Key(key)
    raise InvalidKeyError(
        f"key: {type(key).__name__} is not supported; use RSA, EC P-256 or Ed25519", field="key"
    )


class KeyState(enum.StrEnum):
    """Where a key is in its life: published first, then signing, then published only."""

    NEXT = "next"
    ACTIVE = "active"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class PublishedKey:
    """One key of a :class:`KeySet` with its state; ``retire_at`` ends a retired key's
    publication (None: published until removed)."""

    key: SigningKey
    state: KeyState
    retire_at: datetime | None = None

    @property
    def kid(self) -> str:
        return self.key.kid

    def published_at(self, now: datetime) -> bool:
        return self.state is not KeyState.RETIRED or self.retire_at is None or now < self.retire_at


#: How long :meth:`KeySet.activate` keeps the previous key published by default: longer than
#: Saleor's whole retry schedule (about 5 minutes) plus a JWKS cache lifetime, with room to spare.
DEFAULT_RETIRE_AFTER = timedelta(days=1)


class KeySet:
    """Several signing keys, each ``next``, ``active`` or ``retired``; exactly one signs.

    Rotation without receiver downtime, in three steps:

    1. ``keys.add(new_key)``: the new key is ``next``, published in the JWKS, not signing.
       Wait at least the JWKS ``Cache-Control`` max-age, so every receiver's cache has it.
    2. ``keys.activate(new_key.kid)``: the new key signs; the old one becomes ``retired`` and
       stays published until ``retire_after`` from now (default one day).
    3. ``keys.prune()`` (or just let the date pass: :meth:`jwks` leaves expired keys out).

    Every step that needs the time takes ``now``; without it the time comes from ``clock``
    (give the kit's clock, so a FakeClock drives rotations in tests), else the wall clock.
    """

    def __init__(
        self, keys: Iterable[SigningKey | PublishedKey] = (), *, clock: Clock | None = None
    ) -> None:
        self._entries: dict[str, PublishedKey] = {}
        #: Where the time comes from when a step gets no ``now`` (None: the wall clock).
        self.clock = clock
        if isinstance(keys, str | bytes) or not isinstance(keys, Iterable):
            raise InvalidKeyError("keys: expected a list of signing keys", field="keys")
        for item in keys:
            entry = item if isinstance(item, PublishedKey) else None
            if entry is None:
                if not isinstance(item, SigningKey):
                    raise InvalidKeyError(
                        f"keys: {type(item).__name__} is not a SigningKey", field="keys"
                    )
                has_active = any(e.state is KeyState.ACTIVE for e in self._entries.values())
                entry = PublishedKey(item, KeyState.NEXT if has_active else KeyState.ACTIVE)
            self._put(entry)

    @classmethod
    def generate(cls, alg: str = "RS256") -> KeySet:
        """A key set holding one new active key of ``alg``."""
        return cls([generate_key(alg)])

    @classmethod
    def of(
        cls, key: SigningKey | KeySet | bytes | str | None, *, clock: Clock | None = None
    ) -> KeySet:
        """What users pass as ``signing_key``: a KeySet, one key, PEM, or None (new RS256).
        ``clock`` is set on the result when given."""
        if key is None:
            found = cls.generate()
        elif isinstance(key, KeySet):
            found = key
        elif isinstance(key, SigningKey):
            found = cls([key])
        else:
            found = cls([load_key(key)])
        if clock is not None:
            found.clock = clock
        return found

    def _now(self, now: datetime | None, field_name: str = "now") -> datetime:
        """``now`` if given (aware), else the clock's time, else the wall clock's."""
        if now is None:
            return self.clock.now() if self.clock is not None else datetime.now(UTC)
        if not isinstance(now, datetime) or now.utcoffset() is None:
            raise InvalidKeyError(
                f"{field_name}: expected a timezone-aware datetime", field=field_name
            )
        return now

    def _put(self, entry: PublishedKey) -> None:
        if entry.state is KeyState.ACTIVE:
            current = self._active_entry()
            if current is not None and current.kid != entry.kid:
                raise InvalidKeyError(
                    f"keys: {current.kid!r} is already active; use activate() to rotate",
                    field="keys",
                )
        self._entries[entry.kid] = entry

    def _active_entry(self) -> PublishedKey | None:
        for entry in self._entries.values():
            if entry.state is KeyState.ACTIVE:
                return entry
        return None

    # -- reading ---------------------------------------------------------------------------
    @property
    def active(self) -> SigningKey:
        """The key that signs now."""
        entry = self._active_entry()
        if entry is None:
            raise InvalidKeyError("keys: no active key; activate() one first", field="keys")
        return entry.key

    def get(self, kid: str) -> PublishedKey:
        found = self._entries.get(kid) if isinstance(kid, str) else None
        if found is None:
            shown = repr(kid)[:80]
            raise InvalidKeyError(f"keys: no key with kid {shown}", field="keys")
        return found

    def __contains__(self, kid: object) -> bool:
        return isinstance(kid, str) and kid in self._entries

    def __iter__(self) -> Iterator[PublishedKey]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def published(self, now: datetime | None = None) -> list[PublishedKey]:
        """Keys in the JWKS at ``now``: next, active, and retired ones before their date."""
        at = self._now(now)
        order = {KeyState.ACTIVE: 0, KeyState.NEXT: 1, KeyState.RETIRED: 2}
        return sorted(
            (e for e in self._entries.values() if e.published_at(at)),
            key=lambda e: order[e.state],
        )

    def jwks(self, now: datetime | None = None) -> dict[str, list[dict[str, Any]]]:
        """The JWKS document: ``{"keys": [...]}``, the active key first."""
        return {"keys": [e.key.public_jwk for e in self.published(now)]}

    # -- rotating --------------------------------------------------------------------------
    def add(self, key: SigningKey, state: KeyState = KeyState.NEXT) -> PublishedKey:
        """Step 1 of a rotation: publish ``key`` (``next`` by default) without signing with it."""
        if not isinstance(key, SigningKey) or not isinstance(state, KeyState):
            raise InvalidKeyError("keys: add() takes a SigningKey and a KeyState", field="keys")
        if key.kid in self._entries:
            raise InvalidKeyError(f"keys: kid {key.kid!r} is already in the set", field="keys")
        entry = PublishedKey(key, state)
        self._put(entry)
        return entry

    def activate(
        self,
        kid: str,
        *,
        retire_after: timedelta = DEFAULT_RETIRE_AFTER,
        now: datetime | None = None,
    ) -> None:
        """Step 2: ``kid`` signs from now on; the previous active key is retired and stays
        published until ``now + retire_after``."""
        target = self.get(kid)
        if not isinstance(retire_after, timedelta) or retire_after < timedelta(0):
            raise InvalidKeyError("retire_after: expected a timedelta >= 0", field="retire_after")
        at = self._now(now)
        try:
            retire_at = at + retire_after
        except OverflowError:
            raise InvalidKeyError(
                "retire_after: too far in the future", field="retire_after"
            ) from None
        current = self._active_entry()
        if current is not None and current.kid != kid:
            self._entries[current.kid] = replace(
                current, state=KeyState.RETIRED, retire_at=retire_at
            )
        self._entries[kid] = replace(target, state=KeyState.ACTIVE, retire_at=None)

    def retire(self, kid: str, *, until: datetime | None = None) -> None:
        """Stop publishing ``kid`` after ``until`` (None: keep it until removed). The active
        key cannot be retired: activate another one first."""
        entry = self.get(kid)
        if until is not None:
            until = self._now(until, "until")
        if entry.state is KeyState.ACTIVE:
            raise InvalidKeyError(
                f"keys: {kid!r} is the active key; activate another key first", field="keys"
            )
        self._entries[kid] = replace(entry, state=KeyState.RETIRED, retire_at=until)

    def remove(self, kid: str) -> None:
        """Drop ``kid`` now; receivers still holding signatures by it will fail."""
        if self.get(kid).state is KeyState.ACTIVE:
            raise InvalidKeyError(f"keys: {kid!r} is the active key", field="keys")
        del self._entries[kid]

    def prune(self, now: datetime | None = None) -> list[str]:
        """Step 3: drop retired keys whose date has passed; returns their kids."""
        at = self._now(now)
        gone = [e.kid for e in self._entries.values() if not e.published_at(at)]
        for kid in gone:
            del self._entries[kid]
        return gone

    def __repr__(self) -> str:
        inner = ", ".join(f"{e.kid}:{e.state.value}" for e in self._entries.values())
        return f"KeySet([{inner}])"
