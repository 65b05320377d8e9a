"""Security of the dashboard over real HTTP, on both adapters: permissions on every route,
CSRF on every form, and no secret value in any page."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from conftest import Receiver

from webhookkit.dashboard import MANAGE, OBSERVE, Route

from .conftest import ADMIN, PERMISSIONS_HEADER, Host, csrf_of

SECRET_KEY = "hmac-secret-key-9f3b27"
AUTH_VALUE = "Bearer auth-header-value-51c0e8"
URL_PASSWORD = "url-password-7d2a41"
OBSERVER = {PERMISSIONS_HEADER: "MANAGE_OBSERVABILITY"}
QUERY = "subscription { event { ... on OrderCreated { order { id number } } } }"


@dataclass
class World:
    """Real objects for every route parameter, created through the kit."""

    app_id: str
    token_id: str
    raw_token: str
    webhook_id: str
    delivery_id: str

    def path(self, route: Route) -> str:
        if route.pattern == "/webhooks/new":
            return f"/webhooks/new?app={self.app_id}"
        return (
            route.pattern.replace("{app_id}", self.app_id)
            .replace("{token_id}", self.token_id)
            .replace("{webhook_id}", self.webhook_id)
            .replace("{delivery_id}", self.delivery_id)
            .replace("{name}", "dashboard.css")
        )


async def make_world(host: Host, receiver: Receiver) -> World:
    kit = host.kit
    app = await kit.apps.create("ERP", permissions=["MANAGE_ORDERS"])
    token = await kit.apps.create_token(app.id, name="ci")
    await kit.webhooks.create(
        app,
        name="with a password in its URL",
        target_url=receiver.url.replace("http://", f"http://user:{URL_PASSWORD}@") + "/pw",
        events=["ORDER_UPDATED"],
    )
    webhook = await kit.webhooks.create(
        app,
        name="orders",
        target_url=receiver.url + "/hook",
        subscription_query=QUERY,
        secret_key=SECRET_KEY,
        custom_headers={"Authorization": AUTH_VALUE, "X-Plain": "visible"},
    )
    [delivery] = await kit.wait_for(
        await kit.trigger("ORDER_CREATED", subject={"id": "42", "number": 1042}), timeout=30
    )
    return World(app.id, token.token.id, token.raw.reveal(), webhook.id, delivery.id)


def test_the_route_table_covers_every_page(host: Host) -> None:
    patterns = {(r.method, r.pattern) for r in host.dashboard.routes}
    assert len(patterns) == len(host.dashboard.routes) == 25
    assert {r.level for r in host.dashboard.routes} == {MANAGE, OBSERVE}
    assert all(r.method in {"GET", "POST"} for r in host.dashboard.routes)


async def test_without_the_permission_every_route_is_403(host: Host, receiver: Receiver) -> None:
    world = await make_world(host, receiver)
    token = csrf_of((await host.client.get(host.base + "/apps", headers=ADMIN)).text)
    for headers in ({}, {PERMISSIONS_HEADER: "MANAGE_ORDERS,HANDLE_TAXES"}):
        for route in host.dashboard.routes:
            url = host.base + world.path(route)
            # A valid CSRF token too: the permission alone must refuse the request.
            data = {"csrf_token": token} if route.method == "POST" else None
            response = await host.client.request(route.method, url, headers=headers, data=data)
            assert response.status_code == 403, (route.method, route.pattern, headers)
            assert "MANAGE_APPS" in response.text
        assert (
            await host.client.get(host.base + "/no/such/page", headers=headers)
        ).status_code == 403
    assert len(await host.kit.apps.list()) == 1
    assert len(await host.kit.apps.list_tokens(world.app_id)) == 1


async def test_observers_read_the_log_and_health_but_change_nothing(
    host: Host, receiver: Receiver
) -> None:
    world = await make_world(host, receiver)
    await host.client.get(host.base + "/deliveries", headers=OBSERVER)
    token = host.dashboard.csrf_token(host.client.cookies["webhookkit_dashboard"])
    for route in host.dashboard.routes:
        url = host.base + world.path(route)
        data = {"csrf_token": token} if route.method == "POST" else None
        response = await host.client.request(route.method, url, headers=OBSERVER, data=data)
        if route.level == OBSERVE:
            assert response.status_code in {200, 303}, (route.pattern, response.text)
        else:
            assert response.status_code == 403, (route.method, route.pattern)
    page = await host.client.get(host.base + f"/deliveries/{world.delivery_id}", headers=OBSERVER)
    assert 'id="resend"' not in page.text  # no buttons for actions the viewer may not take
    assert len(await host.kit.list_attempts(world.delivery_id)) == 1


async def test_forged_posts_are_refused_on_every_form_route(host: Host, receiver: Receiver) -> None:
    world = await make_world(host, receiver)
    page = await host.client.get(host.base + "/apps", headers=ADMIN)
    good = csrf_of(page.text)
    posts = [r for r in host.dashboard.routes if r.method == "POST"]
    assert len(posts) == 13
    # A token minted for another browser's session is as bad as none.
    async with type(host.client)(
        transport=host.client._transport, base_url=host.client.base_url
    ) as other:
        other_token = csrf_of((await other.get(host.base + "/apps", headers=ADMIN)).text)
    assert other_token != good
    forged: list[dict[str, str]] = [{}, {"csrf_token": ""}, {"csrf_token": "0" * 64}]
    forged.append({"csrf_token": other_token})
    forged.append({"csrf_token": good[:-1] + ("0" if good[-1] != "0" else "1")})
    for route in posts:
        for fields in forged:
            data = {
                **fields,
                "name": "forged",
                "is_active": "0",
                "since": "2000-01-01T00:00",
                "app_id": world.app_id,
                "target_url": receiver.url,
            }
            url = host.base + world.path(route)
            response = await host.client.post(url, headers=ADMIN, data=data)
            assert response.status_code == 403, (route.pattern, fields)
            assert "CSRF" in response.text
    # Without the browser's cookie a correct-looking token is refused too.
    async with type(host.client)(
        transport=host.client._transport, base_url=host.client.base_url
    ) as cookieless:
        response = await cookieless.post(
            host.base + "/apps", headers=ADMIN, data={"csrf_token": good, "name": "forged"}
        )
        assert response.status_code == 403
    # Nothing changed.
    [app] = await host.kit.apps.list()
    assert app.name == "ERP" and app.is_active
    assert len(await host.kit.apps.list_tokens(app.id)) == 1
    webhooks = await host.kit.webhooks.list()
    assert len(webhooks) == 2 and all(w.is_active for w in webhooks)
    assert len(await host.kit.list_attempts(world.delivery_id)) == 1
    # The genuine token works (the refusals above were the CSRF check, not something else).
    response = await host.client.post(
        host.base + "/apps", headers=ADMIN, data={"csrf_token": good, "name": "genuine"}
    )
    assert response.status_code == 303


async def test_the_session_cookie_is_strict_and_http_only(host: Host) -> None:
    response = await host.client.get(host.base + "/apps", headers=ADMIN)
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/webhooks" in cookie
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"


async def test_no_page_contains_a_secret(host: Host, receiver: Receiver) -> None:
    world = await make_world(host, receiver)
    client, base = host.client, host.base
    token = csrf_of((await client.get(base + "/apps", headers=ADMIN)).text)
    # A token created in the dashboard is on the next page once, then never again.
    response = await client.post(
        base + f"/apps/{world.app_id}/tokens", headers=ADMIN, data={"csrf_token": token}
    )
    assert response.status_code == 303
    [new_token] = [
        t for t in await host.kit.apps.list_tokens(world.app_id) if t.id != world.token_id
    ]
    first = await client.get(base + f"/apps/{world.app_id}", headers=ADMIN)
    assert 'id="new-token"' in first.text and new_token.last_4 in first.text
    raw_new = first.text.split('id="new-token" class="mono" readonly value="', 1)[1].split('"')[0]
    assert len(raw_new) >= 32 and raw_new.endswith(new_token.last_4)
    # A webhook form that fails validation must not echo the secrets typed into it.
    failed = await client.post(
        base + "/webhooks/new",
        headers=ADMIN,
        data={
            "csrf_token": token,
            "app_id": world.app_id,
            "target_url": receiver.url,
            "secret_key": SECRET_KEY,
            "header_key_0": "Authorization",
            "header_value_0": AUTH_VALUE,
            "subscription_query": "subscription { event {",
        },
    )
    assert failed.status_code == 400 and "SYNTAX" in failed.text
    secrets = [SECRET_KEY, AUTH_VALUE, URL_PASSWORD, world.raw_token, raw_new]
    secrets += [AUTH_VALUE.split()[1]]
    pem = host.kit.keys.active.private_pem().decode()
    secrets += [line for line in pem.splitlines() if line and "-----" not in line][:4]
    pages = [failed.text]
    for route in host.dashboard.routes:
        if route.method == "GET":
            response = await client.get(base + world.path(route), headers=ADMIN)
            assert response.status_code in {200, 303}, route.pattern
            pages.append(response.text)
    for query in ("?app=" + world.app_id, f"?webhook={world.webhook_id}&status=success"):
        pages.append((await client.get(base + "/webhooks/new" + query, headers=ADMIN)).text)
        pages.append((await client.get(base + "/deliveries" + query, headers=ADMIN)).text)
    edit = (await client.get(base + f"/webhooks/{world.webhook_id}", headers=ADMIN)).text
    assert "X-Plain".lower() in edit and "visible" in edit  # plain headers stay editable
    assert "leave blank to keep it" in edit
    for page in pages:
        for secret in secrets:
            assert secret not in page
    # The receiver did get them: they were real values, not absent ones.
    [request] = receiver.received
    assert request.header("Authorization") == AUTH_VALUE


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", '"><img src=x onerror=1>'])
async def test_output_is_escaped(host: Host, name: str) -> None:
    app = await host.kit.apps.create(name)
    for path in ("/apps", f"/apps/{app.id}"):
        page = (await host.client.get(host.base + path, headers=ADMIN)).text
        assert name not in page
        assert "&lt;" in page and ("&#34;" in page or "&lt;script&gt;" in page)
