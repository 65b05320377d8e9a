"""A synchronous webhook: ask a tax app for a checkout's taxes during the request.

The tax app is an aiohttp server on 127.0.0.1 that verifies the HMAC signature and answers
JSON; ``kit.request`` returns its parsed answer at once (nothing is queued or retried).
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from webhookkit import HTTPTransport, SignatureError, WebhookKit, verify_hmac

SECRET = "tax-app-secret"


async def taxes(request: web.Request) -> web.Response:
    body = await request.read()
    try:
        verify_hmac(body, request.headers.get("Saleor-Signature", ""), SECRET)
    except SignatureError as exc:
        return web.Response(status=401, text=str(exc))
    checkout = json.loads(body)["checkout"]
    total = sum(float(line["price"]) for line in checkout["lines"])
    return web.json_response({"shipping_tax_rate": "0", "tax": f"{total * 0.23:.2f}"})


async def main() -> None:
    app = web.Application()
    app.router.add_post("/taxes", taxes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/taxes"
    try:
        async with WebhookKit(transports=[HTTPTransport(allow_addresses=["127.0.0.1/32"])]) as kit:
            tax_app = await kit.apps.create("Taxes", permissions=["HANDLE_TAXES"])
            await kit.webhooks.create(
                tax_app, target_url=url, events=["CHECKOUT_CALCULATE_TAXES"], secret_key=SECRET
            )
            checkout = {"checkout": {"lines": [{"price": "10.00"}, {"price": "32.00"}]}}
            [answer] = await kit.request("CHECKOUT_CALCULATE_TAXES", payload=checkout)
    finally:
        await runner.cleanup()
    assert answer.data == {"shipping_tax_rate": "0", "tax": "9.66"}, answer
    print(f"tax app answered {answer.status_code}: {answer.data}")


if __name__ == "__main__":
    asyncio.run(main())
