"""Signers (sender side) and verifiers (receiver side) for Saleor's and Standard Webhooks'
signature schemes, and the :class:`KeySet` that rotates JWS keys."""

from __future__ import annotations

from .hmac import HMACSigner, hmac_signature, verify_hmac
from .jws import JWSSigner, PublicKeys, verify_jws
from .keys import (
    ECKey,
    Ed25519Key,
    KeySet,
    KeyState,
    PublishedKey,
    RSAKey,
    SigningKey,
    generate_key,
    jwk_thumbprint,
    load_key,
)
from .profiles import DeliverySignature, sign_delivery
from .standard import StandardWebhooksSigner, new_keypair, new_secret, public_key_of
from .verify import (
    HMACVerifier,
    JWKSVerifier,
    StandardWebhooksVerifier,
    Verifier,
    jwks_url_for,
)

__all__ = [
    "DeliverySignature",
    "ECKey",
    "Ed25519Key",
    "HMACSigner",
    "HMACVerifier",
    "JWKSVerifier",
    "JWSSigner",
    "KeySet",
    "KeyState",
    "PublicKeys",
    "PublishedKey",
    "RSAKey",
    "SigningKey",
    "StandardWebhooksSigner",
    "StandardWebhooksVerifier",
    "Verifier",
    "generate_key",
    "hmac_signature",
    "jwk_thumbprint",
    "jwks_url_for",
    "load_key",
    "new_keypair",
    "new_secret",
    "public_key_of",
    "sign_delivery",
    "verify_hmac",
    "verify_jws",
]
