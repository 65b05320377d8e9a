"""No secret key, private key, raw token or Authorization value leaks into reprs, logs,
exceptions or records."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from conftest import LOOPBACK, Receiver
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from webhookkit import ConfigurationError, HTTPTransport, InvalidKeyError, RSAKey, WebhookKit
from webhookkit.testing import FakeClock

SECRET_KEY = "hmac-secret-do-not-leak"
AUTH = "Bearer auth-token-do-not-leak"
URL_PASSWORD = "url-password-do-not-leak"


def _pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


async def test_secrets_never_appear_in_reprs_logs_errors_or_records(
    clock: FakeClock, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pem = _pem()
    pem_body = pem.decode().splitlines()[5]  # a line of the private key material
    receiver.statuses = [503]
    seen: list[str] = []
    async with WebhookKit(
        clock=clock, signing_key=pem, transports=[HTTPTransport(allow_addresses=LOOPBACK)]
    ) as kit:
        app = await kit.apps.create("leaky", permissions=["MANAGE_ORDERS"])
        token = await kit.apps.create_token(app.id)
        raw_token = token.raw.reveal()
        webhook = await kit.webhooks.create(
            app,
            target_url=receiver.url,
            events=["ORDER_CREATED"],
            secret_key=SECRET_KEY,
            custom_headers={"Authorization": AUTH},
        )
        jws_webhook = await kit.webhooks.create(
            app, target_url=receiver.url, events=["ORDER_CREATED"]
        )
        ids = await kit.trigger("ORDER_CREATED", payload={"x": 1})
        await kit.wait_idle()
        await clock.advance(10)
        await kit.wait_for(ids, timeout=10)
        bad_inputs: list[dict[str, Any]] = [
            {"target_url": f"ftp://user:{URL_PASSWORD}@host/"},
            {"target_url": f"https://user:{URL_PASSWORD}@host:99999/"},
            {"target_url": receiver.url, "custom_headers": {"Bad": AUTH}},
        ]
        for bad in bad_inputs:
            with pytest.raises(ConfigurationError) as info:
                await kit.webhooks.create(app, events=[], **bad)
            seen += [str(info.value), repr(info.value)]
        objects: list[object] = [kit, kit.store, app, token, token.token, webhook, jws_webhook]
        objects += await kit.apps.list_tokens(app.id)
        for delivery_id in ids:
            objects.append(await kit.get_delivery(delivery_id))
            objects += await kit.list_attempts(delivery_id)
        seen += [repr(o) for o in objects] + [str(o) for o in objects]
        seen += [repr(kit.signer), repr(kit.signer.key)]
    with pytest.raises(InvalidKeyError) as bad_key:
        RSAKey.from_pem(pem[:200] + b"garbage" + pem[200:])
    seen += [str(bad_key.value), repr(bad_key.value)]
    seen += [r.getMessage() for r in caplog.records] + [caplog.text]
    text = "\n".join(seen)
    assert "[secret]" in text  # the redaction is really in the places searched
    for secret in (SECRET_KEY, AUTH, URL_PASSWORD, raw_token, pem_body, "PRIVATE KEY"):
        assert secret not in text, secret
    # The receiver did get the real values: redaction is for records, not the wire.
    assert any(r.header("Authorization") == AUTH for r in receiver.received)
