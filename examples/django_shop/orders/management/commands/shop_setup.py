"""``python manage.py shop_setup URL``: one app and one ORDER_CREATED webhook to URL."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from webhookkit.integrations.django import get_kit


class Command(BaseCommand):  # type: ignore[misc]
    help = "Create the app and the ORDER_CREATED webhook the example sends to."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("target_url")

    def handle(self, *args: Any, **options: Any) -> None:
        blocking = get_kit()
        kit = blocking.kit
        app = blocking.run(kit.apps.create("ERP sync", permissions=["MANAGE_ORDERS"]))
        webhook = blocking.run(
            kit.webhooks.create(app, target_url=options["target_url"], events=["ORDER_CREATED"])
        )
        self.stdout.write(webhook.id)
