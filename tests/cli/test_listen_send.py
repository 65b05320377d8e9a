"""``listen`` and ``send`` as two real processes on loopback, and ``send`` to a receiver."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from conftest import Receiver

from webhookkit.signing import hmac_signature, new_secret

from ._cli import COMMAND, arun, env_without, one_line_error

LOOPBACK = "127.0.0.1/32"


@asynccontextmanager
async def listening(*options: str) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """``webhookkit listen --port 0`` running; yields its URL; stops it with SIGINT."""
    proc = await asyncio.create_subprocess_exec(
        *COMMAND,
        "listen",
        "--port",
        "0",
        *options,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env_without(),
    )
    assert proc.stdout is not None
    first = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    assert first.startswith("listening on http://127.0.0.1:"), first
    try:
        yield first.split()[2].rstrip("/"), proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 60)


async def stop(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_listen_verifies_what_send_signs(tmp_path: Path) -> None:
    payload = tmp_path / "order.json"
    payload.write_text(json.dumps({"order": {"id": "42", "total": 10}}))
    async with listening("--secret", "s3cret") as (url, proc):
        sent = await arun(
            "send",
            url + "/hooks",
            "--event",
            "ORDER_CREATED",
            "--payload",
            str(payload),
            "--secret",
            "s3cret",
            "--allow-address",
            LOOPBACK,
            "--domain",
            "shop.example.com",
        )
        assert sent.returncode == 0, sent.stderr
        assert f"POST {url}/hooks  order_created" in sent.stdout
        assert "< 200" in sent.stdout
        assert "Saleor-Signature: [secret]" in sent.stdout  # never the signature itself
        wrong = await arun(
            "send",
            url + "/hooks",
            "--event",
            "order_created",
            "--payload",
            "-",
            "--secret",
            "not-the-secret",
            "--allow-address",
            LOOPBACK,
            stdin='{"a": 1}',
        )
        assert wrong.returncode == 1 and "< 401" in wrong.stdout
        code, out, err = await stop(proc)
    assert code == 0, err
    first, second = out.split("\n[")
    assert "POST /hooks  order_created  verified (HMAC)" in first
    assert "Saleor-Domain: shop.example.com" in first
    assert "Saleor-Signature: [secret]" in first
    assert hmac_signature(b'{"order":{"id":"42","total":10}}', "s3cret") not in out
    assert '"total": 10' in first  # the body, pretty-printed
    assert "NOT VERIFIED" in second and "order_created" in second
    assert "received 2 webhook(s)" in err


async def test_listen_checks_standard_webhooks_and_forwards(
    receiver_factory: Callable[..., Awaitable[Receiver]],
) -> None:
    target = await receiver_factory()
    target.statuses = [202]
    secret = new_secret().reveal()
    async with listening("--standard-secret", secret, "--forward-to", target.url + "/in") as (
        url,
        proc,
    ):
        sent = await arun(
            "send",
            url,
            "--event",
            "PRODUCT_UPDATED",
            "--standard-secret",
            secret,
            "--allow-address",
            LOOPBACK,
        )
        code, out, _ = await stop(proc)
    assert code == 0
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "< 202" in sent.stdout  # the forward target's answer, passed back
    assert "verified (Standard Webhooks)" in out and f"forwarded to {target.url}/in: 202" in out
    [forwarded] = target.received
    assert forwarded.body == b"{}" and forwarded.header("Saleor-Event") == "product_updated"
    assert forwarded.header("webhook-signature") is not None


async def test_send_signs_with_a_key_file_and_reports_refusals(
    receiver: Receiver, tmp_path: Path
) -> None:
    from webhookkit.signing import KeySet, generate_key, verify_jws

    key = generate_key("RS256")
    pem = tmp_path / "key.pem"
    pem.write_bytes(key.private_pem())
    receiver.statuses = [200, 500]
    ok = await arun(
        "send",
        receiver.url + "/a",
        "--event",
        "ORDER_PAID",
        "--key-file",
        str(pem),
        "--allow-address",
        LOOPBACK,
        "--api-url",
        "https://shop.example.com/graphql/",
    )
    assert ok.returncode == 0, ok.stderr
    [request] = receiver.received
    assert request.header("Saleor-Api-Url") == "https://shop.example.com/graphql/"
    signature = request.header("Saleor-Signature")
    assert signature is not None
    verify_jws(request.body, signature, KeySet.of(key).jwks())
    failed = await arun(
        "send",
        receiver.url + "/a",
        "--event",
        "ORDER_PAID",
        "--secret",
        "x",
        "--allow-address",
        LOOPBACK,
    )
    assert failed.returncode == 1 and "< 500" in failed.stdout
    # Without --allow-address the SSRF guard refuses loopback: one line, exit 1.
    blocked = await arun("send", receiver.url, "--event", "ORDER_PAID", "--secret", "x")
    assert blocked.returncode == 1
    assert "--allow-address" in one_line_error(blocked)
    unknown = await arun("send", receiver.url, "--event", "ORDER_MADE_UP", "--secret", "x")
    assert unknown.returncode == 2 and "ORDER_MADE_UP" in one_line_error(unknown)
    bad_json = await arun(
        "send", receiver.url, "--event", "ORDER_PAID", "--payload", "-", stdin="{nope"
    )
    assert bad_json.returncode == 2 and "not JSON" in one_line_error(bad_json)
    assert len(receiver.received) == 2


async def test_listen_verifies_jws_against_a_jwks_url(
    receiver_factory: Callable[..., Awaitable[Receiver]], tmp_path: Path
) -> None:
    from aiohttp import web

    from webhookkit.signing import KeySet, generate_key

    key = generate_key("RS256")
    pem = tmp_path / "key.pem"
    pem.write_bytes(key.private_pem())
    jwks = json.dumps(KeySet.of(key).jwks())
    shop = await receiver_factory()
    shop.handler = lambda request, record: web.Response(text=jwks, content_type="application/json")
    async with listening("--jwks-url", shop.url + "/.well-known/jwks.json") as (url, proc):
        signed = await arun(
            "send", url, "--event", "ORDER_PAID", "--key-file", str(pem),
            "--allow-address", LOOPBACK,
        )  # fmt: skip
        other = tmp_path / "other.pem"
        other.write_bytes(generate_key("RS256").private_pem())
        forged = await arun(
            "send", url, "--event", "ORDER_PAID", "--key-file", str(other),
            "--allow-address", LOOPBACK,
        )  # fmt: skip
        code, out, _ = await stop(proc)
    assert code == 0
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert forged.returncode == 1 and "< 401" in forged.stdout
    first, second = out.split("\n[")
    assert "order_paid  verified (JWS)" in first
    assert "NOT VERIFIED" in second
    assert shop.for_path("/.well-known/jwks.json")
