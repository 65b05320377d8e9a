"""Django: settings, the outbox in Django's transaction, workers, verifying views, the JWKS.

::

    # settings.py
    INSTALLED_APPS = [..., "webhookkit.integrations.django"]
    WEBHOOKKIT = {"store": "django", "domain": "shop.example.com",
                  "signing_key_env": "RSA_PRIVATE_KEY"}

    # a view
    from webhookkit.integrations import django as webhooks

    with transaction.atomic():
        order = Order.objects.create(...)
        webhooks.trigger("ORDER_CREATED", payload={"order": {"id": order.pk}})

``trigger`` writes the delivery rows through Django's own connection: inside ``atomic()``
they commit or roll back with the order; outside any atomic block (autocommit) they commit
at once, together. ``python manage.py webhookkit_worker`` sends them.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ...apps import App
from ...blocking import BlockingKit
from ...events import EventType
from ...exceptions import ConfigurationError
from ._settings import KitSettings, build_kit, load_settings

__all__ = ["KitSettings", "close_kit", "get_kit", "load_settings", "trigger"]

_lock = threading.Lock()
_kit: tuple[int, BlockingKit, KitSettings] | None = None


def _current() -> tuple[BlockingKit, KitSettings]:
    global _kit
    with _lock:
        if _kit is None or _kit[0] != os.getpid():
            config = load_settings()
            _kit = (os.getpid(), BlockingKit(build_kit(config)), config)
        return _kit[1], _kit[2]


def get_kit() -> BlockingKit:
    """This process's kit, built from ``settings.WEBHOOKKIT`` on first use (again in a
    forked child, whose parent's loop thread does not exist there)."""
    return _current()[0]


def close_kit() -> None:
    """Close this process's kit (tests, or a clean shutdown)."""
    global _kit
    with _lock:
        found, _kit = _kit, None
    if found is not None and found[0] == os.getpid():
        found[1].close()


def trigger(
    event: str | EventType,
    *,
    subject: Any = None,
    payload: Any = None,
    requestor: Any = None,
    app: App | str | None = None,
    ordering_key: str | None = None,
    using: str = "default",
) -> list[str]:
    """Queue ``event`` in Django's transaction on database ``using``; returns delivery ids.

    The database must be the store's (``WEBHOOKKIT["store"] = "django"``, the default).
    """
    from django.db import connections

    kit, config = _current()
    if config.store_alias is not None and using != config.store_alias:
        raise ConfigurationError(
            f"using: the store lives in database {config.store_alias!r} "
            f"(WEBHOOKKIT['store']), not {using!r}",
            field="using",
        )
    return kit.trigger_sync(
        event,
        subject=subject,
        payload=payload,
        requestor=requestor,
        app=app,
        ordering_key=ordering_key,
        connection=connections[using],
    )
