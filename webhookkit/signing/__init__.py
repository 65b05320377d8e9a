"""Signers (sender side) and verifiers (receiver side) for Saleor's signature schemes."""

from __future__ import annotations

from .hmac import HMACSigner, hmac_signature, verify_hmac
from .jws import JWSSigner, RSAKey, jwk_thumbprint, verify_jws

__all__ = [
    "HMACSigner",
    "JWSSigner",
    "RSAKey",
    "hmac_signature",
    "jwk_thumbprint",
    "verify_hmac",
    "verify_jws",
]
