"""A delivery worker for the benchmarks: ``python -m webhookkit worker`` plus ``noop://``.

Started once and reused, so a run pays for the imports only once: on ``start CONCURRENCY STORE`` (a
line on stdin) it builds a kit with :func:`benchmarks._kit.make_kit` on ``STORE`` (HTTP to
loopback and the no-op transport mounted), starts it and prints ``worker ready``; on
``stop`` it closes the kit (finishing what it has in flight) and prints ``worker stopped``;
it exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from benchmarks._kit import NoopTransport, make_kit
from webhookkit import WebhookKit


async def _run(args: argparse.Namespace) -> None:
    kit: WebhookKit | None = None
    try:
        while line := await asyncio.to_thread(sys.stdin.readline):
            command, *rest = line.split()
            if command == "start" and kit is None:
                kit = make_kit(
                    store=rest[1],
                    concurrency=int(rest[0]),
                    extra_transports=[NoopTransport()],
                    max_queued=None,
                    poll_interval=args.poll,
                )
                await kit.start()
                print("worker ready", flush=True)
            elif command == "stop" and kit is not None:
                await kit.aclose()
                kit = None
                print("worker stopped", flush=True)
    finally:
        if kit is not None:
            await kit.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._worker")
    parser.add_argument("--poll", type=float, default=1.0)
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()
