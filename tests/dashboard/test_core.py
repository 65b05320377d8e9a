"""The framework-free core on its own: ``Dashboard.handle`` with hand-built requests."""

from __future__ import annotations

import pytest

from webhookkit import ConfigurationError, WebhookKit
from webhookkit.dashboard import Dashboard, DashboardRequest

from .conftest import make_dashboard


def request(method: str, path: str, **fields: object) -> DashboardRequest:
    return DashboardRequest(method=method, path=path, root="/hooks", **fields)  # type: ignore[arg-type]


async def test_an_async_authorize_is_awaited_and_sees_the_request(kit: WebhookKit) -> None:
    seen: list[DashboardRequest] = []

    async def authorize(req: DashboardRequest) -> frozenset[str]:
        seen.append(req)
        return frozenset({"MANAGE_APPS"}) if req.cookies.get("who") == "staff" else frozenset()

    dashboard = Dashboard(kit, authorize=authorize)
    staff = await dashboard.handle(request("GET", "/apps", cookies={"who": "staff"}))
    assert staff.status == 200 and b"Local apps" in staff.body
    assert (await dashboard.handle(request("GET", "/apps"))).status == 403
    assert [r.cookies.get("who") for r in seen] == ["staff", None]
    # Links and the session cookie are below the mount point the adapter reported.
    assert b'href="/hooks/webhooks"' in staff.body
    [cookie] = [v for k, v in staff.headers if k == "Set-Cookie"]
    assert "Path=/hooks;" in cookie and "Secure" not in cookie
    secure = await dashboard.handle(request("GET", "/apps", cookies={"who": "staff"}, secure=True))
    assert "; Secure" in dict(secure.headers)["Set-Cookie"]


async def test_methods_unknown_paths_and_static_files(kit: WebhookKit) -> None:
    dashboard = make_dashboard(kit)
    admin = {"x-test-permissions": "MANAGE_APPS"}
    head = await dashboard.handle(request("HEAD", "/apps", headers=admin))
    assert head.status == 200 and head.body == b""
    wrong = await dashboard.handle(request("PUT", "/apps", headers=admin))
    assert wrong.status == 405 and dict(wrong.headers)["Allow"] == "GET, POST"
    assert (await dashboard.handle(request("GET", "/nothing", headers=admin))).status == 404
    # Ids the kit refuses (empty, unknown) are a page saying so, never a server error.
    missing = await dashboard.handle(request("GET", "/webhooks/new", headers=admin))
    assert missing.status in {400, 404} and b"app: " in missing.body
    unknown = await dashboard.handle(request("GET", "/apps/nope", headers=admin))
    assert unknown.status == 404 and b"Not found" in unknown.body
    css = await dashboard.handle(request("GET", "/static/dashboard.css", headers=admin))
    assert css.status == 200 and dict(css.headers)["Content-Type"].startswith("text/css")
    for name in ("../_core.py", "dashboard.py", "..%2F_core.py"):
        found = await dashboard.handle(request("GET", f"/static/{name}", headers=admin))
        assert found.status == 404


async def test_next_never_leaves_the_site(kit: WebhookKit) -> None:
    dashboard = make_dashboard(kit)
    app = await kit.apps.create("ERP")
    admin = {"x-test-permissions": "MANAGE_APPS"}
    session = "a" * 64
    token = dashboard.csrf_token(session)
    for target, expected in [
        ("//evil.example/x", f"/hooks/apps/{app.id}"),
        ("https://evil.example/", f"/hooks/apps/{app.id}"),
        ("/apps", "/hooks/apps"),
    ]:
        form = (("csrf_token", token), ("is_active", "0"), ("next", target))
        response = await dashboard.handle(
            request(
                "POST",
                f"/apps/{app.id}/active",
                headers=admin,
                cookies={"webhookkit_dashboard": session},
                form=form,
            )
        )
        assert response.status == 303 and dict(response.headers)["Location"] == expected


async def test_bad_configuration_names_the_field(kit: WebhookKit) -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({"authorize": "MANAGE_APPS"}, "authorize"),
        ({"authorize": lambda r: set(), "page_size": 0}, "page_size"),
        ({"authorize": lambda r: set(), "secret": "short"}, "secret"),
    ]
    for options, field in cases:
        with pytest.raises(ConfigurationError) as caught:
            Dashboard(kit, **options)  # type: ignore[arg-type]
        assert caught.value.field == field and str(caught.value).startswith(field)
    dashboard = Dashboard(kit, authorize=lambda r: "MANAGE_APPS")
    with pytest.raises(ConfigurationError, match="authorize: must return a collection"):
        await dashboard.handle(request("GET", "/apps"))


async def test_background_refreshes_leave_the_one_time_token_for_the_page(kit: WebhookKit) -> None:
    dashboard = make_dashboard(kit)
    app = await kit.apps.create("ERP")
    session = "b" * 64
    seen = {"x-test-permissions": "MANAGE_APPS"}
    cookies = {"webhookkit_dashboard": session}
    form = (("csrf_token", dashboard.csrf_token(session)),)
    created = await dashboard.handle(
        request("POST", f"/apps/{app.id}/tokens", headers=seen, cookies=cookies, form=form)
    )
    assert created.status == 303
    refresh = {**seen, "x-requested-with": "fetch"}
    background = await dashboard.handle(
        request("GET", "/deliveries", headers=refresh, cookies=cookies)
    )
    assert b'id="new-token"' not in background.body
    page = await dashboard.handle(request("GET", f"/apps/{app.id}", headers=seen, cookies=cookies))
    assert b'id="new-token"' in page.body
    again = await dashboard.handle(request("GET", f"/apps/{app.id}", headers=seen, cookies=cookies))
    assert b'id="new-token"' not in again.body
