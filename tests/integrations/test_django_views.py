"""``@verify_webhook`` on sync and async Django views and ``jwks_view``, in a Django process of
their own (settings are global to a process, so not this one)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from webhookkit.signing import generate_key

SCRIPT = r"""
import asyncio, json, sys
import django
from django.conf import settings

settings.configure(
    WEBHOOKKIT={"store": "memory://", "domain": "shop.example.com",
                "signing_key_file": sys.argv[1]},
    ALLOWED_HOSTS=["testserver"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sys.argv[2]}},
)
django.setup()
from django.http import JsonResponse
from django.test import RequestFactory

from webhookkit.integrations.django.views import jwks_view, verify_webhook
from webhookkit.signing import HMACVerifier
from webhookkit.signing.hmac import hmac_signature

verifier = HMACVerifier("s3cret")


@verify_webhook(verifier)
def sync_view(request):
    return JsonResponse({"event": request.webhook_event.event})


@verify_webhook(verifier)
async def async_view(request):
    return JsonResponse({"payload": request.webhook_event.payload})


body = b'{"order": 1}'
good = {
    "HTTP_SALEOR_SIGNATURE": hmac_signature(body, "s3cret"),
    "HTTP_SALEOR_EVENT": "order_created",
}
bad = {**good, "HTTP_SALEOR_SIGNATURE": hmac_signature(body, "other")}
factory = RequestFactory()


def post(headers, data=body):
    return factory.post("/hook", data=data, content_type="application/json", **headers)


def answer(response):
    return [response.status_code, response.content.decode()]


out = {
    "sync_good": answer(sync_view(post(good))),
    "sync_bad": answer(sync_view(post(bad))),
    "sync_not_json": answer(sync_view(post(
        {**good, "HTTP_SALEOR_SIGNATURE": hmac_signature(b"nope", "s3cret")}, b"nope"))),
    "async_good": answer(asyncio.run(async_view(post(good)))),
    "async_bad": answer(asyncio.run(async_view(post(bad)))),
    "csrf_exempt": getattr(sync_view, "csrf_exempt", False),
    "jwks": json.loads(jwks_view(factory.get("/.well-known/jwks.json")).content),
    "jwks_cache": jwks_view(factory.get("/")).headers["Cache-Control"],
}
from django.db import connection

from webhookkit import WebhookKit
from webhookkit.exceptions import ConfigurationError


async def trigger_from_the_loop():
    async with WebhookKit(store=f"sqlite:///{sys.argv[2]}", domain="shop.example.com") as kit:
        app = await kit.apps.create("shop", permissions=["MANAGE_ORDERS"])
        await kit.webhooks.create(app, target_url="https://erp.example.com/h",
                                  events=["ORDER_CREATED"])
        try:
            await kit.trigger("ORDER_CREATED", payload={"n": 1}, connection=connection)
        except ConfigurationError as exc:
            return [exc.field, str(exc)]
        return None


out["async_trigger"] = asyncio.run(trigger_from_the_loop())
print(json.dumps(out))
"""


def test_verify_webhook_and_jwks_view(tmp_path: Path) -> None:
    key = generate_key("EdDSA")
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(key.private_pem())
    script = tmp_path / "views.py"
    script.write_text(SCRIPT, "utf-8")
    done = subprocess.run(
        [sys.executable, str(script), str(key_file), str(tmp_path / "shop.db")],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["sync_good"] == [200, '{"event": "order_created"}']
    assert out["sync_bad"][0] == 401 and "signature mismatch" in out["sync_bad"][1]
    assert out["sync_not_json"][0] == 400
    assert out["async_good"] == [200, '{"payload": {"order": 1}}']
    assert out["async_bad"][0] == 401
    assert out["csrf_exempt"] is True
    assert [k["kid"] for k in out["jwks"]["keys"]] == [key.kid]
    assert "max-age=" in out["jwks_cache"]
    # Django's connection inside an event loop: refused with the way out, nothing written.
    field, message = out["async_trigger"]
    assert field == "connection"
    assert "sync_to_async" in message
