"""What each page does, over real HTTP: apps and tokens, webhook forms with write-only
fields, dry runs, the delivery log with filters and paging, resend and replay, health."""

from __future__ import annotations

import json
from datetime import timedelta

from aiohttp import web
from conftest import Received, Receiver

from webhookkit import Secret
from webhookkit.delivery.isolation import IsolationConfig
from webhookkit.delivery.records import DeliveryStatus

from .conftest import Browser, Host, make_kit, serve

QUERY = (
    "subscription {\n  event {\n    ... on OrderCreated {\n"
    "      order { id number email }\n    }\n  }\n}"
)


async def test_apps_full_access_deactivate_delete_and_tokens(aiohttp_host: Host) -> None:
    kit, ui = aiohttp_host.kit, Browser(aiohttp_host)
    await ui.get("/apps")
    response = await ui.post("/apps", {"name": "Everything", "full_access": "on"})
    app_id = response.headers["location"].rsplit("/", 1)[1]
    app = await kit.apps.get(app_id)
    assert app.permissions == kit.registry.permissions and not app.is_active
    page = await ui.get(f"/apps/{app_id}")
    assert "full access" in page and "Activate the app to create webhooks" in page
    await ui.post(f"/apps/{app_id}/active", {"is_active": "1", "next": "/apps"})
    assert (await kit.apps.get(app_id)).is_active
    # Renamed, with fewer permissions; an unknown permission is refused by name.
    await ui.post(f"/apps/{app_id}", {"name": "Orders only", "permissions": "MANAGE_ORDERS"})
    app = await kit.apps.get(app_id)
    assert app.name == "Orders only" and app.permissions == {"MANAGE_ORDERS"}
    await ui.post(f"/apps/{app_id}", {"name": "Orders only", "permissions": "MANAGE_ORDER"})
    assert "did you mean &#39;MANAGE_ORDERS&#39;?" in await ui.get(f"/apps/{app_id}")
    await ui.post(f"/apps/{app_id}", {"name": "Everything", "full_access": "on"})
    assert (await kit.apps.get(app_id)).permissions == kit.registry.permissions
    # Tokens: listed by name and last four characters; deleted from the list.
    await ui.post(f"/apps/{app_id}/tokens", {"name": "deploy"})
    [token] = await kit.apps.list_tokens(app_id)
    page = await ui.get(f"/apps/{app_id}")
    assert "deploy" in page and f"••••{token.last_4}" in page
    await ui.post(f"/apps/{app_id}/tokens/{token.id}/delete", {})
    assert await kit.apps.list_tokens(app_id) == []
    assert "ending in " + token.last_4 + " deleted" in await ui.get(f"/apps/{app_id}")
    # Bad input is shown on the form, with what was typed kept.
    page = (await ui.post("/apps", {"name": " ", "permissions": "MANAGE_ORDERS"}, 400)).text
    assert "name: an app needs a non-empty name" in page
    assert 'value="MANAGE_ORDERS" checked' in page
    # Delete goes through a confirmation page.
    confirm = await ui.get(f"/apps/{app_id}/delete")
    assert "Delete app &#39;Everything&#39;?" in confirm
    await ui.post(f"/apps/{app_id}/delete", {})
    assert await kit.apps.list() == []
    assert (await ui.get(f"/apps/{app_id}", 404)).count("no app with id") == 1


async def test_webhook_form_keeps_write_only_fields_unless_replaced(
    aiohttp_host: Host, receiver: Receiver
) -> None:
    kit, ui = aiohttp_host.kit, Browser(aiohttp_host)
    app = await kit.apps.create("ERP", permissions=["MANAGE_ORDERS"])
    hook = await kit.webhooks.create(
        app,
        target_url=receiver.url + "/a",
        events=["ORDER_CREATED"],
        secret_key="first-secret",
        custom_headers={"Authorization": "Bearer one", "X-Tenant": "t1"},
    )
    form = await ui.get(f"/webhooks/{hook.id}")
    assert "first-secret" not in form and "Bearer one" not in form
    fields = {
        "name": "renamed",
        "target_url": receiver.url + "/a",
        "header_key_0": "authorization",
        "header_value_0": "",
        "header_key_1": "x-tenant",
        "header_value_1": "t2",
        "events": "order_created",
        "is_active": "on",
    }
    await ui.post(f"/webhooks/{hook.id}", fields)
    saved = await kit.webhooks.get(hook.id)
    assert saved.name == "renamed"
    assert saved.secret_key == Secret("first-secret")
    assert saved.headers == {"authorization": "Bearer one", "x-tenant": "t2"}
    await ui.post(f"/webhooks/{hook.id}", {**fields, "secret_key": "second", "header_key_0": ""})
    saved = await kit.webhooks.get(hook.id)
    assert saved.secret_key == Secret("second") and saved.headers == {"x-tenant": "t2"}
    await ui.post(f"/webhooks/{hook.id}", {**fields, "clear_secret": "on"})
    assert (await kit.webhooks.get(hook.id)).secret_key is None
    # "Register all events" wins over single events; deactivating from the list.
    await ui.post(f"/webhooks/{hook.id}", {**fields, "events": ["order_created", "any_events"]})
    assert (await kit.webhooks.get(hook.id)).events == {"any_events"}
    await ui.post(f"/webhooks/{hook.id}/active", {"is_active": "0"})
    assert not (await kit.webhooks.get(hook.id)).is_active
    # A bad header is refused with Saleor's rule and nothing changes.
    page = (await ui.post(f"/webhooks/{hook.id}", {**fields, "header_key_0": "Cookie"}, 400)).text
    assert "custom_headers" in page
    assert (await kit.webhooks.get(hook.id)).name == "renamed"
    assert "Delete webhook &#39;renamed&#39;?" in await ui.get(f"/webhooks/{hook.id}/delete")
    await ui.post(f"/webhooks/{hook.id}/delete", {})
    assert await kit.webhooks.list() == []


async def test_query_errors_point_at_their_line_and_dry_run_renders(
    aiohttp_host: Host, receiver: Receiver
) -> None:
    kit, ui = aiohttp_host.kit, Browser(aiohttp_host)
    app = await kit.apps.create("ERP", permissions=["MANAGE_ORDERS"])
    await ui.get(f"/webhooks/new?app={app.id}")
    broken = QUERY.replace("order { id number email }", "order { id numbr }")
    base = {"app_id": app.id, "target_url": receiver.url, "is_active": "on"}
    page = (await ui.post("/webhooks/new", {**base, "subscription_query": broken}, 400)).text
    assert "Line 4, column 18" in page and "numbr" in page and "[GRAPHQL_ERROR]" in page
    assert '<span class="err">4</span>' in page and 'data-error-line="4"' in page
    assert await kit.webhooks.list() == []
    page = (
        await ui.post(
            "/webhooks/dry-run", {**base, "subscription_query": QUERY, "object_id": "42"}, 200
        )
    ).text
    shown = page.split('id="dry-run-result">', 1)[1].split("</pre>", 1)[0]
    assert "&lt;b&gt;buyer&lt;/b&gt;@example.com" in shown  # escaped, pretty JSON
    body = json.loads(shown.replace("&lt;", "<").replace("&gt;", ">").replace("&#34;", '"'))
    assert body["order"] == {"id": "42", "number": 1042, "email": "<b>buyer</b>@example.com"}
    page = (
        await ui.post(
            "/webhooks/dry-run", {**base, "subscription_query": QUERY, "object_id": "404"}, 400
        )
    ).text
    assert "object_id: no object &#39;404&#39;" in page
    assert receiver.received == [] and await kit.list_deliveries() == []
    response = await ui.post("/webhooks/new", {**base, "subscription_query": QUERY})
    [hook] = await kit.webhooks.list()
    assert hook.subscription_query == QUERY and hook.query_events == {"order_created"}
    assert response.headers["location"].endswith(hook.id)


async def test_delivery_log_filters_pages_resends_and_replays(receiver: Receiver) -> None:
    async with make_kit() as kit, serve("aiohttp", kit, page_size=2) as host:
        ui = Browser(host)
        erp = await kit.apps.create("ERP", permissions=["MANAGE_ORDERS"])
        crm = await kit.apps.create("CRM", permissions=["MANAGE_ORDERS"])
        a = await kit.webhooks.create(erp, target_url=receiver.url + "/a", events=["ORDER_CREATED"])
        b = await kit.webhooks.create(crm, target_url=receiver.url + "/b", events=["ORDER_CREATED"])
        receiver.statuses = [200, 200, 500, 500, 200, 200]
        ids = []
        for n in range(3):
            ids += await kit.trigger("ORDER_CREATED", payload={"n": n, "html": "<i>x</i>"})
            await kit.wait_for(ids, timeout=30)
        assert len(ids) == 6
        page1 = await ui.get("/deliveries")
        assert page1.count('class="delivery ') == 2 and "older →" in page1
        page3 = await ui.get("/deliveries?page=3")
        assert page3.count('class="delivery ') == 2 and "older →" not in page3
        only_crm = await ui.get(f"/deliveries?app={crm.id}&page=1")
        only_b = await ui.get(f"/deliveries?webhook={b.id}")
        assert only_crm.count('class="delivery ') == only_b.count('class="delivery ') == 2
        failed = [d for d in await kit.list_deliveries() if d.status is DeliveryStatus.FAILED]
        assert len(failed) == 2
        listed = await ui.get("/deliveries?status=failed&event=order_created")
        assert listed.count('class="delivery failed"') == 2
        future = (kit.clock.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        assert "No deliveries match." in await ui.get(f"/deliveries?since={future}")
        assert "since: &#39;yesterday&#39; is not a time" in await ui.get(
            "/deliveries?since=yesterday", 400
        )
        # One delivery: payload pretty and escaped, its attempt with status and excerpt.
        page = await ui.get(f"/deliveries/{failed[0].id}")
        assert "&lt;i&gt;x&lt;/i&gt;" in page and "&#34;n&#34;: 1,\n" in page
        assert page.count('class="attempt failed"') == 1 and "<td>500</td>" in page
        await ui.post(f"/deliveries/{failed[0].id}/resend", {})
        [again] = await kit.wait_for([failed[0].id], timeout=30)
        assert again.status is DeliveryStatus.SUCCESS and again.attempts == 2
        page = await ui.get(f"/deliveries/{failed[0].id}")
        assert 'class="attempt failed"' in page and 'class="attempt success"' in page
        # Replay: every failure since a time goes out again.
        since = (kit.clock.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        await ui.post("/deliveries/replay", {"since": since})
        assert "1 failed deliveries queued again." in await ui.get("/deliveries")
        [replayed] = await kit.wait_for([failed[1].id], timeout=30)
        assert replayed.status is DeliveryStatus.SUCCESS
        assert {a.id, b.id} == {d.webhook_id for d in await kit.list_deliveries()}


def fail_bad_path(request: web.Request, record: Received) -> web.Response:
    return web.Response(status=500 if request.path == "/bad" else 200)


async def test_health_shows_rates_latency_and_an_open_breaker(receiver: Receiver) -> None:
    isolation = IsolationConfig(failure_threshold=1, cooldown=timedelta(hours=1))
    async with make_kit(isolation=isolation) as kit, serve("asgi", kit) as host:
        ui = Browser(host)
        app = await kit.apps.create("ERP", permissions=["MANAGE_ORDERS"])
        ok = await kit.webhooks.create(
            app, name="good", target_url=receiver.url + "/ok", events=["ORDER_CREATED"]
        )
        bad = await kit.webhooks.create(
            app, name="bad", target_url=receiver.url + "/bad", events=["ORDER_CREATED"]
        )
        receiver.handler = fail_bad_path
        await kit.wait_for(await kit.trigger("ORDER_CREATED", payload={}), timeout=30)
        assert kit.scheduler.gate.state(bad.id, kit.clock.now()) == "open"
        page = await ui.get("/health")
        rows = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("<tr>")[1:]
        by_name = {(">good<" in r and "good") or "bad": r for r in rows}
        assert "breaker-open" in by_name["bad"] and "0%" in by_name["bad"]
        assert "breaker-closed" in by_name["good"] and "100%" in by_name["good"]
        assert " ms</td>" in by_name["good"]
        assert ok.id in by_name["good"]
