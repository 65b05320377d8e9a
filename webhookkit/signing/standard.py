"""The Standard Webhooks scheme (standardwebhooks.com): ``webhook-id``, ``webhook-timestamp``
and ``webhook-signature`` headers.

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``. Symmetric secrets are
``whsec_`` + base64 (24 to 64 random bytes) and sign ``v1,<base64 HMAC-SHA256>``; asymmetric
ones are Ed25519 keys, ``whsk_`` + base64 seed to sign and ``whpk_`` + base64 public key to
verify, signing ``v1a,<base64 signature>``. During a rotation a webhook holds several secrets
and the header carries one signature per secret, space separated; the receiver accepts the
delivery if any of them matches a secret it holds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from .._secret import Secret
from ..exceptions import InvalidKeyError, MalformedSignatureError

__all__ = [
    "HEADER_ID",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "StandardSecret",
    "StandardWebhooksSigner",
    "new_keypair",
    "new_secret",
    "parse_secrets",
    "public_key_of",
    "signed_content",
]

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"

SYMMETRIC_PREFIX = "whsec_"
PRIVATE_PREFIX = "whsk_"
PUBLIC_PREFIX = "whpk_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
#: At most this many secrets at once: a rotation needs two, three leaves slack.
MAX_SECRETS = 5


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKeyError(
            "secret_key: Standard Webhooks secret is not base64", field="secret_key"
        ) from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True, slots=True)
class StandardSecret:
    """One parsed secret: ``kind`` is ``"v1"`` (HMAC) or ``"v1a"`` (Ed25519).

    ``hmac_key`` is set for ``v1``, ``private`` (optional) and ``public`` for ``v1a``.
    """

    kind: str
    hmac_key: bytes | None = field(default=None, repr=False)
    private: ed25519.Ed25519PrivateKey | None = field(default=None, repr=False)
    public: ed25519.Ed25519PublicKey | None = field(default=None, repr=False)

    @property
    def can_sign(self) -> bool:
        return self.hmac_key is not None or self.private is not None

    def sign(self, content: bytes) -> str:
        if self.hmac_key is not None:
            return "v1," + _b64(hmac.new(self.hmac_key, content, hashlib.sha256).digest())
        if self.private is None:
            raise InvalidKeyError(
                "secret_key: a whpk_ public key cannot sign; give the whsk_ secret key",
                field="secret_key",
            )
        return "v1a," + _b64(self.private.sign(content))

    @classmethod
    def parse(cls, text: str) -> StandardSecret:
        """Parse one ``whsec_`` / ``whsk_`` / ``whpk_`` value; errors never echo it."""
        if text.startswith(SYMMETRIC_PREFIX):
            key = _b64decode(text[len(SYMMETRIC_PREFIX) :])
            if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
                raise InvalidKeyError(
                    f"secret_key: a whsec_ secret must hold {MIN_SECRET_BYTES} to "
                    f"{MAX_SECRET_BYTES} bytes, this one holds {len(key)}",
                    field="secret_key",
                )
            return cls("v1", hmac_key=key)
        if text.startswith(PRIVATE_PREFIX):
            raw = _b64decode(text[len(PRIVATE_PREFIX) :])
            # The spec's libraries store the 32-byte seed; some tools append the public key.
            if len(raw) not in (32, 64):
                raise InvalidKeyError(
                    "secret_key: a whsk_ key must hold a 32-byte Ed25519 seed", field="secret_key"
                )
            private = ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32])
            return cls("v1a", private=private, public=private.public_key())
        if text.startswith(PUBLIC_PREFIX):
            raw = _b64decode(text[len(PUBLIC_PREFIX) :])
            try:
                public = ed25519.Ed25519PublicKey.from_public_bytes(raw)
            except ValueError:
                raise InvalidKeyError(
                    "secret_key: a whpk_ key must hold a 32-byte Ed25519 public key",
                    field="secret_key",
                ) from None
            return cls("v1a", public=public)
        raise InvalidKeyError(
            "secret_key: Standard Webhooks secrets start with 'whsec_', 'whsk_' or 'whpk_'",
            field="secret_key",
        )


def parse_secrets(
    value: str | Secret | Iterable[str | Secret],
) -> tuple[StandardSecret, ...]:
    """Parse one secret, a space-separated list of them, or an iterable of either."""
    if isinstance(value, str | Secret):
        items: list[object] = [value]
    elif isinstance(value, Iterable) and not isinstance(value, bytes | bytearray):
        items = list(value)
    else:
        raise InvalidKeyError("secret_key: secrets must be strings", field="secret_key")
    texts: list[str] = []
    for item in items:
        raw = item.reveal() if isinstance(item, Secret) else item
        if not isinstance(raw, str):
            raise InvalidKeyError("secret_key: secrets must be strings", field="secret_key")
        texts += raw.split()
    if not texts:
        raise InvalidKeyError("secret_key: no Standard Webhooks secret given", field="secret_key")
    if len(texts) > MAX_SECRETS:
        raise InvalidKeyError(
            f"secret_key: {len(texts)} secrets, at most {MAX_SECRETS}", field="secret_key"
        )
    return tuple(StandardSecret.parse(t) for t in texts)


def signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    """``{msg_id}.{timestamp}.{body}`` as bytes: what every Standard Webhooks signature covers.

    An id that is no encodable text (lone surrogates from undecodable header bytes) raises
    :class:`MalformedSignatureError`.
    """
    try:
        prefix = f"{msg_id}.{timestamp}.".encode()
    except UnicodeEncodeError:
        raise MalformedSignatureError(f"{HEADER_ID}: not text (undecodable bytes)") from None
    return prefix + body


def _check_id(msg_id: str) -> None:
    # A '.' would let an attacker shift bytes between the id and the timestamp.
    if (
        not isinstance(msg_id, str)
        or not msg_id
        or "." in msg_id
        or not msg_id.isascii()
        or not msg_id.isprintable()
    ):
        raise InvalidKeyError(
            "webhook-id: must be non-empty printable ASCII without '.'", field="webhook_id"
        )
    if " " in msg_id:
        raise InvalidKeyError("webhook-id: must not contain spaces", field="webhook_id")


class StandardWebhooksSigner:
    """Signs with every secret it holds (``whsec_`` and/or ``whsk_``), for rotation."""

    kind = "standard-webhooks"

    def __init__(self, secrets: str | Secret | Sequence[str | Secret]) -> None:
        parsed = parse_secrets(secrets)
        unusable = [s for s in parsed if not s.can_sign]
        if unusable:
            raise InvalidKeyError(
                "secret_key: whpk_ public keys verify only; a signer needs whsec_ or whsk_",
                field="secret_key",
            )
        self._secrets = parsed

    def signature(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """The ``webhook-signature`` value: one signature per secret, space separated."""
        _check_id(msg_id)
        content = signed_content(msg_id, timestamp, body)
        return " ".join(s.sign(content) for s in self._secrets)

    def headers(self, msg_id: str, timestamp: int, body: bytes) -> tuple[tuple[str, str], ...]:
        """The three headers, in the spec's order."""
        return (
            (HEADER_ID, msg_id),
            (HEADER_TIMESTAMP, str(timestamp)),
            (HEADER_SIGNATURE, self.signature(msg_id, timestamp, body)),
        )

    def __repr__(self) -> str:
        kinds = ",".join(s.kind for s in self._secrets)
        return f"StandardWebhooksSigner(secrets=[secret] x {len(self._secrets)} ({kinds}))"


def new_secret(nbytes: int = 32) -> Secret:
    """A fresh ``whsec_`` secret of ``nbytes`` random bytes (24 to 64)."""
    if not MIN_SECRET_BYTES <= nbytes <= MAX_SECRET_BYTES:
        raise InvalidKeyError(
            f"nbytes: {nbytes} outside {MIN_SECRET_BYTES}..{MAX_SECRET_BYTES}", field="nbytes"
        )
    return Secret(SYMMETRIC_PREFIX + _b64(_random.token_bytes(nbytes)))


def new_keypair() -> tuple[Secret, str]:
    """A fresh Ed25519 pair: the ``whsk_`` secret key (keep it) and the ``whpk_`` public key
    (give it to the receiver)."""
    private = ed25519.Ed25519PrivateKey.generate()
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return Secret(PRIVATE_PREFIX + _b64(seed)), public_key_of(private)


def public_key_of(secret: str | Secret | ed25519.Ed25519PrivateKey) -> str:
    """The ``whpk_`` public key of a ``whsk_`` secret key."""
    if isinstance(secret, ed25519.Ed25519PrivateKey):
        public = secret.public_key()
    else:
        found = parse_secrets(secret)
        parsed = found[0]
        if len(found) != 1 or parsed.public is None:
            raise InvalidKeyError("secret_key: expected one whsk_ secret key", field="secret_key")
        public = parsed.public
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PUBLIC_PREFIX + _b64(raw)
