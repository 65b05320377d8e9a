"""The Standard Webhooks profile, checked by the PyPI ``standardwebhooks`` package (and v1a by
node's crypto), including deliveries the kit actually sent."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from conftest import LOOPBACK, Receiver
from standardwebhooks import Webhook as ReferenceVerifier
from standardwebhooks.webhooks import WebhookVerificationError

from webhookkit import HTTPTransport, InvalidFieldError, InvalidKeyError, WebhookKit
from webhookkit.signing import (
    StandardWebhooksSigner,
    StandardWebhooksVerifier,
    new_keypair,
    new_secret,
    public_key_of,
)

from .conftest import NodeRunner

BODY = b'{"order":{"id":"T3JkZXI6MQ==","total":"10.00"}}'


def headers_now(
    signer: StandardWebhooksSigner, body: bytes = BODY, *, age: int = 0
) -> dict[str, str]:
    return dict(signer.headers("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", int(time.time()) - age, body))


def test_reference_library_verifies_our_v1_signatures() -> None:
    secret = new_secret()
    ReferenceVerifier(secret.reveal()).verify(BODY, headers_now(StandardWebhooksSigner(secret)))


def test_reference_library_rejects_tampering_wrong_keys_and_stale_timestamps() -> None:
    secret = new_secret()
    signer = StandardWebhooksSigner(secret)
    reference = ReferenceVerifier(secret.reveal())
    with pytest.raises(WebhookVerificationError):
        reference.verify(BODY.replace(b"10.00", b"99.00"), headers_now(signer))
    with pytest.raises(WebhookVerificationError):
        ReferenceVerifier(new_secret().reveal()).verify(BODY, headers_now(signer))
    with pytest.raises(WebhookVerificationError, match="too old"):
        reference.verify(BODY, headers_now(signer, age=600))


def test_during_rotation_either_secret_verifies_with_the_reference_library() -> None:
    old, new = new_secret(), new_secret()
    headers = headers_now(StandardWebhooksSigner([new, old]))
    assert len(headers["webhook-signature"].split(" ")) == 2
    ReferenceVerifier(old.reveal()).verify(BODY, headers)
    ReferenceVerifier(new.reveal()).verify(BODY, headers)


def test_we_accept_what_the_reference_library_signs() -> None:
    secret = new_secret()
    stamp = datetime.now(UTC)
    signature = ReferenceVerifier(secret.reveal()).sign("msg_1", stamp, BODY.decode())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": signature,
    }
    StandardWebhooksVerifier(secret).check(BODY, headers)


def test_spec_example_signature() -> None:
    # Any receiver computes HMAC-SHA256 over "id.timestamp.body" with the decoded secret.
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    signer = StandardWebhooksSigner(secret)
    value = signer.signature("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    ref = ReferenceVerifier(secret).sign(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        datetime.fromtimestamp(1614265330, UTC),
        '{"test": 2432232314}',
    )
    assert value == ref


async def test_v1a_signatures_verify_in_node(node_verify: NodeRunner) -> None:
    private, public = new_keypair()
    assert public_key_of(private) == public
    signer = StandardWebhooksSigner([new_secret(), private])
    headers = headers_now(signer)
    base = {
        "checks": ["ed25519"],
        "publicKey": public,
        "msgId": headers["webhook-id"],
        "timestamp": headers["webhook-timestamp"],
        "signatureHeader": headers["webhook-signature"],
    }
    other_public = new_keypair()[1]
    results = await node_verify(
        [
            {**base, "name": "ok", "bodyB64": base64.b64encode(BODY).decode()},
            {**base, "name": "tampered", "bodyB64": base64.b64encode(BODY + b" ").decode()},
            {
                **base,
                "name": "wrong-key",
                "publicKey": other_public,
                "bodyB64": base64.b64encode(BODY).decode(),
            },
        ]
    )
    assert results["ok"]["ed25519"]["ok"] is True
    assert results["tampered"]["ed25519"]["ok"] is False
    assert results["wrong-key"]["ed25519"]["ok"] is False


@pytest.mark.parametrize(
    "bad",
    [
        "whsec_" + base64.b64encode(b"short").decode(),
        "whsec_" + base64.b64encode(b"x" * 65).decode(),
        "whsec_not*base64",
        "plainsecret",
        "whsk_" + base64.b64encode(b"x" * 10).decode(),
        "whpk_" + base64.b64encode(b"x" * 10).decode(),
    ],
    ids=["too-short", "too-long", "not-base64", "no-prefix", "bad-whsk", "bad-whpk"],
)
def test_unusable_secrets_are_configuration_errors_that_never_echo_them(bad: str) -> None:
    with pytest.raises(InvalidKeyError) as caught:
        StandardWebhooksSigner(bad)
    assert bad not in str(caught.value)


def test_public_keys_cannot_sign_and_ids_must_be_safe() -> None:
    _, public = new_keypair()
    with pytest.raises(InvalidKeyError, match="verify only"):
        StandardWebhooksSigner(public)
    signer = StandardWebhooksSigner(new_secret())
    for bad_id in ("", "a.b", "a b"):
        with pytest.raises(InvalidKeyError):
            signer.signature(bad_id, 1, BODY)
    assert "whsec_" not in repr(signer)


async def test_kit_delivers_standard_webhooks_headers_the_reference_library_accepts(
    receiver: Receiver,
) -> None:
    old, new = new_secret(), new_secret()
    async with WebhookKit(
        domain="shop.example.com", transports=[HTTPTransport(allow_addresses=LOOPBACK)]
    ) as kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        webhook = await kit.webhooks.create(
            app,
            target_url=receiver.url + "/hook",
            events=["ORDER_CREATED"],
            signing_profile="standard-webhooks",
            secret_key=new,
        )
        # Rotation: hold both secrets while the receiver switches.
        webhook = await kit.webhooks.update(webhook.id, secret_key=f"{new.reveal()} {old.reveal()}")
        assert new.reveal() not in repr(webhook)
        [delivery_id] = await kit.trigger("ORDER_CREATED", payload={"id": 1})
        await kit.wait_for([delivery_id], timeout=30)
    [request] = receiver.received
    names = [name.lower() for name, _ in request.headers]
    assert "saleor-signature" not in names
    assert names.index("saleor-api-url") < names.index("webhook-id")
    assert (
        names.index("webhook-id")
        < names.index("webhook-timestamp")
        < names.index("webhook-signature")
    )
    headers = {name: value for name, value in request.headers}
    assert request.header("webhook-id") == delivery_id
    ReferenceVerifier(old.reveal()).verify(request.body, headers)
    ReferenceVerifier(new.reveal()).verify(request.body, headers)
    with pytest.raises(WebhookVerificationError):
        ReferenceVerifier(new_secret().reveal()).verify(request.body, headers)


async def test_standard_profile_needs_valid_secrets_at_creation(receiver: Receiver) -> None:
    async with WebhookKit(
        domain="shop.example.com", transports=[HTTPTransport(allow_addresses=LOOPBACK)]
    ) as kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        common: dict[str, Any] = {"target_url": receiver.url, "events": ["ORDER_CREATED"]}
        with pytest.raises(InvalidKeyError, match="needs whsec_"):
            await kit.webhooks.create(app, signing_profile="standard-webhooks", **common)
        with pytest.raises(InvalidKeyError):
            await kit.webhooks.create(
                app, signing_profile="standard-webhooks", secret_key="hunter2", **common
            )
        with pytest.raises(InvalidFieldError, match="standard-webhooks profile"):
            await kit.webhooks.create(app, secret_key=cast(Any, ["a", "b"]), **common)
        listed = await kit.webhooks.create(
            app,
            signing_profile="standard-webhooks",
            # A list (typed str | Secret in _manage today) is stored space-separated.
            secret_key=cast(Any, [new_secret(), new_keypair()[0]]),
            **common,
        )
        assert listed.secret_key is not None
        assert len(listed.secret_key.reveal().split()) == 2
        # A saleor-profile webhook keeps using its secret verbatim, spaces and all.
        plain = await kit.webhooks.create(app, secret_key="with space", **common)
        assert plain.secret_key is not None and plain.secret_key.reveal() == "with space"
