"""The dashboard in a real headless browser: Debian's chromium driven by Playwright.

One staff member's session from app to resend, with the JavaScript on (event search, line
numbers, live refresh, copy button). Screenshots of the main pages go to docs/images/.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from conftest import Received, Receiver
from playwright.async_api import Browser, Page, async_playwright, expect

from webhookkit import WebhookKit

from .conftest import PERMISSIONS_HEADER, make_dashboard, make_kit, start_aiohttp_host

# Waits for the live refresh and real deliveries: generous, since CI shares two cores.
expect.set_options(timeout=30_000)
CHROMIUM = "/usr/bin/chromium"
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BROKEN = """subscription {
  event {
    ... on OrderCreated {
      order { id number
    }
  }
}"""
FIXED = """subscription {
  event {
    ... on OrderCreated {
      order { id number total }
    }
  }
}"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/test.sh or apt-get install chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        await browser.close()


async def shop(request: web.Request) -> web.Response:
    """The host's own page: a button that places an order (and so triggers the event)."""
    return web.Response(
        content_type="text/html",
        text='<form method="post" action="/shop/orders"><button id="place-order">Order</button>'
        "</form>",
    )


def host_app(kit: WebhookKit) -> web.Application:
    orders: list[str] = []

    async def place_order(request: web.Request) -> web.Response:
        orders.append(str(41 + len(orders) + 1))
        await kit.trigger("ORDER_CREATED", subject={"id": orders[-1], "number": len(orders)})
        raise web.HTTPSeeOther("/shop")

    app = web.Application()
    app.router.add_get("/shop", shop)
    app.router.add_post("/shop/orders", place_order)
    app.add_subapp("/webhooks/", make_dashboard(kit).aiohttp_app())
    return app


async def snap(page: Page, name: str, *, full_page: bool = True, part: str = "") -> None:
    """Save a screenshot for docs/dashboard.md: the page, or only the element ``part``."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    path = str(IMAGES / f"dashboard-{name}.png")
    if part:
        await page.locator(part).screenshot(path=path)
    else:
        await page.screenshot(path=path, full_page=full_page)


async def test_a_staff_session_from_app_to_resend(browser: Browser, receiver: Receiver) -> None:
    answer = {"status": 200}

    def respond(request: web.Request, record: Received) -> web.Response:
        return web.Response(status=answer["status"], text=f"answered {answer['status']}")

    receiver.handler = respond
    async with make_kit() as kit:
        runner, url = await start_aiohttp_host(host_app(kit))
        context = await browser.new_context(
            viewport={"width": 1280, "height": 860},
            extra_http_headers={PERMISSIONS_HEADER: "MANAGE_APPS"},
        )
        try:
            page = await context.new_page()
            page.set_default_timeout(30_000)
            await session(page, url, kit, receiver, answer)
        finally:
            await context.close()
            await runner.cleanup()


async def session(
    page: Page, url: str, kit: WebhookKit, receiver: Receiver, answer: dict[str, int]
) -> None:
    dash = url + "/webhooks"
    # An app with full access.
    await page.goto(dash + "/")
    await expect(page).to_have_url(dash + "/apps")
    await page.fill("input[name=name]", "ERP")
    await page.check("input[name=full_access]")
    await page.click("#create-app")
    await expect(page.locator("h1")).to_contain_text("ERP")
    [app] = await kit.apps.list()
    assert app.is_active and app.permissions == kit.registry.permissions

    # A token, shown once with a copy button; after a reload only its last four remain.
    await page.fill("form:has(#create-token) input[name=name]", "deploy")
    await page.click("#create-token")
    raw = await page.input_value("#new-token")
    [token] = await kit.apps.list_tokens(app.id)
    assert len(raw) >= 32 and raw.endswith(token.last_4)
    assert await kit.apps.authenticate(raw) == app
    await page.click("[data-copy='#new-token']")
    await expect(page.locator("[data-copy='#new-token']")).to_have_text("Copied")
    await snap(page, "token")
    await page.reload()
    await expect(page.locator("#new-token")).to_have_count(0)
    assert raw not in await page.content()
    await expect(page.locator("#tokens")).to_contain_text("••••" + token.last_4)

    # A webhook: the event search filters (JS), the query has a syntax error at line 5.
    await page.click("#create-webhook")
    await page.fill("input[name=name]", "orders to ERP")
    await page.fill("input[name=target_url]", receiver.url + "/hook")
    await page.fill("input[name=secret_key]", "erp-shared-secret")
    await page.fill("#event-search", "order crea")
    await expect(page.locator("label.event[data-name=order_created]")).to_be_visible()
    await expect(page.locator("label.event[data-name=order_updated]")).to_be_hidden()
    await page.fill("#event-search", "")
    await page.fill("#query", BROKEN)
    await expect(page.locator("#gutter span")).to_have_count(7)  # line numbers follow typing
    await page.check("input[name=is_active]")
    await page.click("#save-webhook")
    await expect(page.locator("#query-error")).to_contain_text("Line 7")
    await expect(page.locator("#query-error")).to_contain_text("[SYNTAX]")
    await expect(page.locator("#gutter span.err")).to_have_text("7")
    # The secret key typed is not sent back: the form says to type it again.
    await expect(page.locator("#retype")).to_contain_text("secret key")
    assert await page.input_value("input[name=secret_key]") == ""
    await snap(page, "webhook-form", full_page=False)
    await snap(page, "webhook-error", part="section:has(#query)")
    assert await kit.webhooks.list() == []
    # Fixed, dry-run for order 42 (the host's loader), then saved.
    await page.fill("#query", FIXED)
    await page.fill("input[name=object_id]", "42")
    await page.click("#dry-run")
    await expect(page.locator("#dry-run-result")).to_contain_text('"number": 1042')
    assert receiver.received == []
    await page.fill("input[name=secret_key]", "erp-shared-secret")
    await page.click("#save-webhook")
    await expect(page.locator(".flash")).to_contain_text("created")
    [hook] = await kit.webhooks.list()
    assert hook.query_events == {"order_created"} and hook.secret_key is not None
    await page.goto(dash + "/webhooks")
    await snap(page, "webhooks")

    # The host triggers an event; the log shows it arrive (live refresh, no reload).
    await page.goto(dash + "/deliveries")
    shop = await page.context.new_page()
    await shop.goto(url + "/shop")
    await shop.click("#place-order")
    await expect(page.locator("tr.delivery.success")).to_have_count(1)
    await snap(page, "deliveries")
    await page.click("tr.delivery.success a")
    await expect(page.locator("tr.attempt.success")).to_have_count(1)
    await expect(page.locator("#payload")).to_contain_text('"id": "42"')

    # The receiver fails: the next delivery fails; it recovers; a resend succeeds.
    answer["status"] = 500
    await page.goto(dash + "/deliveries")
    await shop.click("#place-order")
    await expect(page.locator("tr.delivery.failed")).to_have_count(1)
    await page.click("tr.delivery.failed a")
    await expect(page.locator("tr.attempt.failed")).to_contain_text("500")
    answer["status"] = 200
    await page.click("#resend")
    await expect(page.locator("#delivery-status")).to_have_text("success")
    await expect(page.locator("tr.attempt.failed")).to_have_count(1)
    await expect(page.locator("tr.attempt.success")).to_have_count(1)
    await page.locator("tr.attempt-details summary").last.click()
    await expect(page.locator("table.headers").last).to_contain_text("[secret]")
    await snap(page, "delivery")
    assert [r.path for r in receiver.received] == ["/hook"] * 3

    await page.goto(dash + "/health")
    await expect(page.locator("#health")).to_contain_text("closed")
    await expect(page.locator("#health")).to_contain_text("67%")
    await snap(page, "health")
    await page.goto(dash + "/apps")
    await snap(page, "apps")
    await shop.close()


async def test_the_forms_work_without_javascript(browser: Browser, receiver: Receiver) -> None:
    async with make_kit() as kit:
        runner, url = await start_aiohttp_host(host_app(kit))
        context = await browser.new_context(
            java_script_enabled=False, extra_http_headers={PERMISSIONS_HEADER: "MANAGE_APPS"}
        )
        try:
            page = await context.new_page()
            page.set_default_timeout(30_000)
            await page.goto(url + "/webhooks/apps")
            await page.fill("input[name=name]", "No JS")
            await page.check("input[name=permissions][value=MANAGE_ORDERS]")
            await page.click("#create-app")
            await page.click("#create-token")
            assert len(await page.input_value("#new-token")) >= 32
            await page.click("#create-webhook")
            # Without JavaScript the search box stays hidden; the checkboxes still work.
            await expect(page.locator("#event-search")).to_be_hidden()
            await page.fill("input[name=target_url]", receiver.url + "/plain")
            await page.check("label.event[data-name=order_created] input")
            await page.fill("#query", FIXED)
            await page.check("input[name=is_active]")
            await page.click("#save-webhook")
            await expect(page.locator(".flash")).to_contain_text("created")
            [hook] = await kit.webhooks.list()
            assert hook.events == {"order_created"} and hook.is_active
            shop = await context.new_page()
            await shop.goto(url + "/shop")
            async with shop.expect_navigation():
                await shop.click("#place-order")
            [delivery] = await kit.wait_for([d.id for d in await kit.list_deliveries()], timeout=30)
            await page.goto(url + f"/webhooks/deliveries/{delivery.id}")
            await expect(page.locator("#delivery-status")).to_have_text("success")
            # The form's POST and its redirect finish before the page is reloaded (a reload
            # during that navigation fails: "Not attached to an active page").
            async with page.expect_navigation():
                await page.click("#resend")
            await kit.wait_for([delivery.id], timeout=30)
            await page.reload()
            await expect(page.locator("tr.attempt.success")).to_have_count(2)
            # Deleting goes through the confirmation page.
            await page.goto(url + f"/webhooks/webhooks/{hook.id}/delete")
            await page.click("#confirm-delete")
            assert await kit.webhooks.list() == []
        finally:
            await context.close()
            await runner.cleanup()
