"""The FastAPI lifespan and dependency, driven through the ASGI lifespan protocol."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.requests import Request

from webhookkit import WebhookKit
from webhookkit.exceptions import ConfigurationError
from webhookkit.integrations.fastapi import get_kit, kit_lifespan, webhookkit_lifespan


def request_for(app: FastAPI) -> Request:
    return Request({"type": "http", "app": app, "headers": []})


@pytest.mark.parametrize("send", [True, False])
async def test_the_kit_lives_as_long_as_the_app(tmp_path: Path, send: bool) -> None:
    kit = WebhookKit(store=f"sqlite:///{tmp_path / 'wk.db'}", domain="shop.example.com")
    app = FastAPI(lifespan=webhookkit_lifespan(kit, send=send))
    async with kit_lifespan(app, kit, send=send):
        assert get_kit(request_for(app)) is kit
        assert kit.scheduler.running is send
        app_record = await kit.apps.create("ERP", permissions=["MANAGE_ORDERS"])
        assert await kit.apps.get(app_record.id) is not None
    assert not kit.scheduler.running
    with pytest.raises(ConfigurationError, match="webhookkit_lifespan") as refused:
        get_kit(request_for(app))
    assert refused.value.field == "lifespan"
