"""The benchmarks' PostgreSQL server (with ``pg_stat_statements``) and statement counting.

The server is the test suite's throwaway cluster (``tests/stores/pgcluster.py``: initdb and
pg_ctl in a temporary directory) at PostgreSQL's default durability (fsync and synchronous
commit on), with ``pg_stat_statements`` preloaded so each scenario can count the SQL
statements a database ran.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from stores.pgcluster import PostgresCluster

__all__ = [
    "config_selects",
    "create_database",
    "database_dsn",
    "reset_statements",
    "selects_on",
    "server_version",
    "start_cluster",
    "statements",
]

SETTINGS = {
    "shared_preload_libraries": "'pg_stat_statements'",
    "pg_stat_statements.max": "10000",
    "pg_stat_statements.track": "top",
    "pg_stat_statements.track_utility": "on",  # BEGIN, COMMIT, LISTEN count as statements
}


def start_cluster(durable: bool = True) -> PostgresCluster:
    """Start a fresh server with pg_stat_statements; the caller stops it.

    ``durable=False`` (the smoke run) turns fsync and synchronous commit off.
    """
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from stores.pgcluster import PostgresCluster

    fast = {} if durable else {"fsync": "off", "synchronous_commit": "off"}
    return PostgresCluster.start(settings={**SETTINGS, **fast})


def database_dsn(admin_dsn: str, name: str) -> str:
    """``admin_dsn`` with its database replaced by ``name``."""
    parts = urlsplit(admin_dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


_TEMPLATES: dict[str, str] = {}


async def _template(admin_dsn: str) -> str:
    """A database holding webhookkit's schema, migrated once per process by the store itself
    (``open()`` on a fresh database); new databases copy it instead of migrating again."""
    import asyncpg

    from webhookkit import PostgresStore

    if admin_dsn not in _TEMPLATES:
        name = f"wk_template_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        store = PostgresStore(database_dsn(admin_dsn, name))
        await store.open()
        await store.aclose()
        _TEMPLATES[admin_dsn] = name
    return _TEMPLATES[admin_dsn]


async def create_database(
    admin_dsn: str, prefix: str = "wk", *, migrated: bool = True
) -> tuple[str, str]:
    """A new database: (name, DSN); with ``migrated``, a copy of a migrated webhookkit schema
    (no rows), else empty. The extension view lives in the admin database."""
    import asyncpg

    template = f' TEMPLATE "{await _template(admin_dsn)}"' if migrated else ""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"{template}')
    finally:
        await conn.close()
    return name, database_dsn(admin_dsn, name)


async def drop_database(admin_dsn: str, dsn: str) -> None:
    """Drop the database of ``dsn`` (a finished run's), so that its autovacuum does not run
    during the next measurement."""
    import asyncpg

    name = urlsplit(dsn).path.lstrip("/")
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _admin(admin_dsn: str) -> Any:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return conn


async def reset_statements(admin_dsn: str) -> None:
    """Forget every statement counted so far (all databases)."""
    conn = await _admin(admin_dsn)
    try:
        await conn.execute("SELECT pg_stat_statements_reset()")
    finally:
        await conn.close()


async def statements(admin_dsn: str, database: str) -> int:
    """Statements ``database`` executed since the last reset (sum of ``calls``)."""
    conn = await _admin(admin_dsn)
    try:
        value = await conn.fetchval(
            "SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1",
            database,
        )
    finally:
        await conn.close()
    return int(value)


async def selects_on(admin_dsn: str, database: str, tables: str) -> int:
    """SELECTs reading any of ``tables`` (a regex alternation such as ``webhooks|apps``,
    after the ``webhookkit_`` prefix) that ``database`` ran since the reset."""
    conn = await _admin(admin_dsn)
    try:
        value = await conn.fetchval(
            "SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1 "
            "AND s.query ~* '^\\s*(with|select)' "
            "AND s.query ~* ('webhookkit_(' || $2 || ')\\M')",
            database,
            tables,
        )
    finally:
        await conn.close()
    return int(value)


async def config_selects(admin_dsn: str, database: str) -> int:
    """SELECTs that read webhookkit's configuration rows (apps, webhooks) since the reset."""
    return await selects_on(admin_dsn, database, "webhooks|apps")


async def server_version(admin_dsn: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
