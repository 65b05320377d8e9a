"""The Django app: add ``"webhookkit.integrations.django"`` to ``INSTALLED_APPS``."""

from __future__ import annotations

from django.apps import AppConfig

from ._settings import load_settings


class WebhookKitConfig(AppConfig):  # type: ignore[misc]
    name = "webhookkit.integrations.django"
    label = "webhookkit"
    verbose_name = "webhookkit"

    def ready(self) -> None:
        # A wrong WEBHOOKKIT setting fails at start-up, not at the first order.
        config = load_settings()
        if config.store.startswith("sqlite:"):
            # SQLite has one writer: open the store (its schema check takes the write lock)
            # now, before a view's atomic() block holds that lock.
            from . import get_kit

            get_kit().open()
