"""What every command shares: errors, the kit it opens, times, payloads, keys, progress."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from ..dispatcher import WebhookKit
from ..exceptions import ConfigurationError
from ..signing import KeySet, SigningKey, load_key
from ..stores import SQLiteStore

__all__ = [
    "Progress",
    "add_key_options",
    "compact_json",
    "key_set",
    "make_kit",
    "open_kit",
    "parse_time",
    "read_payload",
]

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def make_kit(store: str, *, domain: str = "localhost", **options: Any) -> WebhookKit:
    """The one place the CLI builds a kit (the constructor is being regrouped by concern)."""
    return WebhookKit(store=store, domain=domain, **options)


@asynccontextmanager
async def open_kit(store: str) -> AsyncIterator[WebhookKit]:
    """A kit on ``store`` with the store open but no scheduler: reading records, queueing and
    requeueing work, never sending (a ``worker`` sends)."""
    kit = make_kit(store, retention=None)
    _check_exists(kit)
    await kit.store.open()
    try:
        yield kit
    finally:
        await kit.aclose()


def _check_exists(kit: WebhookKit) -> None:
    """Opening a SQLite store creates the file: a mistyped path would look like an empty
    store, so the CLI refuses a path that does not exist yet."""
    store = kit.store
    if (
        isinstance(store, SQLiteStore)
        and store.path != ":memory:"
        and not os.path.exists(store.path)
    ):
        raise ConfigurationError(f"store: no SQLite database at {store.path}", field="store")


def parse_time(text: str, *, field: str, now: datetime | None = None) -> datetime:
    """ISO-8601 (naive means UTC) or a relative age such as ``90s``, ``15m``, ``2h``, ``1d``."""
    match = _RELATIVE.match(text)
    current = now if now is not None else datetime.now(UTC)
    if match:
        amount, unit = float(match.group(1)), match.group(2)
        return current - timedelta(**{_UNITS[unit]: amount})
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"{field}: {text!r} is neither ISO-8601 (2026-01-31T12:00:00Z) nor an age like 2h",
            field=field,
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def read_payload(path: str | None, *, stdin: TextIO | None = None) -> Any:
    """The JSON document in ``path`` (``-``: standard input); None without a path."""
    if path is None:
        return None
    if path == "-":
        text = (stdin or sys.stdin).read()
        where = "standard input"
    else:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        where = path
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"payload: {where} is not JSON ({exc.msg} at line {exc.lineno})", field="payload"
        ) from None


def add_key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--signing-key-file", "--key-file", metavar="PEM", help="PEM private key (JWS signing)"
    )
    parser.add_argument("--signing-key-env", metavar="VAR", help="environment variable with a PEM")


def signing_key(args: argparse.Namespace) -> SigningKey | None:
    """The key named by ``--signing-key-file`` or ``--signing-key-env``, if any."""
    if getattr(args, "signing_key_file", None):
        with open(args.signing_key_file, "rb") as fh:
            return load_key(fh.read())
    name = getattr(args, "signing_key_env", None)
    if name:
        value = os.environ.get(name)
        if not value:
            raise ConfigurationError(f"signing key: ${name} is not set", field="signing_key_env")
        return load_key(value)
    return None


def key_set(args: argparse.Namespace) -> KeySet | None:
    key = signing_key(args)
    return None if key is None else KeySet.of(key)


class Progress:
    """A text progress bar on a terminal; on anything else one final count line."""

    def __init__(self, total: int, label: str, *, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.label = label
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._tty and self.total:
            width = 30
            filled = width * self.done // self.total
            bar = "#" * filled + "-" * (width - filled)
            self._stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
            self._stream.flush()

    def finish(self, summary: str = "") -> None:
        if self._tty and self.total:
            self._stream.write("\n")
        tail = f" ({summary})" if summary else ""
        self._stream.write(f"{self.label}: {self.done}/{self.total}{tail}\n")
        self._stream.flush()


def table(rows: Sequence[Sequence[str]], out: TextIO | None = None) -> None:
    """Left-aligned columns, two spaces apart."""
    stream = out if out is not None else sys.stdout
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=True)]
        stream.write("  ".join(cells).rstrip() + "\n")


def when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
