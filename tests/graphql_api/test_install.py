"""App installation from a manifest served on loopback: the token handed over with Saleor's
headers, the state recorded, failures leaving no half-made app, APP_INSTALLED fired, and the
SSRF guard applied to the manifest fetch."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from webhookkit.graphql import Installer, from_global_id
from webhookkit.installations import InstallationStatus

from .conftest import Host, load_example

ORDER_QUERY = "subscription { event { ... on OrderCreated { order { id number } } } }"
INSTALLED_QUERY = "subscription { event { ... on AppInstalled { app { id name } } } }"

INSTALL = """
mutation ($url: String!, $perms: [PermissionEnum!]) {
  appInstall(input: {appName: "ERP", manifestUrl: $url, permissions: $perms}) {
    appInstallation { id status message appName }
    errors { field code message permissions }
  }
}
"""


@dataclass
class AppServer:
    """A stand-in for an app: serves a manifest, takes the token, asks the host who it is."""

    url: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)
    register_status: int = 200
    registrations: list[dict[str, Any]] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)

    def base_manifest(self) -> dict[str, Any]:
        return {
            "id": "erp.example",
            "version": "2.1.0",
            "name": "ERP",
            "about": "Keeps the books.",
            "permissions": ["MANAGE_ORDERS"],
            "appUrl": self.url,
            "tokenTargetUrl": f"{self.url}/api/register",
            "requiredSaleorVersion": ">=3.20 <4",
            "webhooks": [
                {
                    "name": "orders",
                    "asyncEvents": ["ORDER_CREATED"],
                    "query": ORDER_QUERY,
                    "targetUrl": f"{self.url}/api/webhooks/orders",
                }
            ],
        }


@pytest.fixture
async def app_server() -> AsyncIterator[AppServer]:
    server = AppServer()

    async def manifest(request: web.Request) -> web.Response:
        return web.json_response(server.manifest)

    async def register(request: web.Request) -> web.Response:
        body = await request.json()
        token = body["auth_token"]
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                request.headers["Saleor-Api-Url"],
                json={"query": "{ app { id } }"},
                headers={"Authorization": f"Bearer {token}"},
            ) as answer,
        ):
            me = await answer.json()
        server.registrations.append(
            {"body": body, "headers": dict(request.headers), "me": me, "token": token}
        )
        return web.Response(status=server.register_status, text="registered")

    async def hook(request: web.Request) -> web.Response:
        server.webhooks.append({"event": request.headers["Saleor-Event"], **await request.json()})
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/api/manifest", manifest)
    app.router.add_post("/api/register", register)
    app.router.add_post("/api/webhooks/{name}", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    server.manifest = server.base_manifest()
    yield server
    await runner.cleanup()


async def test_install_creates_the_app_hands_over_the_token_and_records_it(
    host: Host, app_server: AppServer
) -> None:
    answer = await host.admin(INSTALL, url=f"{app_server.url}/api/manifest", perms=None)
    payload = answer["data"]["appInstall"]
    assert payload["errors"] == []
    assert payload["appInstallation"]["status"] == "SUCCESS"
    assert payload["appInstallation"]["message"] is None

    [registration] = app_server.registrations
    assert set(registration["body"]) == {"auth_token"}
    headers = registration["headers"]
    assert headers["Saleor-Domain"] == host.kit.domain
    assert headers["Saleor-Api-Url"] == host.api_url
    assert headers["Saleor-Schema-Version"] == "3.24"
    assert headers["Content-Type"] == "application/json"
    app_id = registration["me"]["data"]["app"]["id"]
    app = await host.kit.apps.get(from_global_id(app_id)[1])
    assert (app.name, app.identifier, app.is_active) == ("ERP", "erp.example", True)
    assert app.permissions == frozenset({"MANAGE_ORDERS"})  # the manifest's, none given
    assert await host.kit.apps.authenticate(registration["token"]) == app
    [webhook] = await host.kit.webhooks.list(app)
    assert webhook.name == "orders" and webhook.subscription_query == ORDER_QUERY
    assert webhook.events == frozenset({"order_created"})

    listed = await host.admin("{ appsInstallations { status appName manifestUrl } }")
    assert listed["data"]["appsInstallations"] == [
        {"status": "SUCCESS", "appName": "ERP", "manifestUrl": f"{app_server.url}/api/manifest"}
    ]
    [record] = await host.kit.store.list_installations()
    assert record.status is InstallationStatus.INSTALLED and record.app_id == app.id

    await host.admin(
        'mutation { orderCreate(input: {email: "a@example.com", lines: []}) { order { id } } }'
    )
    [delivery] = await host.kit.list_deliveries()
    await host.kit.wait_for([delivery.id], timeout=60)
    assert app_server.webhooks == [
        {"event": "order_created", "order": {"id": "T3JkZXI6MQ==", "number": 1}}
    ]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"register_status": 500}, "tokenTargetUrl answered HTTP 500"),
        ({"webhooks": [{"name": "x", "query": "subscription {", "targetUrl": "http://a/"}]}, ""),
        (
            {
                "webhooks": [
                    {
                        "name": "x",
                        "asyncEvents": ["NOPE"],
                        "query": ORDER_QUERY,
                        "targetUrl": "http://a/",
                    }
                ]
            },
            "Invalid event: NOPE",
        ),
        ({"tokenTargetUrl": None}, "Field required: tokenTargetUrl"),
        ({"requiredSaleorVersion": "^4.0"}, "does not satisfy ^4.0"),
    ],
)
async def test_failed_installation_leaves_no_app(
    host: Host, app_server: AppServer, change: dict[str, Any], reason: str
) -> None:
    if "register_status" in change:
        app_server.register_status = change["register_status"]
    else:
        app_server.manifest.update(change)
    answer = await host.admin(INSTALL, url=f"{app_server.url}/api/manifest", perms=None)
    installation = answer["data"]["appInstall"]["appInstallation"]
    assert installation["status"] == "FAILED"
    assert reason in installation["message"]
    assert await host.kit.apps.list() == []
    assert await host.kit.webhooks.list() == []
    [record] = await host.kit.store.list_installations()
    assert record.status is InstallationStatus.FAILED and record.app_id is None
    assert record.message == installation["message"]


async def test_fetch_manifest_shape_and_errors(host: Host, app_server: AppServer) -> None:
    fetch = """mutation ($url: String!) { appFetchManifest(manifestUrl: $url) {
      manifest { identifier version name about permissions { code name } tokenTargetUrl
        webhooks { name asyncEvents syncEvents query targetUrl }
        requiredSaleorVersion { constraint satisfied } }
      errors { field code message permissions } } }"""
    url = f"{app_server.url}/api/manifest"
    manifest = (await host.admin(fetch, url=url))["data"]["appFetchManifest"]
    assert manifest["errors"] == []
    assert manifest["manifest"] == {
        "identifier": "erp.example",
        "version": "2.1.0",
        "name": "ERP",
        "about": "Keeps the books.",
        "permissions": [{"code": "MANAGE_ORDERS", "name": "Manage orders."}],
        "tokenTargetUrl": f"{app_server.url}/api/register",
        "webhooks": [
            {
                "name": "orders",
                "asyncEvents": ["ORDER_CREATED"],
                "syncEvents": [],
                "query": ORDER_QUERY,
                "targetUrl": f"{app_server.url}/api/webhooks/orders",
            }
        ],
        "requiredSaleorVersion": {"constraint": ">=3.20 <4", "satisfied": True},
    }
    app_server.manifest["permissions"] = ["MANAGE_ORDERS", "MANAGE_EVERYTHING"]
    answer = await host.admin(fetch, url=url)
    assert "errors" not in answer, answer
    errors = answer["data"]["appFetchManifest"]["errors"]
    assert [(e["field"], e["code"], e["permissions"]) for e in errors] == [
        ("permissions", "INVALID_PERMISSION", None)
    ]
    assert "MANAGE_EVERYTHING" in errors[0]["message"]
    bad = (await host.admin(fetch, url="not a url"))["data"]["appFetchManifest"]["errors"]
    assert [(e["field"], e["code"]) for e in bad] == [("manifestUrl", "INVALID_URL_FORMAT")]
    assert app_server.registrations == []  # fetching never installs


async def test_install_checks_the_granted_permissions(host: Host, app_server: AppServer) -> None:
    answer = await host.admin(INSTALL, url=f"{app_server.url}/api/manifest", perms=["MANAGE_USERS"])
    assert answer["data"]["appInstall"]["errors"] == [
        {
            "field": "permissions",
            "code": "OUT_OF_SCOPE_PERMISSION",
            "message": "You can't add permission that you don't have.",
            "permissions": ["MANAGE_USERS"],
        }
    ]
    assert await host.kit.store.list_installations() == []


async def test_app_installed_fires_for_the_new_app(host: Host, app_server: AppServer) -> None:
    # APP_INSTALLED needs MANAGE_APPS, which only the Python API may still grant an app.
    app_server.manifest["webhooks"].append(
        {
            "name": "installed",
            "asyncEvents": ["APP_INSTALLED"],
            "query": INSTALLED_QUERY,
            "targetUrl": f"{app_server.url}/api/webhooks/installed",
        }
    )
    installer = Installer(host.kit)
    record = await installer.install(
        f"{app_server.url}/api/manifest",
        app_name="ERP",
        permissions=frozenset({"MANAGE_ORDERS", "MANAGE_APPS"}),
    )
    assert record.status is InstallationStatus.INSTALLED
    [delivery] = await host.kit.list_deliveries()
    assert delivery.event == "app_installed"
    await host.kit.wait_for([delivery.id], timeout=60)
    assert app_server.webhooks == [
        {"event": "app_installed", "app": {"id": record.app_id, "name": "ERP"}}
    ]


async def test_manifest_fetch_goes_through_the_ssrf_guard(app_server: AppServer) -> None:
    example = load_example()
    kit = example.build_kit(domain="shop.example.com", api_url="https://shop.example.com/graphql/")
    async with kit:
        record = await Installer(kit).install(f"{app_server.url}/api/manifest", app_name="ERP")
    assert record.status is InstallationStatus.FAILED
    assert "127.0.0.1" in (record.message or "") or "refused" in (record.message or "")
    assert app_server.registrations == []
    assert json.dumps(app_server.manifest)  # the server was never asked
