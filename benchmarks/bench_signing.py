"""Sign and verify cost per delivery for each signing profile, and proof that the JWS is paid
once per distinct payload, not per webhook.

Run from the project root: ``python -m benchmarks.bench_signing`` (about 10 s). The body is
a realistic 2 KB ``ORDER_CREATED`` JSON. Sign cost is measured through
:func:`webhookkit.signing.sign_delivery`, what the scheduler calls for each delivery; verify
cost through the receivers' verifiers with keys already parsed (as after the first fetch).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from webhookkit import WebhookKit
from webhookkit._secret import Secret
from webhookkit.apps import Webhook
from webhookkit.delivery.records import Payload
from webhookkit.signing import (
    HMACVerifier,
    JWSSigner,
    KeySet,
    PublicKeys,
    StandardWebhooksVerifier,
    new_keypair,
    new_secret,
    sign_delivery,
    verify_jws,
)
from webhookkit.testing import MemoryTransport

NOW = datetime(2026, 1, 1, tzinfo=UTC)
BODY = json.dumps(
    {
        "order": {
            "id": "T3JkZXI6MQ==",
            "number": "1001",
            "lines": [
                {"id": f"T3JkZXJMaW5lOj{i}", "productName": "Juice", "quantity": i, "sku": f"S{i}"}
                for i in range(20)
            ],
            "total": {"gross": {"amount": 42.5, "currency": "EUR"}},
        }
    },
    separators=(",", ":"),
).encode()


@dataclass
class Counters:
    jws_signatures: int = 0
    hmac_signatures: int = 0


def per_call_us(fn: Callable[[], object], seconds: float) -> tuple[float, int]:
    """Run ``fn`` repeatedly for about ``seconds``; return microseconds per call and calls."""
    calls = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(10):
            fn()
        calls += 10
    return (time.perf_counter() - started) / calls * 1e6, calls


def webhook(**changes: object) -> Webhook:
    fields: dict[str, object] = {"id": "w", "app_id": "a", "target_url": "https://x.test/"}
    fields.update(changes)
    return Webhook(**fields)  # type: ignore[arg-type]


def profile_rows(seconds: float) -> list[tuple[str, float, float]]:
    """(profile, sign µs per delivery, verify µs per delivery) with no payload shared."""
    rows: list[tuple[str, float, float]] = []
    payload_counter = iter(range(10**9))

    def fresh_payload() -> Payload:
        return Payload(
            id=f"p{next(payload_counter)}", event="order_created", body=BODY, created_at=NOW
        )

    # Saleor HMAC
    hook = webhook(secret_key=Secret("s3cret"))
    jws = JWSSigner(KeySet.generate())
    cache: OrderedDict[str, str] = OrderedDict()

    def sign_hmac() -> object:
        return sign_delivery(fresh_payload(), hook, delivery_id="d", now=NOW, jws=jws, cache=cache)

    signature = sign_hmac()
    hmac_value = getattr(signature, "signature", "")
    verifier = HMACVerifier("s3cret")
    sign_us, _ = per_call_us(sign_hmac, seconds)
    verify_us, _ = per_call_us(
        lambda: verifier.check(BODY, {"Saleor-Signature": hmac_value}), seconds
    )
    rows.append(("saleor, HMAC (secret key)", sign_us, verify_us))

    # Saleor JWS, each algorithm, every delivery a new payload (the worst case: no sharing)
    for alg in ("RS256", "ES256", "EdDSA"):
        signer = JWSSigner(KeySet.generate(alg))
        keys = PublicKeys.from_jwks(signer.jwks())
        plain = webhook()
        jws_cache: OrderedDict[str, str] = OrderedDict()

        def sign_jws(
            signer: JWSSigner = signer,
            cache: OrderedDict[str, str] = jws_cache,
            hook: Webhook = plain,
        ) -> object:
            return sign_delivery(
                fresh_payload(), hook, delivery_id="d", now=NOW, jws=signer, cache=cache
            )

        value = signer.sign(BODY)
        sign_us, _ = per_call_us(sign_jws, seconds)
        verify_us, _ = per_call_us(functools.partial(verify_jws, BODY, value, keys), seconds)
        label = f"saleor, JWS {alg}{' (default)' if alg == 'RS256' else ''}"
        rows.append((label, sign_us, verify_us))

    # Standard Webhooks, HMAC (v1) and Ed25519 (v1a)
    private, public = new_keypair()
    for label, secret, check_with in (
        ("standard-webhooks, v1 HMAC", new_secret(), None),
        ("standard-webhooks, v1a Ed25519", private, public),
    ):
        std_hook = webhook(signing_profile="standard-webhooks", secret_key=secret)
        signed = sign_delivery(
            fresh_payload(), std_hook, delivery_id="d", now=NOW, jws=jws, cache=cache
        )
        headers = dict(signed.headers)
        std_verifier = StandardWebhooksVerifier(
            check_with if check_with is not None else secret, now=NOW.timestamp
        )

        def sign_std(hook: Webhook = std_hook) -> object:
            return sign_delivery(
                fresh_payload(), hook, delivery_id="d", now=NOW, jws=jws, cache=cache
            )

        sign_us, _ = per_call_us(sign_std, seconds)
        verify_us, _ = per_call_us(functools.partial(std_verifier.check, BODY, headers), seconds)
        rows.append((label, sign_us, verify_us))
    return rows


def fanout_rows(payloads: int, webhooks: int) -> list[tuple[str, int, int, float]]:
    """Sign ``payloads`` x ``webhooks`` deliveries the way the scheduler does; RS256."""
    signer = JWSSigner(KeySet.generate())
    rows: list[tuple[str, int, int, float]] = []
    hooks = [webhook(id=f"w{i}") for i in range(webhooks)]
    bodies = [
        Payload(id=f"p{n}", event="order_created", body=BODY + b" " * n, created_at=NOW)
        for n in range(payloads)
    ]
    stats = Counters()
    cache: OrderedDict[str, str] = OrderedDict()
    started = time.perf_counter()
    for payload in bodies:
        for hook in hooks:
            sign_delivery(
                payload, hook, delivery_id="d", now=NOW, jws=signer, cache=cache, stats=stats
            )
    elapsed = time.perf_counter() - started
    deliveries = payloads * webhooks
    rows.append(
        ("shared (webhookkit)", deliveries, stats.jws_signatures, elapsed / deliveries * 1e6)
    )

    started = time.perf_counter()
    for payload in bodies:
        for _ in hooks:
            signer.sign(payload.body)  # what signing per webhook would cost
    elapsed = time.perf_counter() - started
    rows.append(("per webhook (naive)", deliveries, deliveries, elapsed / deliveries * 1e6))
    return rows


async def kit_fanout(webhooks: int) -> tuple[int, int]:
    """One trigger through a real kit and scheduler to ``webhooks`` webhooks: JWS count."""
    transport = MemoryTransport()
    async with WebhookKit(domain="shop.example.com", transports=[transport]) as kit:
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        for i in range(webhooks):
            await kit.webhooks.create(
                app, target_url=f"memory://hook/{i}", events=["ORDER_CREATED"]
            )
        ids = await kit.trigger("ORDER_CREATED", payload=json.loads(BODY))
        await kit.wait_for(ids, timeout=60)
        signatures = {m.signature for m in transport.sent}
        assert len(signatures) == 1, "every webhook must get the same JWS"
        return len(transport.sent), kit.stats.jws_signatures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.4, help="time per measurement")
    parser.add_argument("--payloads", type=int, default=20)
    parser.add_argument("--webhooks", type=int, default=50)
    args = parser.parse_args(argv)

    print(f"body: {len(BODY)} bytes\n")
    print(f"{'profile':34} | {'sign us/delivery':>16} | {'verify us/delivery':>18}")
    print(f"{'-' * 34}-|-{'-' * 16}-|-{'-' * 18}")
    for label, sign_us, verify_us in profile_rows(args.seconds):
        print(f"{label:34} | {sign_us:16.1f} | {verify_us:18.1f}")

    print(f"\nJWS RS256 over {args.payloads} payloads x {args.webhooks} webhooks:")
    print(f"{'signing':22} | {'deliveries':>10} | {'JWS computed':>12} | {'us/delivery':>11}")
    print(f"{'-' * 22}-|-{'-' * 10}-|-{'-' * 12}-|-{'-' * 11}")
    rows = fanout_rows(args.payloads, args.webhooks)
    for label, deliveries, computed, us in rows:
        print(f"{label:22} | {deliveries:10} | {computed:12} | {us:11.1f}")
    print(f"speed-up: {rows[1][3] / rows[0][3]:.0f}x")

    sent, jws_count = asyncio.run(kit_fanout(100))
    print(
        f"\nWebhookKit, one ORDER_CREATED to 100 webhooks: {sent} sent, "
        f"kit.stats.jws_signatures = {jws_count}"
    )


if __name__ == "__main__":
    main()
