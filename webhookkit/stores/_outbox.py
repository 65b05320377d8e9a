"""The transactional outbox through the host's own database connection.

``write_outbox`` (sync code) and ``awrite_outbox`` (async code) insert the payload and delivery
rows of one trigger with the store's own SQL texts, through whatever connection the host
already holds, so the rows commit or roll back with the host's transaction:

- asyncpg ``Connection`` (and pooled connections), async;
- psycopg 3 ``Connection`` (sync) and ``AsyncConnection``;
- SQLAlchemy 2 ``Connection`` / ``Session`` (sync) and ``AsyncConnection`` / ``AsyncSession``;
- Django's ``django.db.connection`` or ``connections[alias]`` (PostgreSQL and SQLite backends);
- the standard library's ``sqlite3.Connection`` (SQLite store).

On PostgreSQL the same transaction runs ``SELECT pg_notify('webhookkit_deliveries', ...)``,
which the server delivers on commit, so LISTENing workers wake at once; SQLite workers poll.
The rows are written in a savepoint (a transaction of their own when the host has none open),
so a failure leaves the host's transaction as it was.

Drivers are recognised by class without importing them: a driver the host has not imported
cannot have made the connection. Nothing checks that the connection reaches the store's
database: that is the host's configuration.
"""

from __future__ import annotations

import re
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, Literal

from ..delivery.records import Delivery, Payload
from ..exceptions import ConfigurationError, StoreError, WebhookKitError
from . import _sql as q

__all__ = ["ACCEPTED", "awrite_outbox", "placeholders", "write_outbox"]

#: The LISTEN/NOTIFY channel of :mod:`webhookkit.stores.postgres` (kept equal by a test).
CHANNEL: Final = "webhookkit_deliveries"
_NOTIFY: Final = "SELECT pg_notify($1, $2)"
_SAVEPOINT: Final = "webhookkit_outbox"

Style = Literal["dollar", "format", "qmark", "named"]

#: What each store accepts, for error messages.
ACCEPTED: Final = {
    "postgresql": (
        "an asyncpg Connection, a psycopg 3 Connection or AsyncConnection, a SQLAlchemy "
        "Connection, Session, AsyncConnection or AsyncSession on PostgreSQL, or a Django "
        "connection to a PostgreSQL database"
    ),
    "sqlite": (
        "a sqlite3.Connection, a SQLAlchemy Connection or Session on SQLite, or a Django "
        "connection to an SQLite database"
    ),
}

_MARK = re.compile(r"\$(\d+)")


@cache
def _convert(text: str, style: Style) -> tuple[str, tuple[int, ...]]:
    order: list[int] = []

    def mark(match: re.Match[str]) -> str:
        number = int(match.group(1))
        order.append(number - 1)
        if style == "format":
            return "%s"
        if style == "qmark":
            return "?"
        return f":p{number}"

    if style == "dollar":
        return text, ()
    return _MARK.sub(mark, text), tuple(order)


def placeholders(text: str, rows: Sequence[Sequence[Any]], style: Style) -> tuple[str, list[Any]]:
    """``text`` (PostgreSQL ``$n`` placeholders) and its parameter rows in a driver's style:
    ``dollar`` (asyncpg) as is, ``format`` (psycopg, Django) ``%s``, ``qmark`` (sqlite3)
    ``?``, ``named`` (SQLAlchemy ``text()``) ``:pN`` with one dict per row."""
    converted, order = _convert(text, style)
    if style == "dollar":
        return converted, [tuple(r) for r in rows]
    if style == "named":
        return converted, [{f"p{i + 1}": r[i] for i in set(order)} for r in rows]
    return converted, [tuple(r[i] for i in order) for r in rows]


@dataclass(frozen=True, slots=True)
class _Plan:
    """The statements of one trigger: (text with ``$n``, parameter rows), in order."""

    statements: tuple[tuple[str, list[tuple[Any, ...]]], ...]

    @classmethod
    def of(
        cls, dialect: q.Dialect, payloads: Sequence[Payload], deliveries: Sequence[Delivery]
    ) -> _Plan:
        statements: list[tuple[str, list[tuple[Any, ...]]]] = []
        if payloads:
            statements.append((q.INSERT_PAYLOAD, [q.payload_params(dialect, p) for p in payloads]))
        if deliveries:
            rows = [q.delivery_params(dialect, d) for d in deliveries]
            statements.append((q.INSERT_DELIVERY, rows))
            if dialect.name == "postgresql":
                statements.append((_NOTIFY, [(CHANNEL, str(len(rows)))]))
        return cls(tuple(statements))


# -- recognising connections ---------------------------------------------------------------


def _class(module: str, *path: str) -> type | None:
    """``module.path`` if the host imported ``module`` (else None: it made no such object)."""
    found: Any = sys.modules.get(module)
    for name in path:
        found = getattr(found, name, None)
    return found if isinstance(found, type) else None


def _is(connection: Any, module: str, *path: str) -> bool:
    kind = _class(module, *path)
    return kind is not None and isinstance(connection, kind)


Kind = Literal[
    "asyncpg",
    "psycopg",
    "psycopg-async",
    "sqlalchemy",
    "sqlalchemy-session",
    "sqlalchemy-async",
    "sqlalchemy-async-session",
    "django",
    "sqlite3",
]
_ASYNC: Final = frozenset(
    {"asyncpg", "psycopg-async", "sqlalchemy-async", "sqlalchemy-async-session"}
)


def _django_wrapper(connection: Any) -> Any:
    """Django's ``connection`` proxy resolved to the alias's wrapper; None if not Django."""
    if _is(connection, "django.utils.connection", "ConnectionProxy"):
        return connection._connections[connection._alias]
    if _is(connection, "django.db.backends.base.base", "BaseDatabaseWrapper"):
        return connection
    return None


def _kind(connection: Any) -> tuple[Kind, str, Any] | None:
    """The driver, the database it talks to ("postgresql", "sqlite", ...) and the object to
    use (Django's proxy resolved); None for anything else."""
    if _is(connection, "asyncpg", "Connection") or _is(
        connection, "asyncpg.pool", "PoolConnectionProxy"
    ):
        return "asyncpg", "postgresql", connection
    if _is(connection, "psycopg", "AsyncConnection"):
        return "psycopg-async", "postgresql", connection
    if _is(connection, "psycopg", "Connection"):
        return "psycopg", "postgresql", connection
    if _is(connection, "sqlalchemy.ext.asyncio", "AsyncSession"):
        return "sqlalchemy-async-session", connection.get_bind().dialect.name, connection
    if _is(connection, "sqlalchemy.ext.asyncio", "AsyncConnection"):
        return "sqlalchemy-async", connection.dialect.name, connection
    if _is(connection, "sqlalchemy.orm", "Session"):
        return "sqlalchemy-session", connection.get_bind().dialect.name, connection
    if _is(connection, "sqlalchemy.engine", "Connection"):
        return "sqlalchemy", connection.dialect.name, connection
    wrapper = _django_wrapper(connection)
    if wrapper is not None:
        return "django", str(wrapper.vendor), wrapper
    if isinstance(connection, sqlite3.Connection):
        return "sqlite3", "sqlite", connection
    return None


def _check(connection: Any, dialect: q.Dialect) -> tuple[Kind, Any]:
    found = _kind(connection)
    accepted = ACCEPTED[dialect.name]
    if found is None:
        raise ConfigurationError(
            f"connection: {type(connection).__module__}.{type(connection).__qualname__} is "
            f"not a connection the {dialect.name} store can write through; pass {accepted}",
            field="connection",
        )
    kind, database, target = found
    if database != dialect.name:
        raise ConfigurationError(
            f"connection: a {kind} connection to {database} cannot hold the {dialect.name} "
            f"store's rows; pass {accepted}",
            field="connection",
        )
    return kind, target


@contextmanager
def _wrapped(kind: str) -> Iterator[None]:
    """The driver's own errors as StoreError (the host's transaction is left as it was)."""
    try:
        yield
    except WebhookKitError:
        raise
    except Exception as exc:
        raise StoreError(f"outbox ({kind}): {type(exc).__name__}: {exc}") from exc


# -- sync drivers --------------------------------------------------------------------------


def write_outbox(
    connection: Any,
    dialect: q.Dialect,
    payloads: Sequence[Payload],
    deliveries: Sequence[Delivery],
) -> None:
    """Insert the rows through the host's sync ``connection`` inside its open transaction
    (in a transaction of their own, committed at once, when none is open)."""
    kind, target = _check(connection, dialect)
    if kind in _ASYNC:
        raise ConfigurationError(
            f"connection: a {kind} connection is async; use it from async code "
            "(await kit.trigger(..., connection=...))",
            field="connection",
        )
    plan = _Plan.of(dialect, payloads, deliveries)
    if not plan.statements:
        return
    with _wrapped(kind):
        if kind == "psycopg":
            _psycopg(target, plan)
        elif kind == "sqlalchemy":
            _sqlalchemy(target, plan, dialect)
        elif kind == "sqlalchemy-session":
            _sqlalchemy_session(target, plan, dialect)
        elif kind == "django":
            _django(target, plan)
        else:
            _sqlite3(target, plan)


def _psycopg(conn: Any, plan: _Plan) -> None:
    if conn.autocommit:
        # No implicit transaction: transaction() is a savepoint inside the host's block, or
        # a transaction of its own.
        with conn.transaction(), conn.cursor() as cur:
            _executemany(cur, plan, "format")
        return
    # Non-autocommit: the rows join the (implicit) transaction the host commits itself.
    with conn.cursor() as cur:
        cur.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            _executemany(cur, plan, "format")
        except BaseException:
            cur.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            cur.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            raise
        cur.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")


def _executemany(cursor: Any, plan: _Plan, style: Style) -> None:
    for text, rows in plan.statements:
        converted, params = placeholders(text, rows, style)
        if len(params) == 1:
            cursor.execute(converted, params[0])
        else:
            cursor.executemany(converted, params)


def _text_statements(plan: _Plan) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    from sqlalchemy import text as sql_text

    for text, rows in plan.statements:
        converted, params = placeholders(text, rows, "named")
        yield sql_text(converted), params


def _sqlalchemy(conn: Any, plan: _Plan, dialect: q.Dialect) -> None:
    # pysqlite's savepoints need engine-level workarounds: on SQLite the rows simply join
    # the transaction SQLAlchemy began (autobegin), which the host commits.
    if dialect.name != "postgresql":
        for statement, params in _text_statements(plan):
            conn.execute(statement, params)
        return
    with conn.begin_nested():
        for statement, params in _text_statements(plan):
            conn.execute(statement, params)


def _sqlalchemy_session(session: Any, plan: _Plan, dialect: q.Dialect) -> None:
    if dialect.name != "postgresql":
        for statement, params in _text_statements(plan):
            session.execute(statement, params)
        return
    with session.begin_nested():
        for statement, params in _text_statements(plan):
            session.execute(statement, params)


def _django(wrapper: Any, plan: _Plan) -> None:
    from django.db import transaction

    # Inside the host's atomic() block this is a savepoint; outside it (autocommit) the rows
    # commit together at once.
    with transaction.atomic(using=wrapper.alias), wrapper.cursor() as cursor:
        _executemany(cursor, plan, "format")


def _sqlite3(conn: sqlite3.Connection, plan: _Plan) -> None:
    if not conn.in_transaction and conn.isolation_level is not None:
        # Legacy transaction control: the host expects its own commit() to decide, as it
        # would for its own INSERT; open that transaction now.
        conn.execute("BEGIN")
    conn.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        for text, rows in plan.statements:
            converted, params = placeholders(text, rows, "qmark")
            conn.executemany(converted, params)
    except BaseException:
        conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
        conn.execute(f"RELEASE {_SAVEPOINT}")
        raise
    # Outside a transaction (autocommit) releasing the outermost savepoint commits.
    conn.execute(f"RELEASE {_SAVEPOINT}")


# -- async drivers -------------------------------------------------------------------------


async def awrite_outbox(
    connection: Any,
    dialect: q.Dialect,
    payloads: Sequence[Payload],
    deliveries: Sequence[Delivery],
) -> None:
    """:func:`write_outbox` for async code: async drivers are awaited; a sync connection
    (sqlite3, psycopg, SQLAlchemy sync) is used directly, in the calling thread, because
    those connections belong to the thread that made them. Django's is refused: Django
    forbids it inside an event loop."""
    kind, target = _check(connection, dialect)
    if kind == "django":
        # Django refuses its ORM connections inside a running event loop.
        raise ConfigurationError(
            "connection: Django's connection is sync; queue from sync code with "
            "webhookkit.integrations.django.trigger (or BlockingKit.trigger_sync), and from "
            "an async view run the whole atomic() block through sync_to_async",
            field="connection",
        )
    if kind not in _ASYNC:
        write_outbox(connection, dialect, payloads, deliveries)
        return
    plan = _Plan.of(dialect, payloads, deliveries)
    if not plan.statements:
        return
    if kind == "asyncpg":
        await _asyncpg(target, plan)
        return
    with _wrapped(kind):
        if kind == "psycopg-async":
            await _apsycopg(target, plan)
        else:  # SQLAlchemy AsyncConnection or AsyncSession: a savepoint in the host's
            async with target.begin_nested():
                for statement, params in _text_statements(plan):
                    await target.execute(statement, params)


async def _asyncpg(conn: Any, plan: _Plan) -> None:
    import asyncpg

    try:
        async with conn.transaction():
            for text, rows in plan.statements:
                if len(rows) == 1:
                    await conn.execute(text, *rows[0])
                else:
                    await conn.executemany(text, rows)
    except asyncpg.ForeignKeyViolationError as exc:
        raise StoreError(q.MISSING_PAYLOAD) from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreError(f"outbox (asyncpg): {type(exc).__name__}: {exc}") from exc


async def _apsycopg(conn: Any, plan: _Plan) -> None:
    if conn.autocommit:
        async with conn.transaction(), conn.cursor() as cur:
            await _aexecutemany(cur, plan)
        return
    async with conn.cursor() as cur:
        await cur.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            await _aexecutemany(cur, plan)
        except BaseException:
            await cur.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            await cur.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            raise
        await cur.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")


async def _aexecutemany(cursor: Any, plan: _Plan) -> None:
    for text, rows in plan.statements:
        converted, params = placeholders(text, rows, "format")
        if len(params) == 1:
            await cursor.execute(converted, params[0])
        else:
            await cursor.executemany(converted, params)
