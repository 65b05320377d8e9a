"""Install hints for target URL schemes whose transport needs an optional extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from webhookkit.transports import missing_extra_hint
from webhookkit.transports._extras import installed


def test_hint_names_the_extra_when_its_module_is_missing() -> None:
    absent = missing_extra_hint("awssqs", is_installed=lambda module: False)
    assert absent == "awssqs:// needs the 'sqs' extra (aioboto3): pip install 'webhookkit[sqs]'"
    pubsub = missing_extra_hint("GCPUBSUB", is_installed=lambda module: False)
    assert pubsub is not None and "pip install 'webhookkit[pubsub]'" in pubsub


def test_no_hint_when_installed_or_for_schemes_without_extras() -> None:
    assert missing_extra_hint("awssqs", is_installed=lambda module: True) is None
    assert missing_extra_hint("https", is_installed=lambda module: False) is None
    assert missing_extra_hint("ftp") is None


def test_installed_checks_without_importing() -> None:
    assert installed("json")
    assert not installed("webhookkit_no_such_module")
    assert not installed("no_such_parent.child")


@pytest.mark.parametrize(
    ("blocked", "url", "extra"),
    [
        ("aioboto3", "awssqs://key:secret@sqs.us-east-1.amazonaws.com/1/q", "sqs"),
        ("gcloud", "gcpubsub://project/topic", "pubsub"),
    ],
)
def test_webhook_creation_without_the_extra_gives_the_install_hint(
    blocked: str, url: str, extra: str
) -> None:
    """In a fresh interpreter where the extra's package cannot be imported."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.modules[{blocked!r}] = None  # as if the package were not installed
        from webhookkit import InvalidURLError, WebhookKit

        async def main() -> None:
            async with WebhookKit(domain="shop.example.com") as kit:
                app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
                try:
                    await kit.webhooks.create(app, target_url={url!r}, events=["ORDER_CREATED"])
                except InvalidURLError as exc:
                    print(exc.field, exc)
                else:
                    print("accepted")

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.strip()
    assert out.startswith("target_url "), out
    assert f"pip install 'webhookkit[{extra}]'" in out
    assert "secret" not in out
