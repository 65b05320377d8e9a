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

With an idempotency key the key row is written first, in the same savepoint: if an unexpired
row for the key exists (committed, or written earlier in this same transaction) nothing else is
written and its delivery ids are returned; a rollback of the host's transaction frees the key.

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
from typing import Any, Final, Literal, Protocol

from ..delivery.records import Delivery, Payload
from ..exceptions import ConfigurationError, StoreError, WebhookKitError
from . import _sql as q
from .base import IdempotencyKey

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
    """The statements of one trigger: (text with ``$n``, parameter rows), in order, after
    claiming ``claim`` (an idempotency key row) when there is one."""

    statements: tuple[tuple[str, list[tuple[Any, ...]]], ...]
    claim: tuple[Any, ...] | None = None

    @classmethod
    def of(
        cls,
        dialect: q.Dialect,
        payloads: Sequence[Payload],
        deliveries: Sequence[Delivery],
        key: IdempotencyKey | None,
    ) -> _Plan:
        statements: list[tuple[str, list[tuple[Any, ...]]]] = []
        if payloads:
            statements.append((q.INSERT_PAYLOAD, [q.payload_params(dialect, p) for p in payloads]))
        if deliveries:
            rows = [q.delivery_params(dialect, d) for d in deliveries]
            statements.append((q.INSERT_DELIVERY, rows))
            if dialect.name == "postgresql":
                statements.append((_NOTIFY, [(CHANNEL, str(len(rows)))]))
        claim = None if key is None else q.idempotency_key_params(dialect, key)
        return cls(tuple(statements), claim)

    @property
    def empty(self) -> bool:
        return not self.statements and self.claim is None


class _Exec(Protocol):
    """One driver's way to run a statement: ``one`` returns the first row (or None)."""

    def one(self, text: str, params: tuple[Any, ...]) -> Any: ...
    def many(self, text: str, rows: list[tuple[Any, ...]]) -> None: ...


class _AsyncExec(Protocol):
    async def one(self, text: str, params: tuple[Any, ...]) -> Any: ...
    async def many(self, text: str, rows: list[tuple[Any, ...]]) -> None: ...


def _held_ids(row: Any) -> list[str]:
    value = row[0]
    # TEXT in every schema; a driver that decodes JSON by itself may hand back the list.
    return q.delivery_ids_of(value) if isinstance(value, str) else [str(i) for i in value]


def _apply(run: _Exec, plan: _Plan) -> list[str] | None:
    """Claim the key (if any), then write; the held ids when the key was already taken."""
    if plan.claim is not None and run.one(q.CLAIM_IDEMPOTENCY_KEY, plan.claim) is None:
        held = run.one(q.SELECT_IDEMPOTENCY_KEY, plan.claim[:1])
        if held is None:
            raise StoreError(q.KEY_VANISHED)
        return _held_ids(held)
    for text, rows in plan.statements:
        run.many(text, rows)
    return None


async def _aapply(run: _AsyncExec, plan: _Plan) -> list[str] | None:
    if plan.claim is not None and await run.one(q.CLAIM_IDEMPOTENCY_KEY, plan.claim) is None:
        held = await run.one(q.SELECT_IDEMPOTENCY_KEY, plan.claim[:1])
        if held is None:
            raise StoreError(q.KEY_VANISHED)
        return _held_ids(held)
    for text, rows in plan.statements:
        await run.many(text, rows)
    return None


@dataclass(frozen=True, slots=True)
class _Cursor:
    """A DB-API cursor (psycopg, Django) or sqlite3 connection in ``style``."""

    cursor: Any
    style: Style

    def one(self, text: str, params: tuple[Any, ...]) -> Any:
        converted, [bound] = placeholders(text, [params], self.style)
        return self.cursor.execute(converted, bound).fetchone()

    def many(self, text: str, rows: list[tuple[Any, ...]]) -> None:
        converted, bound = placeholders(text, rows, self.style)
        if len(bound) == 1:
            self.cursor.execute(converted, bound[0])
        else:
            self.cursor.executemany(converted, bound)


@dataclass(frozen=True, slots=True)
class _DjangoCursor(_Cursor):
    def one(self, text: str, params: tuple[Any, ...]) -> Any:
        # Django's cursor wrapper returns None from execute(): fetch separately.
        converted, [bound] = placeholders(text, [params], self.style)
        self.cursor.execute(converted, bound)
        return self.cursor.fetchone()


@dataclass(frozen=True, slots=True)
class _SQLAlchemy:
    """A SQLAlchemy ``Connection`` or ``Session``: ``text()`` with named parameters."""

    target: Any

    def one(self, text: str, params: tuple[Any, ...]) -> Any:
        statement, [bound] = _text(text, [params])
        return self.target.execute(statement, bound).first()

    def many(self, text: str, rows: list[tuple[Any, ...]]) -> None:
        statement, bound = _text(text, rows)
        self.target.execute(statement, bound if len(bound) > 1 else bound[0])


@dataclass(frozen=True, slots=True)
class _AsyncSQLAlchemy:
    target: Any

    async def one(self, text: str, params: tuple[Any, ...]) -> Any:
        statement, [bound] = _text(text, [params])
        return (await self.target.execute(statement, bound)).first()

    async def many(self, text: str, rows: list[tuple[Any, ...]]) -> None:
        statement, bound = _text(text, rows)
        await self.target.execute(statement, bound if len(bound) > 1 else bound[0])


@dataclass(frozen=True, slots=True)
class _AsyncCursor:
    cursor: Any

    async def one(self, text: str, params: tuple[Any, ...]) -> Any:
        converted, [bound] = placeholders(text, [params], "format")
        await self.cursor.execute(converted, bound)
        return await self.cursor.fetchone()

    async def many(self, text: str, rows: list[tuple[Any, ...]]) -> None:
        converted, bound = placeholders(text, rows, "format")
        if len(bound) == 1:
            await self.cursor.execute(converted, bound[0])
        else:
            await self.cursor.executemany(converted, bound)


@dataclass(frozen=True, slots=True)
class _Asyncpg:
    conn: Any

    async def one(self, text: str, params: tuple[Any, ...]) -> Any:
        return await self.conn.fetchrow(text, *params)

    async def many(self, text: str, rows: list[tuple[Any, ...]]) -> None:
        if len(rows) == 1:
            await self.conn.execute(text, *rows[0])
        else:
            await self.conn.executemany(text, rows)


def _text(text: str, rows: Sequence[Sequence[Any]]) -> tuple[Any, list[Any]]:
    from sqlalchemy import text as sql_text

    converted, params = placeholders(text, rows, "named")
    return sql_text(converted), params


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
    *,
    idempotency_key: IdempotencyKey | None = None,
) -> list[str] | None:
    """Insert the rows through the host's sync ``connection`` inside its open transaction
    (in a transaction of their own, committed at once, when none is open).

    With ``idempotency_key`` its row is claimed first in the same transaction: if another
    trigger holds the key (and it has not expired), nothing is written and that trigger's
    delivery ids are returned; otherwise None.
    """
    kind, target = _check(connection, dialect)
    if kind in _ASYNC:
        raise ConfigurationError(
            f"connection: a {kind} connection is async; use it from async code "
            "(await kit.trigger(..., connection=...))",
            field="connection",
        )
    plan = _Plan.of(dialect, payloads, deliveries, idempotency_key)
    if plan.empty:
        return None
    with _wrapped(kind):
        if kind == "psycopg":
            return _psycopg(target, plan)
        if kind in ("sqlalchemy", "sqlalchemy-session"):
            return _sqlalchemy(target, plan, dialect)
        if kind == "django":
            return _django(target, plan)
        return _sqlite3(target, plan)


def _psycopg(conn: Any, plan: _Plan) -> list[str] | None:
    if conn.autocommit:
        # No implicit transaction: transaction() is a savepoint inside the host's block, or
        # a transaction of its own.
        with conn.transaction(), conn.cursor() as cur:
            return _apply(_Cursor(cur, "format"), plan)
    # Non-autocommit: the rows join the (implicit) transaction the host commits itself.
    with conn.cursor() as cur:
        cur.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            held = _apply(_Cursor(cur, "format"), plan)
        except BaseException:
            cur.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            cur.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            raise
        cur.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
        return held


def _sqlalchemy(target: Any, plan: _Plan, dialect: q.Dialect) -> list[str] | None:
    # pysqlite's savepoints need engine-level workarounds: on SQLite the rows simply join
    # the transaction SQLAlchemy began (autobegin), which the host commits.
    if dialect.name != "postgresql":
        return _apply(_SQLAlchemy(target), plan)
    with target.begin_nested():
        return _apply(_SQLAlchemy(target), plan)


def _django(wrapper: Any, plan: _Plan) -> list[str] | None:
    from django.db import transaction

    # Inside the host's atomic() block this is a savepoint; outside it (autocommit) the rows
    # commit together at once.
    with transaction.atomic(using=wrapper.alias), wrapper.cursor() as cursor:
        return _apply(_DjangoCursor(cursor, "format"), plan)


def _sqlite3(conn: sqlite3.Connection, plan: _Plan) -> list[str] | None:
    if not conn.in_transaction and conn.isolation_level is not None:
        # Legacy transaction control: the host expects its own commit() to decide, as it
        # would for its own INSERT; open that transaction now.
        conn.execute("BEGIN")
    conn.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        held = _apply(_Cursor(conn, "qmark"), plan)
    except BaseException:
        conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
        conn.execute(f"RELEASE {_SAVEPOINT}")
        raise
    # Outside a transaction (autocommit) releasing the outermost savepoint commits.
    conn.execute(f"RELEASE {_SAVEPOINT}")
    return held


# -- async drivers -------------------------------------------------------------------------


async def awrite_outbox(
    connection: Any,
    dialect: q.Dialect,
    payloads: Sequence[Payload],
    deliveries: Sequence[Delivery],
    *,
    idempotency_key: IdempotencyKey | None = None,
) -> list[str] | None:
    """:func:`write_outbox` for async code: async drivers are awaited; a sync connection
    (sqlite3, psycopg, SQLAlchemy sync) is used directly, in the calling thread, because
    those connections belong to the thread that made them. Django's is refused: Django
    forbids it inside an event loop."""
    kind, target = _check(connection, dialect)
    if kind == "django":
        raise ConfigurationError(
            "connection: Django's connection is sync; queue from sync code with "
            "webhookkit.integrations.django.trigger (or BlockingKit.trigger_sync), and from "
            "an async view run the whole atomic() block through sync_to_async",
            field="connection",
        )
    if kind not in _ASYNC:
        return write_outbox(
            connection, dialect, payloads, deliveries, idempotency_key=idempotency_key
        )
    plan = _Plan.of(dialect, payloads, deliveries, idempotency_key)
    if plan.empty:
        return None
    if kind == "asyncpg":
        return await _asyncpg(target, plan)
    with _wrapped(kind):
        if kind == "psycopg-async":
            return await _apsycopg(target, plan)
        # SQLAlchemy AsyncConnection or AsyncSession: a savepoint in the host's transaction.
        async with target.begin_nested():
            return await _aapply(_AsyncSQLAlchemy(target), plan)


async def _asyncpg(conn: Any, plan: _Plan) -> list[str] | None:
    import asyncpg

    try:
        async with conn.transaction():
            return await _aapply(_Asyncpg(conn), plan)
    except asyncpg.ForeignKeyViolationError as exc:
        raise StoreError(q.MISSING_PAYLOAD) from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreError(f"outbox (asyncpg): {type(exc).__name__}: {exc}") from exc


async def _apsycopg(conn: Any, plan: _Plan) -> list[str] | None:
    if conn.autocommit:
        async with conn.transaction(), conn.cursor() as cur:
            return await _aapply(_AsyncCursor(cur), plan)
    async with conn.cursor() as cur:
        await cur.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            held = await _aapply(_AsyncCursor(cur), plan)
        except BaseException:
            await cur.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            await cur.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            raise
        await cur.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
        return held
