"""The import rules the architecture states, checked on the package's source.

Signing and payloads do no I/O; stores send nothing; transports store nothing; nothing outside
``stores/`` writes SQL; nothing outside ``transports/`` opens a client socket (the CLI's local
receiver aside). Read with :mod:`ast`, so nothing is imported or run.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "webhookkit"
SQL = re.compile(r"^\s*(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE (TABLE|INDEX))\b")
#: Modules that reach the network or a database.
NETWORK = {"aiohttp", "socket", "ssl", "aioboto3", "botocore", "gcloud", "urllib.request"}
DATABASE = {"asyncpg", "sqlite3", "psycopg", "sqlalchemy", "django.db"}


def modules(part: str = "") -> list[Path]:
    return sorted((PACKAGE / part).rglob("*.py")) if part else sorted(PACKAGE.rglob("*.py"))


def top_level_imports(path: Path) -> set[str]:
    """Modules imported at module level (imports inside functions are deliberate and lazy)."""
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.add(base)
    return found


def absolute(path: Path, name: str) -> str:
    """``name`` as imported from ``path``, with relative imports resolved."""
    if not name.startswith("."):
        return name
    level = len(name) - len(name.lstrip("."))
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    base = package[: len(package) - (level - 1)]
    rest = name.lstrip(".")
    return ".".join([*base, rest] if rest else base)


def imports_of(path: Path) -> set[str]:
    return {absolute(path, name) for name in top_level_imports(path)}


def hits(names: set[str], banned: set[str]) -> set[str]:
    return {n for n in names for b in banned if n == b or n.startswith(b + ".")}


@pytest.mark.parametrize("part", ["signing", "payloads"])
def test_signing_and_payloads_do_no_io(part: str) -> None:
    for path in modules(part):
        bad = hits(imports_of(path), NETWORK | DATABASE | {"webhookkit.stores"})
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_stores_send_nothing() -> None:
    for path in modules("stores"):
        bad = hits(imports_of(path), NETWORK | {"webhookkit.transports"})
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_transports_store_nothing() -> None:
    for path in modules("transports"):
        bad = hits(imports_of(path), DATABASE | {"webhookkit.stores"})
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_only_stores_write_sql() -> None:
    for path in modules():
        if path.is_relative_to(PACKAGE / "stores"):
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not SQL.match(node.value), (
                    f"{path.relative_to(PACKAGE)}:{node.lineno} holds SQL: {node.value[:60]!r}"
                )


def test_only_transports_open_client_sockets() -> None:
    allowed = {PACKAGE / "transports", PACKAGE / "cli"}
    for path in modules():
        if any(path.is_relative_to(a) for a in allowed):
            continue
        source = path.read_text("utf-8")
        for marker in (
            "ClientSession(",
            "open_connection(",
            "socket.socket(",
            "create_connection(",
        ):
            assert marker not in source, f"{path.relative_to(PACKAGE)} opens a socket: {marker}"


def test_shared_value_types_live_at_the_top() -> None:
    """Stores take ``Timeouts`` from the neutral config module, not from the transports."""
    for path in modules("stores"):
        assert "webhookkit.transports.base" not in imports_of(path), path
