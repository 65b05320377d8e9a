"""webhookkit quickstart: a real, signed delivery pipeline on loopback, in about 15 seconds.

A receiver (an aiohttp server on 127.0.0.1) verifies every request: HMAC for one webhook,
JWS against the shop's JWKS (fetched over HTTP) for the other. It answers the first JWS
request with 503, so one retry shows, 10 s later, on Saleor's schedule.

Run: make quickstart
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from webhookkit import HTTPTransport, SignatureError, WebhookKit, verify_hmac, verify_jws

SECRET = "quickstart-secret"


@dataclass
class Seen:
    verified: bool
    kind: str


class Receiver:
    """The other system: verifies each request before accepting it."""

    def __init__(self, jwks_url: str) -> None:
        self.jwks_url = jwks_url
        self.seen: dict[tuple[str, bytes], Seen] = {}
        self.failed_once = False

    async def hmac_hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify_hmac(body, request.headers.get("Saleor-Signature", ""), SECRET)
            ok = True
        except SignatureError:
            ok = False
        self.seen[("hmac", body)] = Seen(ok, "HMAC-SHA256")
        return web.Response(status=200 if ok else 401)

    async def jws_hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        async with aiohttp.ClientSession() as session, session.get(self.jwks_url) as response:
            jwks = await response.json()
        try:
            verify_jws(body, request.headers.get("Saleor-Signature", ""), jwks)
            ok = True
        except SignatureError:
            ok = False
        self.seen[("jws", body)] = Seen(ok, "JWS RS256")
        if not self.failed_once:
            self.failed_once = True
            return web.Response(status=503, text="warming up, try later")
        return web.Response(status=200 if ok else 401)


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def main() -> int:
    # The receiver runs on 127.0.0.1, which the SSRF guard refuses unless allowed.
    async with WebhookKit(
        domain="shop.example.com", transports=[HTTPTransport(allow_addresses=["127.0.0.1/32"])]
    ) as kit:
        # The shop publishes its JWKS, as Saleor does at /.well-known/jwks.json.
        shop = web.Application()

        async def jwks(_: web.Request) -> web.Response:
            return web.json_response(kit.jwks(), headers={"Cache-Control": "max-age=300"})

        shop.router.add_get("/.well-known/jwks.json", jwks)
        shop_runner, shop_url = await serve(shop)

        receiver = Receiver(shop_url + "/.well-known/jwks.json")
        other = web.Application()
        other.router.add_post("/hooks/hmac", receiver.hmac_hook)
        other.router.add_post("/hooks/jws", receiver.jws_hook)
        other_runner, other_url = await serve(other)

        app = await kit.apps.create("Order sync", permissions=["MANAGE_ORDERS"])
        events = ["ORDER_CREATED", "ORDER_FULLY_PAID"]
        hmac_hook = await kit.webhooks.create(
            app, target_url=f"{other_url}/hooks/hmac", events=events, secret_key=SECRET
        )
        jws_hook = await kit.webhooks.create(
            app, target_url=f"{other_url}/hooks/jws", events=events
        )
        path_of = {hmac_hook.id: "hmac", jws_hook.id: "jws"}

        ids: list[str] = []
        for number, event in [(1, "ORDER_CREATED"), (1, "ORDER_FULLY_PAID"), (2, "ORDER_CREATED")]:
            payload = {"order": {"number": str(number), "total": "42.00"}}
            ids += await kit.trigger(event, payload=payload)
        print(f"triggered 3 events -> {len(ids)} deliveries; waiting (one retry takes 10 s)...")
        deliveries = await kit.wait_for(ids, timeout=60)

        all_verified = True
        print(
            f"\n{'event':<18} {'target':<34} {'status':<8} {'tries':>5}  {'signature':<12} verified"
        )
        for delivery in deliveries:
            payload_row = await kit.store.get_payload(delivery.payload_id)
            assert payload_row is not None
            kind = path_of[delivery.webhook_id]
            seen = receiver.seen.get((kind, payload_row.body))
            verified = seen is not None and seen.verified and delivery.status.value == "success"
            all_verified &= verified
            target = f"{other_url}/hooks/{kind}".removeprefix("http://")
            print(
                f"{delivery.event:<18} {target:<34} {delivery.status.value:<8} "
                f"{delivery.attempts:>5}  {seen.kind if seen else '-':<12} "
                f"{'yes' if verified else 'NO'}"
            )
        print("\nfirst attempt of the retried delivery:")
        retried = next(d for d in deliveries if d.attempts > 1)
        first = (await kit.list_attempts(retried.id))[0]
        print(json.dumps({"status": first.response_status_code, "body": first.response_excerpt}))
        await other_runner.cleanup()
        await shop_runner.cleanup()
    print("\nall deliveries verified" if all_verified else "\nSOME DELIVERIES FAILED VERIFICATION")
    return 0 if all_verified else 1


if __name__ == "__main__":
    # Show the scheduler's own log of every attempt, retries included.
    logging.basicConfig(level=logging.INFO, format="  [log] %(message)s", stream=sys.stdout)
    sys.exit(asyncio.run(main()))
