"""What the scheduler calls per delivery: the profile decides the signature and its headers."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from conftest import LOOPBACK, Receiver

from webhookkit import (
    HTTPTransport,
    InvalidFieldError,
    InvalidKeyError,
    Secret,
    Webhook,
    WebhookKit,
)
from webhookkit.delivery.records import Payload
from webhookkit.signing import (
    JWSSigner,
    KeySet,
    StandardWebhooksVerifier,
    generate_key,
    hmac_signature,
    new_secret,
    sign_delivery,
    verify_jws,
)
from webhookkit.signing.profiles import payload_jws
from webhookkit.testing import FakeClock

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Counters:
    jws_signatures: int = 0
    hmac_signatures: int = 0


def payload(n: int = 1) -> Payload:
    return Payload(id=f"p{n}", event="order_created", body=b'{"n":%d}' % n, created_at=NOW)


def webhook(**changes: object) -> Webhook:
    fields: dict[str, object] = {"id": "w1", "app_id": "a1", "target_url": "https://x.test/"}
    fields.update(changes)
    return Webhook(**fields)  # type: ignore[arg-type]


def test_saleor_profile_uses_hmac_with_a_secret_key() -> None:
    stats = Counters()
    signed = sign_delivery(
        payload(),
        webhook(secret_key=Secret("k")),
        delivery_id="d1",
        now=NOW,
        jws=JWSSigner(KeySet.generate()),
        cache=OrderedDict(),
        stats=stats,
    )
    assert signed.signature == hmac_signature(payload().body, "k")
    assert signed.headers == ()
    assert (stats.hmac_signatures, stats.jws_signatures) == (1, 0)


def test_jws_is_signed_once_per_payload_and_key_not_per_webhook() -> None:
    stats = Counters()
    signer = JWSSigner(KeySet.generate())
    cache: OrderedDict[str, str] = OrderedDict()
    values = {
        sign_delivery(
            payload(),
            webhook(id=f"w{i}"),
            delivery_id=f"d{i}",
            now=NOW,
            jws=signer,
            cache=cache,
            stats=stats,
        ).signature
        for i in range(50)
    }
    assert len(values) == 1
    assert stats.jws_signatures == 1
    [value] = values
    assert value is not None
    verify_jws(payload().body, value, signer.jwks())

    # After a rotation the next delivery (a retry, say) is signed by the new key.
    new = generate_key("ES256")
    signer.keys.add(new)
    signer.keys.activate(new.kid)
    rotated = payload_jws(payload(), signer, cache, stats)
    assert rotated != value
    assert stats.jws_signatures == 2
    verify_jws(payload().body, rotated, signer.jwks())


def test_jws_cache_is_bounded() -> None:
    cache: OrderedDict[str, str] = OrderedDict()
    signer = JWSSigner(KeySet.generate("EdDSA"))
    for n in range(10):
        payload_jws(payload(n), signer, cache, cache_size=4)
    assert len(cache) == 4
    assert all(key.endswith(("p6", "p7", "p8", "p9")) for key in cache)


def test_standard_profile_adds_three_headers_and_no_saleor_signature() -> None:
    secret = new_secret()
    signed = sign_delivery(
        payload(),
        webhook(signing_profile="standard-webhooks", secret_key=secret),
        delivery_id="d42",
        now=NOW,
        jws=JWSSigner(KeySet.generate()),
        cache=OrderedDict(),
    )
    assert signed.signature is None
    headers = dict(signed.headers)
    assert [name for name, _ in signed.headers] == [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    ]
    assert headers["webhook-id"] == "d42"
    assert headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    StandardWebhooksVerifier(secret, now=NOW.timestamp).check(payload().body, headers)
    assert "whsec_" not in repr(signed)


def test_profile_errors_are_configuration_errors() -> None:
    with pytest.raises(InvalidKeyError, match="needs whsec_"):
        webhook(signing_profile="standard-webhooks")
    with pytest.raises(InvalidFieldError, match="signing_profile"):
        sign_delivery(
            payload(),
            webhook(signing_profile="carrier-pigeon"),
            delivery_id="d",
            now=NOW,
            jws=JWSSigner(KeySet.generate()),
            cache=OrderedDict(),
        )


async def test_kit_rotation_between_retries_re_signs_with_the_new_key(
    receiver: Receiver,
) -> None:
    """A delivery retried after a rotation carries the new key's signature, and receivers
    holding the JWKS (old key retired, still published) accept both attempts."""
    receiver.statuses = [503]
    clock = FakeClock(NOW)
    async with WebhookKit(clock=clock, transports=[HTTPTransport(allow_addresses=LOOPBACK)]) as kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        await kit.webhooks.create(app, target_url=receiver.url, events=["ORDER_CREATED"])
        ids = await kit.trigger("ORDER_CREATED", payload={"id": 1})
        await kit.wait_idle()
        new = generate_key("RS256")
        kit.signer.keys.add(new)
        kit.signer.keys.activate(new.kid, now=clock.now())
        await clock.advance(10)
        [delivery] = await kit.wait_for(ids, timeout=30)
        assert delivery.status.value == "success"
        jwks = kit.jwks()
        assert kit.stats.jws_signatures == 2
    first, second = (r.header("Saleor-Signature") for r in receiver.received)
    assert first is not None and second is not None and first != second
    for value in (first, second):
        verify_jws(receiver.received[0].body, value, jwks)
