"""A durable store for one process: SQLite in WAL mode, driven from one worker thread.

Every statement runs in a dedicated thread that owns the only connection, so the event loop
never blocks on disk and SQLite sees exactly one writer. Use PostgreSQL when several
processes or machines send the same deliveries.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from ..apps import App, AppToken, Webhook
from ..delivery.records import (
    Attempt,
    AttemptResult,
    ClaimedBatch,
    Delivery,
    DeliveryStatus,
    Payload,
)
from ..exceptions import InvalidFieldError, StoreError
from ..installations import AppInstallation
from . import _sql as q
from . import _sqlite_batch as B
from .base import DEFAULT_KEEP_FAILED, DeliveryQuery, IdempotencyKey, StoredKey

__all__ = ["SQLiteStore"]

T = TypeVar("T")
D = q.SQLITE
Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
_NO_SUCH_DELIVERY = "finish_many: a delivery does not exist"


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    # IMMEDIATE takes the write lock up front: no upgrade deadlock with another process.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class SQLiteStore:
    """Apps, webhooks and deliveries in one SQLite file; survives restarts.

    ``synchronous`` is SQLite's durability level: ``"FULL"`` (default) syncs every commit,
    ``"NORMAL"`` is faster and in WAL mode may lose the last commits on power loss (never on a
    crash of the process). ``":memory:"`` gives a private in-memory database.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout: float = 5.0,
    ) -> None:
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise InvalidFieldError(
                f"synchronous: {synchronous!r} is not OFF, NORMAL, FULL or EXTRA",
                field="synchronous",
            )
        self.path = str(path)
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._open_lock = asyncio.Lock()
        self._closed = False
        #: See :class:`webhookkit._catalog.Catalog`; polled from the version row.
        self.config_generation = 0
        self._config_version: int | None = None

    # -- plumbing -----------------------------------------------------------------------------
    async def open(self) -> None:
        async with self._open_lock:
            if self._closed:
                raise StoreError("store: used after aclose()")
            if self._conn is not None:
                return
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhookkit-sqlite")
            try:
                self._conn = await self._call(executor, self._connect)
            except BaseException:
                executor.shutdown(wait=False)
                raise
            self._executor = executor

    def _connect(self) -> sqlite3.Connection:
        # Switching a new file to WAL takes an exclusive lock that the busy timeout does not
        # cover: when two processes open the same new file at once, one waits and tries again.
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                return self._connect_once()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _connect_once(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=True
        )
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn)
            for statement in B.TEMP_OBJECTS:
                conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        # A schema already current needs no write lock: a read here lets the store open while
        # another connection (a host's outbox transaction) holds SQLite's one writer lock.
        known = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            (q.MIGRATIONS_TABLE,),
        ).fetchone()
        if known is not None:
            current = conn.execute(q.SELECT_SCHEMA_VERSION).fetchone()["v"]
            if int(current) == q.SCHEMA_VERSION:
                return
        with _transaction(conn):
            conn.execute(D.ddl(q.CREATE_MIGRATIONS_TABLE))
            current = conn.execute(q.SELECT_SCHEMA_VERSION).fetchone()["v"]
            for migration in q.pending_migrations(int(current)):
                for statement in migration.for_dialect(D):
                    conn.execute(statement)
                conn.execute(
                    D.sql(q.INSERT_MIGRATION),
                    (migration.version, migration.description, D.ts(datetime.now(UTC))),
                )

    @staticmethod
    async def _call(executor: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, fn)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {type(exc).__name__}: {exc}") from exc

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` in the store's thread, opening the store on first use."""
        if self._conn is None:
            await self.open()
        conn, executor = self._conn, self._executor
        if conn is None or executor is None or self._closed:
            raise StoreError("store: used after aclose()")
        return await self._call(executor, lambda: fn(conn))

    # -- configuration ------------------------------------------------------------------------
    async def put_app(self, app: App) -> None:
        await self._run(lambda c: c.execute(D.sql(q.UPSERT_APP), q.app_params(D, app)))
        self.config_generation += 1

    async def get_app(self, app_id: str) -> App | None:
        row = await self._run(lambda c: c.execute(D.sql(q.SELECT_APP), (app_id,)).fetchone())
        return q.row_to_app(D, row) if row is not None else None

    async def list_apps(self) -> list[App]:
        rows = await self._run(lambda c: c.execute(q.LIST_APPS).fetchall())
        return [q.row_to_app(D, r) for r in rows]

    async def delete_app(self, app_id: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                for statement in q.DELETE_APP:
                    conn.execute(D.sql(statement), (app_id,))

        await self._run(work)
        self.config_generation += 1

    async def put_token(self, token: AppToken) -> None:
        def work(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(D.sql(q.UPSERT_TOKEN), q.token_params(D, token))
            except sqlite3.IntegrityError as exc:
                raise StoreError(q.DUPLICATE_TOKEN) from exc

        await self._run(work)

    async def find_token(self, token_hash: str) -> AppToken | None:
        row = await self._run(lambda c: c.execute(D.sql(q.FIND_TOKEN), (token_hash,)).fetchone())
        return q.row_to_token(D, row) if row is not None else None

    async def list_tokens(self, app_id: str) -> list[AppToken]:
        rows = await self._run(lambda c: c.execute(D.sql(q.LIST_TOKENS), (app_id,)).fetchall())
        return [q.row_to_token(D, r) for r in rows]

    async def delete_token(self, token_id: str) -> bool:
        cursor = await self._run(lambda c: c.execute(D.sql(q.DELETE_TOKEN), (token_id,)))
        return cursor.rowcount > 0

    async def put_webhook(self, webhook: Webhook) -> None:
        await self._run(lambda c: c.execute(D.sql(q.UPSERT_WEBHOOK), q.webhook_params(D, webhook)))
        self.config_generation += 1

    async def get_webhook(self, webhook_id: str) -> Webhook | None:
        row = await self._run(
            lambda c: c.execute(D.sql(q.SELECT_WEBHOOK), (webhook_id,)).fetchone()
        )
        return q.row_to_webhook(D, row) if row is not None else None

    async def list_webhooks(self, app_id: str | None = None) -> list[Webhook]:
        if app_id is None:
            rows = await self._run(lambda c: c.execute(q.LIST_WEBHOOKS).fetchall())
        else:
            rows = await self._run(
                lambda c: c.execute(D.sql(q.LIST_APP_WEBHOOKS), (app_id,)).fetchall()
            )
        return [q.row_to_webhook(D, r) for r in rows]

    async def delete_webhook(self, webhook_id: str) -> bool:
        cursor = await self._run(lambda c: c.execute(D.sql(q.DELETE_WEBHOOK), (webhook_id,)))
        self.config_generation += 1
        return cursor.rowcount > 0

    async def mark_failing(self, webhook_id: str, now: datetime) -> datetime:
        params = (webhook_id, D.ts(now))

        def work(conn: sqlite3.Connection) -> object:
            with _transaction(conn):
                conn.execute(D.sql(q.MARK_FAILING), params)
                return conn.execute(D.sql(q.SELECT_FAILING), (webhook_id,)).fetchone()[0]

        since = D.dt(await self._run(work))
        assert since is not None
        return since

    async def clear_failing(self, webhook_id: str) -> None:
        await self._run(lambda c: c.execute(D.sql(q.CLEAR_FAILING), (webhook_id,)))

    async def poll_config(self) -> None:
        row = await self._run(lambda c: c.execute(q.SELECT_CONFIG_VERSION).fetchone())
        version = int(row["version"]) if row is not None else 0
        if version != self._config_version:
            if self._config_version is not None:
                self.config_generation += 1
            self._config_version = version

    # -- deliveries ---------------------------------------------------------------------------
    async def add_deliveries(
        self,
        payloads: Sequence[Payload],
        deliveries: Sequence[Delivery],
        *,
        idempotency_key: IdempotencyKey | None = None,
        connection: Any = None,
    ) -> list[str] | None:
        """Write payloads and deliveries in one transaction.

        With ``connection`` (the host's ``sqlite3.Connection``, SQLAlchemy connection or
        Django connection to this store's file: see :mod:`webhookkit.stores._outbox`) the
        rows are written through it, in the host's open transaction: workers see them when
        the host commits (they poll), and a rollback leaves no trace.

        ``idempotency_key``: see :meth:`webhookkit.stores.Store.add_deliveries`; the key row
        is written in the same transaction (SQLite's single writer makes racing keys serial).
        """
        if connection is not None:
            from ._outbox import awrite_outbox

            if self._conn is None:
                await self.open()  # the schema must exist before the host writes into it
            return await awrite_outbox(
                connection, D, payloads, deliveries, idempotency_key=idempotency_key
            )
        payload_rows = [q.payload_params(D, p) for p in payloads]
        deliveries_json = q.json_rows([q.delivery_params(D, d) for d in deliveries])
        key_row = None if idempotency_key is None else q.idempotency_key_params(D, idempotency_key)

        def work(conn: sqlite3.Connection) -> list[str] | None:
            try:
                with _transaction(conn):
                    if key_row is not None:
                        taken = conn.execute(D.sql(q.CLAIM_IDEMPOTENCY_KEY), key_row).fetchone()
                        if taken is None:
                            held = conn.execute(
                                D.sql(q.SELECT_IDEMPOTENCY_KEY), key_row[:1]
                            ).fetchone()
                            if held is None:
                                raise StoreError(q.KEY_VANISHED)
                            return q.delivery_ids_of(held["delivery_ids"])
                    conn.executemany(D.sql(q.INSERT_PAYLOAD), payload_rows)
                    conn.execute(q.INSERT_DELIVERIES_SQLITE, (deliveries_json,))
            except sqlite3.IntegrityError as exc:
                if "FOREIGN KEY" in str(exc):
                    raise StoreError(q.MISSING_PAYLOAD) from exc
                raise
            return None

        def one_statement(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(B.add_deliveries_sql(len(payload_rows)), params)
            except sqlite3.IntegrityError as exc:
                if "FOREIGN KEY" in str(exc):
                    raise StoreError(q.MISSING_PAYLOAD) from exc
                raise

        if key_row is None and payload_rows:
            params = [value for row in payload_rows for value in (*row, None)]
            params[-1] = deliveries_json
            await self._run(one_statement)
            return None
        return await self._run(work)

    async def find_idempotency_key(self, key: str, now: datetime) -> list[str] | None:
        row = await self._run(
            lambda c: c.execute(D.sql(q.FIND_IDEMPOTENCY_KEY), (key, D.ts(now))).fetchone()
        )
        return None if row is None else q.delivery_ids_of(row["delivery_ids"])

    async def get_payload(self, payload_id: str) -> Payload | None:
        row = await self._run(
            lambda c: c.execute(D.sql(q.SELECT_PAYLOAD), (payload_id,)).fetchone()
        )
        return q.row_to_payload(D, row) if row is not None else None

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        row = await self._run(
            lambda c: c.execute(D.sql(q.SELECT_DELIVERY), (delivery_id,)).fetchone()
        )
        return q.row_to_delivery(D, row) if row is not None else None

    async def list_deliveries(self, query: DeliveryQuery | None = None) -> list[Delivery]:
        text, args = q.list_deliveries_sql(D, query or DeliveryQuery())
        rows = await self._run(lambda c: c.execute(text, args).fetchall())
        return [q.row_to_delivery(D, r) for r in rows]

    async def list_attempts(self, delivery_id: str) -> list[Attempt]:
        rows = await self._run(
            lambda c: c.execute(D.sql(q.LIST_ATTEMPTS), (delivery_id,)).fetchall()
        )
        return [q.row_to_attempt(D, r) for r in rows]

    async def claim_due(
        self,
        now: datetime,
        *,
        limit: int,
        lease: timedelta,
        exclude_webhooks: Collection[str] = (),
    ) -> list[Delivery]:
        if limit <= 0:
            return []
        params = (D.ts(now), limit, D.id_list(sorted(exclude_webhooks)))
        until = D.ts(now + lease)

        def work(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            with _transaction(conn):
                due = conn.execute(D.sql(q.SELECT_DUE_SQLITE), params).fetchall()
                if not due:
                    return []
                ids = [r["id"] for r in due]
                conn.execute(q.lease_sql(D), (until, D.id_list(ids)))
                rows = conn.execute(q.select_by_ids_sql(D), (D.id_list(ids),)).fetchall()
            order = {delivery_id: i for i, delivery_id in enumerate(ids)}
            return sorted(rows, key=lambda r: order[r["id"]])

        return [q.row_to_delivery(D, r) for r in await self._run(work)]

    async def claim_batch(
        self,
        now: datetime,
        *,
        limit: int,
        lease: timedelta,
        exclude_webhooks: Collection[str] = (),
        per_webhook: int | None = None,
    ) -> ClaimedBatch:
        if limit <= 0:
            return ClaimedBatch([], {})
        cap = per_webhook if per_webhook is not None else limit
        until = D.ts(now + lease)
        params = (D.ts(now), limit, D.id_list(sorted(exclude_webhooks)), limit * 4, cap, until)

        def work(conn: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            # Two statements, two steps: the claim (one atomic write) and one row holding the
            # claimed rows and their payloads as JSON. Nothing else changes the claimed rows
            # in between: they are leased to this store, whose thread runs one call at a time.
            conn.execute(B.CLAIM, params)
            row = conn.execute(B.CLAIMED).fetchone()
            claimed: list[Any] = json.loads(row["claimed"])
            bodies: list[Any] = json.loads(row["payloads"])
            # Due order, made here: the order an aggregate sees its rows is not promised.
            claimed.sort(key=lambda r: (r["claimed_due"], r["id"]))
            return claimed, bodies

        claimed, bodies = await self._run(work)
        deliveries = [q.row_to_delivery(D, row) for row in claimed]
        payloads = {
            pid: q.row_to_payload(
                D, {"id": pid, "event": event, "body": bytes.fromhex(body), "created_at": created}
            )
            for pid, event, body, created in bodies
        }
        return ClaimedBatch(deliveries, payloads)

    async def finish_many(self, results: Sequence[AttemptResult]) -> None:
        if not results:
            return
        finishes = [
            q.finish_params(D, r.delivery_id, r.attempt, r.status, r.next_try_at, r.now)
            for r in results
        ]
        attempts = q.json_rows([q.attempt_json_row(D, r.attempt) for r in results])
        ids = sorted({r.delivery_id for r in results})
        # One statement per table; two attempts of one delivery in a batch (never sent by the
        # scheduler, possible through the API) are applied one by one, in order.
        batched = len(ids) == len(finishes)

        def work(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                known = conn.execute(q.COUNT_IDS_SQLITE, (D.id_list(ids),)).fetchone()["n"]
                if known != len(ids):
                    raise StoreError(_NO_SUCH_DELIVERY)
                conn.executemany(q.FINISH_ONE_SQLITE, finishes)
                conn.execute(q.INSERT_ATTEMPTS_SQLITE, (attempts,))

        def one_statement(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(B.FINISH, (q.json_rows(finishes), attempts, D.id_list(ids)))
            except sqlite3.IntegrityError as exc:
                if B.MISSING_DELIVERY in str(exc):
                    raise StoreError(_NO_SUCH_DELIVERY) from None
                raise

        try:
            await self._run(one_statement if batched else work)
        except StoreError as exc:
            if not isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise
            # The same attempt written twice (a retried write): what is on record stays.
            attempt_ids = (D.id_list([r.attempt.id for r in results]),)
            recorded = await self._run(
                lambda c: {row["id"] for row in c.execute(q.recorded_attempts_sql(D), attempt_ids)}
            )
            rest = q.unrecorded(results, recorded)
            if len(rest) == len(results):
                raise
            await self.finish_many(rest)

    async def count_pending(self) -> int:
        row = await self._run(lambda c: c.execute(q.COUNT_PENDING).fetchone())
        return int(row["n"])

    async def next_due(self) -> datetime | None:
        row = await self._run(lambda c: c.execute(q.NEXT_DUE_SQLITE).fetchone())
        return D.dt(row["due"]) if row is not None else None

    async def finish_attempt(
        self,
        delivery_id: str,
        attempt: Attempt,
        *,
        status: DeliveryStatus,
        next_try_at: datetime | None,
        now: datetime,
    ) -> Delivery:
        finish = q.finish_params(D, delivery_id, attempt, status, next_try_at, now)
        attempt_row = q.attempt_params(D, attempt)

        def work(conn: sqlite3.Connection) -> sqlite3.Row:
            with _transaction(conn):
                # fetchall: a RETURNING statement must run to its end before COMMIT.
                rows: list[sqlite3.Row] = conn.execute(D.sql(q.FINISH_DELIVERY), finish).fetchall()
                if not rows:
                    # Already final (a worker that outlived its lease finished it): keep that
                    # outcome, record this attempt as what it was.
                    rows = conn.execute(D.sql(q.SELECT_DELIVERY), (delivery_id,)).fetchall()
                    if not rows:
                        raise q.missing_delivery(delivery_id)
                conn.execute(D.sql(q.INSERT_ATTEMPT), attempt_row)
            return rows[0]

        return q.row_to_delivery(D, await self._run(work))

    async def release(self, delivery_ids: Sequence[str], *, until: datetime | None = None) -> None:
        if delivery_ids:
            ids = D.id_list(delivery_ids)
            params = (ids, D.ts(until))
            await self._run(lambda c: c.execute(q.release_sql(D), params))

    async def requeue(self, delivery_id: str, now: datetime) -> Delivery | None:
        params = (delivery_id, D.ts(now))

        def work(conn: sqlite3.Connection) -> sqlite3.Row | None:
            with _transaction(conn):
                row: sqlite3.Row | None = conn.execute(D.sql(q.REQUEUE), params).fetchone()
            return row

        row = await self._run(work)
        return None if row is None else q.row_to_delivery(D, row)

    async def purge(
        self,
        now: datetime,
        keep_success: timedelta | None = None,
        keep_failed: timedelta = DEFAULT_KEEP_FAILED,
    ) -> int:
        text, args = q.purge_sql(D, now, keep_success, keep_failed)

        def batch(conn: sqlite3.Connection) -> int:
            with _transaction(conn):
                rows = conn.execute(text, args).fetchall()
                payload_ids = sorted({r["payload_id"] for r in rows})
                if payload_ids:
                    conn.execute(q.purge_payloads_sql(D), (D.id_list(payload_ids),))
            return len(rows)

        def key_batch(conn: sqlite3.Connection) -> int:
            with _transaction(conn):
                return conn.execute(D.sql(q.PURGE_IDEMPOTENCY_KEYS), (D.ts(now),)).rowcount

        # One short transaction per batch, then a pause as long as the batch (at most
        # PURGE_PAUSE): another process's writer waiting in its busy handler would otherwise
        # never find the lock free between back-to-back batches, and its claims would stall.
        deleted = 0
        while True:
            started = time.monotonic()
            count = await self._run(batch)
            deleted += count
            if count < q.PURGE_BATCH:
                break
            await asyncio.sleep(min(max(time.monotonic() - started, 0.01), q.PURGE_PAUSE))
        while await self._run(key_batch) >= q.PURGE_BATCH:
            pass
        return deleted

    # -- lifecycle ----------------------------------------------------------------------------
    async def aclose(self) -> None:
        async with self._open_lock:
            if self._closed:
                return
            self._closed = True
            conn, executor = self._conn, self._executor
            self._conn = self._executor = None
            if conn is not None and executor is not None:
                try:
                    await self._call(executor, conn.close)
                finally:
                    # The thread is idle by now: joining it takes no time worth a hop.
                    executor.shutdown(wait=True)

    # -- app installations (webhookkit.graphql) ---------------------------------------------
    async def put_installation(self, installation: AppInstallation) -> None:
        params = q.installation_params(D, installation)
        await self._run(lambda c: c.execute(D.sql(q.UPSERT_INSTALLATION), params))

    async def get_installation(self, installation_id: str) -> AppInstallation | None:
        row = await self._run(
            lambda c: c.execute(D.sql(q.SELECT_INSTALLATION), (installation_id,)).fetchone()
        )
        return q.row_to_installation(D, row) if row is not None else None

    async def list_installations(self) -> list[AppInstallation]:
        rows = await self._run(lambda c: c.execute(q.LIST_INSTALLATIONS).fetchall())
        return [q.row_to_installation(D, r) for r in rows]

    async def delete_installation(self, installation_id: str) -> bool:
        cursor = await self._run(
            lambda c: c.execute(D.sql(q.DELETE_INSTALLATION), (installation_id,))
        )
        return cursor.rowcount > 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._conn is not None else "new"
        return f"SQLiteStore(path={self.path!r}, {state})"

    # -- signing keys (webhookkit.keyring) -------------------------------------------
    async def load_keys(self) -> list[StoredKey]:
        rows = await self._run(lambda c: c.execute(q.LIST_SIGNING_KEYS).fetchall())
        return [q.row_to_stored_key(D, r) for r in rows]

    async def add_key(self, key: StoredKey, *, only_if_empty: bool) -> bool:
        params = q.stored_key_params(D, key)

        def work(conn: sqlite3.Connection) -> bool:
            # BEGIN IMMEDIATE: one writer at a time, so "empty" cannot change under us.
            with _transaction(conn):
                if only_if_empty and conn.execute(q.COUNT_SIGNING_KEYS).fetchone()["n"]:
                    return False
                if conn.execute(D.sql(q.INSERT_SIGNING_KEY), params).rowcount == 0:
                    return False
                conn.execute(q.BUMP_KEYS_VERSION).fetchall()
            return True

        return await self._run(work)

    async def update_key_state(
        self,
        kid: str,
        state: str,
        *,
        retire_at: datetime | None,
        now: datetime,
        retire_active_at: datetime | None = None,
    ) -> bool:
        at, until, previous_until = D.ts(now), D.ts(retire_at), D.ts(retire_active_at)

        def work(conn: sqlite3.Connection) -> bool:
            with _transaction(conn):
                if conn.execute(D.sql(q.SELECT_KEY_STATE), (kid,)).fetchone() is None:
                    return False
                if state == "active":
                    conn.execute(D.sql(q.RETIRE_ACTIVE_KEY), (kid, previous_until, at))
                conn.execute(D.sql(q.UPDATE_KEY_STATE), (kid, state, until, at))
                conn.execute(q.BUMP_KEYS_VERSION).fetchall()
            return True

        return await self._run(work)

    async def delete_key(self, kid: str) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            with _transaction(conn):
                if conn.execute(D.sql(q.DELETE_SIGNING_KEY), (kid,)).rowcount == 0:
                    return False
                conn.execute(q.BUMP_KEYS_VERSION).fetchall()
            return True

        return await self._run(work)

    async def keys_version(self) -> int:
        row = await self._run(lambda c: c.execute(q.SELECT_KEYS_VERSION).fetchone())
        return int(row["version"]) if row is not None else 0
