"""``python manage.py webhookkit_worker``: send queued deliveries until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ..._settings import build_kit, load_settings


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


class Command(BaseCommand):  # type: ignore[misc]
    help = "Send the webhooks queued in the WEBHOOKKIT store until SIGINT or SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--concurrency", type=int, help="sends in flight at most")
        parser.add_argument("--lease", type=float, default=300.0, help="seconds a claim is held")
        parser.add_argument("--poll", type=float, help="seconds between store polls")

    def handle(self, *args: Any, **options: Any) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        asyncio.run(self._run(options))

    async def _run(self, options: dict[str, Any]) -> None:
        config = load_settings()
        kit = build_kit(
            config,
            worker=True,
            concurrency=options["concurrency"],
            lease=timedelta(seconds=options["lease"]),
            poll_interval=options["poll"],
        )
        async with kit:
            logging.getLogger("webhookkit").info("worker started on %s", kit.store)
            self.stdout.write("worker ready")
            self.stdout.flush()
            await _wait_for_signal()
