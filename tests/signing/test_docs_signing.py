"""docs/signing.md: the six-line receivers run as printed, verify, and refuse forgeries."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from webhookkit.signing import JWKSVerifier, JWSSigner, generate_key

from .test_integrations_asgi import call

DOC = Path(__file__).resolve().parents[2] / "docs" / "signing.md"
BODY = b'{"order":{"id":"1"}}'


def snippet(title: str) -> str:
    text = DOC.read_text()
    match = re.search(re.escape(title) + r".*?```python\n(.*?)```", text, re.S)
    assert match, f"no code block after {title!r} in docs/signing.md"
    return match.group(1)


def code_lines(source: str) -> list[str]:
    return [
        line
        for line in source.splitlines()
        if line.strip() and not line.startswith(("from ", "import "))
    ]


@pytest.fixture
def signer(monkeypatch: pytest.MonkeyPatch) -> JWSSigner:
    """The docs point at shop.example.com; point ``for_saleor`` at a local key instead."""
    signer = JWSSigner(generate_key("RS256"))

    def for_saleor(cls: type[JWKSVerifier], /, api_url: str, **options: Any) -> JWKSVerifier:
        assert api_url == "https://shop.example.com/graphql/"
        return JWKSVerifier(jwks=signer.jwks())

    monkeypatch.setattr(JWKSVerifier, "for_saleor", classmethod(for_saleor))
    return signer


async def test_aiohttp_receiver_in_six_lines(signer: JWSSigner) -> None:
    source = snippet("### The receiver in six lines: aiohttp")
    assert len(code_lines(source)) == 6
    namespace: dict[str, Any] = {}
    exec(compile(source, str(DOC), "exec"), namespace)
    runner = web.AppRunner(namespace["app"], access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/order-created"
    try:
        async with aiohttp.ClientSession() as session:
            headers = {"Saleor-Signature": signer.sign(BODY), "Saleor-Event": "order_created"}
            async with session.post(url, data=BODY, headers=headers) as ok:
                assert (ok.status, await ok.text()) == (200, "ok")
            headers["Saleor-Signature"] = signer.sign(BODY + b" ")
            async with session.post(url, data=BODY, headers=headers) as forged:
                assert forged.status == 401
    finally:
        await runner.cleanup()


async def test_fastapi_receiver_in_six_lines(signer: JWSSigner) -> None:
    source = snippet("### The receiver in six lines: FastAPI")
    assert len(code_lines(source)) == 6
    namespace: dict[str, Any] = {}
    exec(compile(source, str(DOC), "exec"), namespace)
    app = namespace["app"]
    headers = [("Saleor-Signature", signer.sign(BODY)), ("Saleor-Event", "ORDER_CREATED")]
    answer = await call(app, "POST", "/webhooks/order-created", headers, [BODY])
    assert (answer.status, json.loads(answer.body)) == (200, {"received": "order_created"})
    forged = [("Saleor-Signature", signer.sign(b"{}"))]
    assert (await call(app, "POST", "/webhooks/order-created", forged, [BODY])).status == 401
