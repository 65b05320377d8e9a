"""The ``webhookkit`` command (also ``python -m webhookkit``).

Exit codes: 0 done, 1 failed (a receiver said no, a store or file error), 2 usage error
(bad option or input), 130 interrupted. User errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..exceptions import ConfigurationError, WebhookKitError
from . import catalog, listen, records, send, worker

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="webhookkit",
        description="Saleor-compatible webhooks: receive, send, trigger, inspect and replay.",
        epilog="Run 'webhookkit COMMAND --help' for a command's options.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"webhookkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    listen.register(sub)
    send.register(sub)
    records.register(sub)
    catalog.register(sub)
    worker.register(sub)
    return parser


def _fail(message: str) -> None:
    print(f"webhookkit: error: {' '.join(message.split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``webhookkit events | head``): stop quietly, and point
        # stdout at /dev/null so the interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("webhookkit: interrupted", file=sys.stderr)
        return 130
    except ConfigurationError as exc:
        _fail(str(exc))
        return 2
    except WebhookKitError as exc:
        _fail(str(exc))
        return 1
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}")
        return 1
    return code
