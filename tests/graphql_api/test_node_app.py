"""An unmodified Saleor app (tests/node/saleor_app.mjs, built only on @saleor/app-sdk 1.15.0)
installed from the example host through ``appInstall``, then fed an order.

The SDK's own register handler accepts the token (it asks the host ``{ app { id } }`` with it
and fetches the JWKS from the API URL's origin) and stores it in its file APL; the SDK's
``SaleorAsyncWebhook`` then verifies the ORDER_CREATED delivery's JWS against that JWKS and
hands the payload to the app's code, which prints it. The test reads what the app code got.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from webhookkit.graphql import from_global_id

from .conftest import Host

NODE_DIR = Path(__file__).resolve().parents[1] / "node"

INSTALL = """
mutation ($url: String!) {
  appInstall(input: {appName: "Orders", manifestUrl: $url, permissions: [MANAGE_ORDERS]}) {
    appInstallation { id status message appName manifestUrl }
    errors { field code message }
  }
}
"""


class NodeApp:
    """The Node process and the JSON lines its app code printed."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []

    async def next(self, kind: str, timeout: float = 60) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            assert self.process.stdout is not None
            while True:
                raw = await self.process.stdout.readline()
                if not raw:
                    raise AssertionError(f"the Node app exited before printing {kind!r}")
                line: dict[str, Any] = json.loads(raw)
                self.lines.append(line)
                if line["kind"] == kind:
                    return line

        return await asyncio.wait_for(read(), timeout)


@pytest.fixture
async def node_app(tmp_path: Path) -> AsyncIterator[NodeApp]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; this test needs Node 18+ and npm")
    if not (NODE_DIR / "node_modules" / "@saleor" / "app-sdk").is_dir():
        pytest.fail("tests/node/node_modules is missing: run `npm ci` in tests/node")
    process = await asyncio.create_subprocess_exec(
        node,
        str(NODE_DIR / "saleor_app.mjs"),
        str(tmp_path / "apl.json"),
        cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield NodeApp(process)
    finally:
        if process.returncode is None:
            process.terminate()
            with contextlib.suppress(ProcessLookupError):
                await process.wait()


async def test_saleor_sdk_app_installs_and_receives_a_verified_order(
    host: Host, node_app: NodeApp, tmp_path: Path
) -> None:
    port = (await node_app.next("listening"))["port"]
    manifest_url = f"http://127.0.0.1:{port}/api/manifest"

    answer = await host.admin(INSTALL, url=manifest_url)
    assert "errors" not in answer, answer
    payload = answer["data"]["appInstall"]
    assert payload["errors"] == []
    installation = payload["appInstallation"]
    assert installation["status"] == "SUCCESS", installation
    assert installation["appName"] == "Orders" and installation["manifestUrl"] == manifest_url

    # The SDK's register handler got the app id from the host with the token and saved it.
    registered = await node_app.next("registered")
    assert registered["saleorApiUrl"] == host.api_url
    type_name, app_pk = from_global_id(registered["appId"])
    assert type_name == "App"
    app = await host.kit.apps.get(app_pk)
    assert app.identifier == "webhookkit.test.orders"
    assert app.permissions == frozenset({"MANAGE_ORDERS"})
    apl = json.loads((tmp_path / "apl.json").read_text())
    assert apl["appId"] == registered["appId"]
    assert json.loads(apl["jwks"]) == host.kit.jwks()
    [webhook] = await host.kit.webhooks.list(app)
    assert webhook.target_url == f"http://127.0.0.1:{port}/api/webhooks/order-created"
    assert webhook.events == frozenset({"order_created"}) and webhook.secret_key is None

    placed = await host.admin(
        'mutation { orderCreate(input: {email: "buyer@example.com", '
        'lines: [{sku: "TSHIRT-M", quantity: 2}, {sku: "MUG", quantity: 1}]}) '
        "{ order { id number } } }"
    )
    order = placed["data"]["orderCreate"]["order"]

    received = await node_app.next("order_created")
    assert received["event"] == "order_created"
    assert received["payload"] == {
        "order": {
            "id": order["id"],
            "number": order["number"],
            "email": "buyer@example.com",
            "lines": [{"sku": "TSHIRT-M", "quantity": 2}, {"sku": "MUG", "quantity": 1}],
        }
    }
    [delivery] = await host.kit.list_deliveries()
    [final] = await host.kit.wait_for([delivery.id], timeout=60)
    assert final.status.value == "success"
