"""Saleor's receivers, in their own code, accept what webhookkit signs and reject forgeries.

Node runs ``@saleor/app-sdk``'s ``verifySignatureWithJwks`` (with its bundled jose 5) and jose
6's ``flattenedVerify`` against the JWKS that webhookkit serves on loopback. Each case is also
put to webhookkit's own :class:`JWKSVerifier`, which must agree.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import LOOPBACK, Receiver

from webhookkit import HTTPTransport, WebhookKit
from webhookkit.exceptions import SignatureError
from webhookkit.signing import JWKSVerifier, JWSSigner, KeySet, generate_key
from webhookkit.signing._b64 import b64url_encode
from webhookkit.signing.keys import compact_json

from .conftest import JWKSServer, NodeRunner, jws_case

BODY = json.dumps(
    {"order": {"id": "T3JkZXI6MQ==", "number": "1", "note": "zażółć gęślą jaźń ✓"}},
    ensure_ascii=False,
    separators=(",", ":"),
).encode()


async def ours(url: str, body: bytes, signature: str) -> bool:
    try:
        await JWKSVerifier(url, refetch_interval=0).verify(body, {"Saleor-Signature": signature})
    except SignatureError:
        return False
    return True


async def check(
    node_verify: NodeRunner, url: str, expected: dict[str, tuple[bytes, str, bool]]
) -> None:
    """Every case must be accepted (True) or rejected (False) by the SDK, by jose 6 and by us."""
    cases = [jws_case(name, url, sig, body) for name, (body, sig, _) in expected.items()]
    results = await node_verify(cases)
    wrong: list[tuple[str, Any]] = []
    for name, (body, sig, accept) in expected.items():
        outcome = results[name]
        seen = {
            "saleorSdk": outcome["saleorSdk"]["ok"],
            "joseFlattened": outcome["joseFlattened"]["ok"],
            "webhookkit": await ours(url, body, sig),
        }
        if any(v is not accept for v in seen.values()):
            wrong.append((name, outcome))
    assert not wrong, wrong


async def test_rs256_accepted_by_sdk_and_jose_before_during_and_after_rotation(
    jwks_server: JWKSServer, node_verify: NodeRunner
) -> None:
    keys = jwks_server.keys
    signer = JWSSigner(keys)
    now = datetime.now(UTC)
    before = signer.sign(BODY)
    old_kid = keys.active.kid

    new_key = generate_key("RS256")
    keys.add(new_key)  # step 1: published, not signing
    step1 = signer.sign(BODY)
    assert step1 == before  # still the old key (RSA PKCS#1 v1.5 is deterministic)

    keys.activate(new_key.kid, retire_after=timedelta(hours=1), now=now)  # step 2
    after = signer.sign(BODY)
    assert json.loads(_header(after))["kid"] == new_key.kid

    await check(
        node_verify,
        jwks_server.url,
        {
            "before": (BODY, before, True),
            "after": (BODY, after, True),
            "tampered-body": (BODY.replace(b'"1"', b'"2"'), after, False),
            "truncated-body": (BODY[:-1], after, False),
        },
    )

    keys.prune(now + timedelta(hours=2))  # step 3: the old key leaves the JWKS
    assert old_kid not in keys
    await check(
        node_verify,
        jwks_server.url,
        {
            "after-prune-new": (BODY, after, True),
            "after-prune-old-signature": (BODY, before, False),
        },
    )


def _header(signature: str) -> bytes:
    import base64

    part = signature.split(".")[0]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def test_wrong_key_and_forged_kid_rejected_by_sdk_and_jose(
    jwks_server: JWKSServer, node_verify: NodeRunner
) -> None:
    published = jwks_server.keys.active
    stranger = generate_key("RS256")
    # Signed by a key that is not published, under its own kid.
    unknown = JWSSigner(stranger).sign(BODY)
    # Signed by a stranger, claiming the published kid.
    header = b64url_encode(
        compact_json(
            {"alg": "RS256", "b64": False, "crit": ["b64"], "kid": published.kid, "typ": "JWT"}
        )
    )
    forged = f"{header}..{b64url_encode(stranger.sign(header.encode() + b'.' + BODY))}"
    await check(
        node_verify,
        jwks_server.url,
        {
            "unknown-key": (BODY, unknown, False),
            "forged-kid": (BODY, forged, False),
            "genuine": (BODY, JWSSigner(jwks_server.keys).sign(BODY), True),
        },
    )


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
async def test_other_algorithms_accepted_by_sdk_and_jose(
    jwks_server: JWKSServer, node_verify: NodeRunner, alg: str
) -> None:
    jwks_server.keys = KeySet.generate(alg)
    signature = JWSSigner(jwks_server.keys).sign(BODY)
    await check(
        node_verify,
        jwks_server.url,
        {f"{alg}-ok": (BODY, signature, True), f"{alg}-tampered": (BODY + b" ", signature, False)},
    )


async def test_signature_sent_by_the_kit_verifies_in_the_sdk(
    jwks_server: JWKSServer, node_verify: NodeRunner, receiver: Receiver
) -> None:
    """The real wire value: what the scheduler put in Saleor-Signature over HTTP."""
    async with WebhookKit(
        domain="shop.example.com",
        signing_key=jwks_server.keys,
        transports=[HTTPTransport(allow_addresses=LOOPBACK)],
    ) as kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        for n in range(3):
            await kit.webhooks.create(
                app, target_url=f"{receiver.url}/hook/{n}", events=["ORDER_CREATED"]
            )
        ids = await kit.trigger("ORDER_CREATED", payload=json.loads(BODY))
        await kit.wait_for(ids, timeout=30)
        assert kit.stats.jws_signatures == 1  # one payload, three webhooks, one JWS
    assert len(receiver.received) == 3
    request = receiver.received[0]
    signature = request.header("Saleor-Signature")
    assert signature is not None
    assert request.header("X-Saleor-Signature") == signature
    await check(
        node_verify,
        jwks_server.url,
        {
            "wire": (request.body, signature, True),
            "wire-tampered": (request.body + b"\n", signature, False),
        },
    )


async def test_jose6_needs_crit_which_is_why_webhookkit_always_sends_it(
    jwks_server: JWKSServer, node_verify: NodeRunner
) -> None:
    key = jwks_server.keys.active
    header = b64url_encode(
        compact_json({"alg": "RS256", "b64": False, "kid": key.kid, "typ": "JWT"})
    )
    no_crit = f"{header}..{b64url_encode(key.sign(header.encode() + b'.' + BODY))}"
    results = await node_verify([jws_case("no-crit", jwks_server.url, no_crit, BODY)])
    assert results["no-crit"]["saleorSdk"]["ok"] is True  # the SDK's bundled jose 5 is lenient
    assert results["no-crit"]["joseFlattened"]["ok"] is False  # jose 6 is not
    assert not await ours(jwks_server.url, BODY, no_crit)  # and neither are we
    sent = JWSSigner(jwks_server.keys).sign(BODY)
    assert json.loads(_header(sent))["crit"] == ["b64"]
