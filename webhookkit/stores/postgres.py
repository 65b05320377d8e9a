"""The store for many processes and machines: PostgreSQL through an asyncpg pool.

Workers claim due deliveries with ``SELECT ... FOR UPDATE SKIP LOCKED`` and a lease, so no two
get the same one and a crashed worker's deliveries come back when its lease runs out. Queuing
sends ``NOTIFY webhookkit_deliveries`` in the same transaction, which PostgreSQL delivers only
on commit; every store LISTENs on a connection of its own and wakes its waiters. The host can
queue through its own open connection (:meth:`PostgresStore.add_deliveries` with
``connection=``): the webhook then goes out if and only if the host's transaction commits.

asyncpg is imported when the store opens, so ``import webhookkit`` does not need it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any, Final

from .._secret import REDACTED, redact_url
from ..apps import App, AppToken, Webhook
from ..delivery.records import (
    Attempt,
    AttemptResult,
    ClaimedBatch,
    Delivery,
    DeliveryStatus,
    Payload,
)
from ..exceptions import ConfigurationError, StoreError
from ..installations import AppInstallation
from . import _pg_sql as pq
from . import _sql as q
from . import partitions as _partitions
from ._dsn import validate_dsn
from .base import DEFAULT_KEEP_FAILED, DeliveryQuery, IdempotencyKey, StoredKey

__all__ = ["CHANNEL", "PostgresStore"]

log = logging.getLogger("webhookkit.stores")

D = q.POSTGRES
#: Set in every claim's transaction; see :meth:`PostgresStore._claim`.
CLAIM_SETTINGS: Final = (
    "SET LOCAL enable_bitmapscan = off; SET LOCAL plan_cache_mode = force_custom_plan; "
    "SET LOCAL synchronous_commit = off"
)
_CLAIM_BEGIN: Final = f"BEGIN; {CLAIM_SETTINGS}"
#: Claims of unknown outcome remembered for release (older ones wait out their lease).
_UNKNOWN_CLAIMS_KEPT: Final = 64
#: The LISTEN/NOTIFY channel that announces newly queued or released deliveries.
CHANNEL: Final = "webhookkit_deliveries"
#: Announced by the configuration triggers (schema migration 6) on every app/webhook change.
CONFIG_CHANNEL: Final = "webhookkit_config"
#: Serialises schema migrations of concurrently starting processes.
_MIGRATION_LOCK: Final = 0x77686B5F736368  # "whk_sch"
_NOTIFY: Final = "SELECT pg_notify($1, $2)"


async def _no_reset(conn: Any) -> None:
    """asyncpg's pool ``reset`` hook: nothing to undo (see :meth:`PostgresStore.open`)."""


def _import_asyncpg() -> ModuleType:
    try:
        return importlib.import_module("asyncpg")
    except ImportError:
        raise ConfigurationError(
            "store: the PostgreSQL store needs asyncpg; pip install 'webhookkit[postgres]'",
            field="store",
        ) from None


class PostgresStore:
    """Apps, webhooks and deliveries in PostgreSQL; any number of workers may share it.

    ``dsn`` is a libpq URL (``postgresql://user:pass@host/db``); it never appears in reprs or
    errors with its password. The schema (tables prefixed ``webhookkit_``) is created and
    migrated by :meth:`open`, versioned in ``webhookkit_schema_migrations``.
    ``listen=False`` skips the LISTEN connection, for processes that only queue.
    ``partitioned=True`` (or ``?partitioned=true`` in ``dsn``) gives a new database daily
    partitions of deliveries and attempts, which retention drops whole
    (:mod:`webhookkit.stores.partitions`); a partitioned database is used as such either way.
    """

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        listen: bool = True,
        command_timeout: float | None = 60.0,
        partitioned: bool = False,
    ) -> None:
        validate_dsn(dsn)
        dsn, from_url = _partitions.split_url_option(dsn)
        if not isinstance(partitioned, bool):
            raise ConfigurationError("partitioned: expected True or False", field="partitioned")
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ConfigurationError(
                f"store: need 0 <= min_size ({min_size}) <= max_size ({max_size}), max_size >= 1",
                field="store",
            )
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._listen = listen
        self._command_timeout = command_timeout
        self._want_partitioned = partitioned or bool(from_url)
        #: Whether the open database is partitioned (known once open) and its statements.
        self.partitioned = False
        # No foreign key from attempts to deliveries (migration 11): the finish statements
        # look the delivery up themselves.
        self._finish_attempt_sql: str = _partitions.checked_finish_attempt_sql()
        self._finish_many_sql: str = _partitions.checked_finish_many_sql()
        self._pg: ModuleType | None = None
        self._pool: Any = None
        self._listener: Any = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._open_lock = asyncio.Lock()
        self._closed = False
        self._work = asyncio.Event()
        self._work_listeners: list[Callable[[], None]] = []
        #: See :class:`webhookkit._catalog.Catalog`: bumped on local writes, on NOTIFY from
        #: other processes and when polling finds the version row moved.
        self.config_generation = 0
        self._config_version: int | None = None
        #: (lease end, now) of claims that raised: see _claim.
        self._unknown_claims: list[tuple[datetime, datetime]] = []

    # -- plumbing -----------------------------------------------------------------------------
    async def open(self) -> None:
        async with self._open_lock:
            if self._closed:
                raise StoreError("store: used after aclose()")
            if self._pool is not None:
                return
            pg = self._pg = _import_asyncpg()
            async with self._errors("open"):
                pool = await pg.create_pool(
                    self._dsn,
                    min_size=self._min_size,
                    max_size=self._max_size,
                    command_timeout=self._command_timeout,
                    # No session state is ever left on a pooled connection (no LISTEN, no
                    # session locks, no SET), so skip asyncpg's reset query on each release.
                    reset=_no_reset,
                )
            try:
                async with self._errors("migrate"), pool.acquire() as conn:
                    if await _migrate(conn, partitioned=self._want_partitioned):
                        self._use_partitions()
                        await _partitions.ensure_partitions(conn, *_partitions.days_ahead())
                if self._listen:
                    await self._connect_listener()
                    await self._warm(pool)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool

    async def _warm(self, pool: Any) -> None:
        """Open the two connections a worker uses at once (a claim and a finish) and prepare
        the finish on each: its composite parameter type is looked up once per connection
        (several queries), which otherwise fell on the first finish after start (9 ms instead
        of 2-3). Only for stores that listen, that is, that run workers."""

        async def prepare(conn: Any) -> None:
            # A finish of nothing: prepared and cached as the real ones, writes no row.
            await conn.execute(self._finish_many_sql, [])

        async with self._errors("open"):
            held = [await pool.acquire() for _ in range(min(2, self._max_size))]
            try:
                await asyncio.gather(*(prepare(conn) for conn in held))
            finally:
                for conn in held:
                    await pool.release(conn)

    def _use_partitions(self) -> None:
        self.partitioned = True
        self._finish_attempt_sql = _partitions.finish_attempt_sql()
        self._finish_many_sql = _partitions.finish_many_sql()

    @contextlib.asynccontextmanager
    async def _errors(self, action: str) -> AsyncIterator[None]:
        """asyncpg's and the socket's errors as StoreError, with the DSN's password hidden."""
        pg = self._pg
        assert pg is not None
        try:
            yield
        except (
            pg.PostgresError,
            pg.InterfaceError,
            pg.InternalClientError,
            OSError,
            TimeoutError,
        ) as exc:
            text = str(exc).replace(self._dsn, _redact_dsn(self._dsn))
            raise StoreError(f"postgresql: {action}: {type(exc).__name__}: {text}") from exc

    @contextlib.asynccontextmanager
    async def _conn(self, action: str) -> AsyncIterator[Any]:
        """A pooled connection, opening the store on first use."""
        if self._pool is None:
            await self.open()
        if self._closed or self._pool is None:
            raise StoreError("store: used after aclose()")
        async with self._errors(action), self._pool.acquire() as conn:
            yield conn

    async def _fetch(self, action: str, sql: str, *args: Any) -> list[Any]:
        async with self._conn(action) as conn:
            return list(await conn.fetch(sql, *args))

    async def _fetchrow(self, action: str, sql: str, *args: Any) -> Any:
        async with self._conn(action) as conn:
            return await conn.fetchrow(sql, *args)

    async def _execute(self, action: str, sql: str, *args: Any) -> str:
        async with self._conn(action) as conn:
            return str(await conn.execute(sql, *args))

    # -- LISTEN / NOTIFY ----------------------------------------------------------------------
    async def _connect_listener(self) -> None:
        pg = self._pg
        assert pg is not None
        async with self._errors("listen"):
            conn = await pg.connect(self._dsn)
            try:
                await conn.add_listener(CHANNEL, self._on_notify)
                await conn.add_listener(CONFIG_CHANNEL, self._on_config_notify)
            except BaseException:
                await conn.close()
                raise
        conn.add_termination_listener(self._on_listener_lost)
        self._listener = conn

    def _on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        self._wake()

    def _on_config_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        self.config_generation += 1

    def _wake(self) -> None:
        self._work.set()
        for callback in list(self._work_listeners):
            try:
                callback()
            except Exception:
                log.exception("webhookkit: work listener raised")

    def _on_listener_lost(self, conn: object) -> None:
        if self._closed or conn is not self._listener:
            return
        self._listener = None
        self.config_generation += 1  # changes may have been missed too
        terminate = getattr(conn, "terminate", None)
        if callable(terminate):
            terminate()  # release the dead connection's socket now, not at garbage collection
        # Notifications may have been missed: let waiters look at the table themselves.
        self._wake()
        self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.1
        while not self._closed:
            try:
                await self._connect_listener()
            except StoreError as exc:
                log.warning("webhookkit: LISTEN connection lost, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            else:
                self._wake()
                return

    def add_work_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` in the event loop whenever deliveries were queued or released
        by any process (and when the LISTEN connection was lost, as a cue to poll)."""
        self._work_listeners.append(callback)

    def remove_work_listener(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._work_listeners.remove(callback)

    async def wait_for_work(self, timeout: float | None) -> bool:
        """Wait for a notification of new work; True if one came (since the last call), False
        after ``timeout`` seconds. Meant for one waiting loop per store."""
        if self._pool is None:
            await self.open()
        if not self._work.is_set():
            try:
                async with asyncio.timeout(timeout):
                    await self._work.wait()
            except TimeoutError:
                return False
        self._work.clear()
        return True

    # -- configuration ------------------------------------------------------------------------
    async def put_app(self, app: App) -> None:
        await self._execute("put_app", q.UPSERT_APP, *q.app_params(D, app))
        self.config_generation += 1

    async def get_app(self, app_id: str) -> App | None:
        row = await self._fetchrow("get_app", q.SELECT_APP, app_id)
        return q.row_to_app(D, row) if row is not None else None

    async def list_apps(self) -> list[App]:
        return [q.row_to_app(D, r) for r in await self._fetch("list_apps", q.LIST_APPS)]

    async def delete_app(self, app_id: str) -> None:
        async with self._conn("delete_app") as conn, conn.transaction():
            for statement in q.DELETE_APP:
                await conn.execute(statement, app_id)
        self.config_generation += 1

    async def put_token(self, token: AppToken) -> None:
        try:
            await self._execute("put_token", q.UPSERT_TOKEN, *q.token_params(D, token))
        except StoreError as exc:
            pg = self._pg
            if pg is not None and isinstance(exc.__cause__, pg.UniqueViolationError):
                raise StoreError(q.DUPLICATE_TOKEN) from exc.__cause__
            raise

    async def find_token(self, token_hash: str) -> AppToken | None:
        row = await self._fetchrow("find_token", q.FIND_TOKEN, token_hash)
        return q.row_to_token(D, row) if row is not None else None

    async def list_tokens(self, app_id: str) -> list[AppToken]:
        rows = await self._fetch("list_tokens", q.LIST_TOKENS, app_id)
        return [q.row_to_token(D, r) for r in rows]

    async def delete_token(self, token_id: str) -> bool:
        return _count(await self._execute("delete_token", q.DELETE_TOKEN, token_id)) > 0

    async def put_webhook(self, webhook: Webhook) -> None:
        await self._execute("put_webhook", q.UPSERT_WEBHOOK, *q.webhook_params(D, webhook))
        self.config_generation += 1

    async def get_webhook(self, webhook_id: str) -> Webhook | None:
        row = await self._fetchrow("get_webhook", q.SELECT_WEBHOOK, webhook_id)
        return q.row_to_webhook(D, row) if row is not None else None

    async def list_webhooks(self, app_id: str | None = None) -> list[Webhook]:
        if app_id is None:
            rows = await self._fetch("list_webhooks", q.LIST_WEBHOOKS)
        else:
            rows = await self._fetch("list_webhooks", q.LIST_APP_WEBHOOKS, app_id)
        return [q.row_to_webhook(D, r) for r in rows]

    async def delete_webhook(self, webhook_id: str) -> bool:
        deleted = _count(await self._execute("delete_webhook", q.DELETE_WEBHOOK, webhook_id)) > 0
        self.config_generation += 1
        return deleted

    async def mark_failing(self, webhook_id: str, now: datetime) -> datetime:
        async with self._conn("mark_failing") as conn, conn.transaction():
            await conn.execute(q.MARK_FAILING, webhook_id, D.ts(now))
            since = D.dt(await conn.fetchval(q.SELECT_FAILING, webhook_id))
        assert since is not None
        return since

    async def clear_failing(self, webhook_id: str) -> None:
        await self._execute("clear_failing", q.CLEAR_FAILING, webhook_id)

    async def poll_config(self) -> None:
        row = await self._fetchrow("poll_config", q.SELECT_CONFIG_VERSION)
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
        """Write payloads and deliveries in one transaction and NOTIFY the workers.

        With ``connection`` (the host's open asyncpg, psycopg 3, SQLAlchemy or Django
        connection: see :mod:`webhookkit.stores._outbox`) the rows are written through it,
        inside the host's transaction if one is open (as a savepoint): they become visible,
        and the workers are notified, only when the host commits; a rollback leaves no trace.

        ``idempotency_key``: see :meth:`webhookkit.stores.Store.add_deliveries`. The key row
        goes first in the same transaction; a concurrent writer of the same key waits on the
        unique index until this one commits (then it returns these ids) or rolls back (then
        it writes its own).
        """
        if connection is not None:
            from ._outbox import awrite_outbox

            if self._pool is None:
                await self.open()  # the schema must exist before the host writes into it
            return await awrite_outbox(
                connection, D, payloads, deliveries, idempotency_key=idempotency_key
            )
        key_row = None if idempotency_key is None else q.idempotency_key_params(D, idempotency_key)
        async with self._conn("add_deliveries") as conn:
            return await self._write_deliveries(conn, payloads, deliveries, key_row)

    async def find_idempotency_key(self, key: str, now: datetime) -> list[str] | None:
        row = await self._fetchrow("find_idempotency_key", q.FIND_IDEMPOTENCY_KEY, key, D.ts(now))
        return None if row is None else q.delivery_ids_of(row["delivery_ids"])

    async def _write_deliveries(
        self,
        conn: Any,
        payloads: Sequence[Payload],
        deliveries: Sequence[Delivery],
        key_row: tuple[Any, ...] | None = None,
    ) -> list[str] | None:
        pg = self._pg
        assert pg is not None
        payload_rows = [q.payload_params(D, p) for p in payloads]
        try:
            if key_row is None and deliveries:
                # The common trigger: one statement instead of BEGIN, two inserts, NOTIFY and
                # COMMIT (five round trips, and the deliveries' executions one row at a time).
                await conn.fetchval(
                    q.INSERT_TRIGGER_POSTGRES,
                    *q.columns(payload_rows, 4),
                    *q.delivery_columns(D, deliveries),
                    CHANNEL,
                    str(len(deliveries)),
                )
                return None
            delivery_rows = [q.delivery_params(D, d) for d in deliveries]
            async with conn.transaction():
                if (
                    key_row is not None
                    and await conn.fetchrow(q.CLAIM_IDEMPOTENCY_KEY, *key_row) is None
                ):
                    # READ COMMITTED: this statement sees the winner's committed row.
                    held = await conn.fetchrow(q.SELECT_IDEMPOTENCY_KEY, key_row[0])
                    if held is None:
                        raise StoreError(q.KEY_VANISHED)
                    return q.delivery_ids_of(held["delivery_ids"])
                if payload_rows:
                    await conn.executemany(q.INSERT_PAYLOAD, payload_rows)
                if delivery_rows:
                    await conn.executemany(q.INSERT_DELIVERY, delivery_rows)
                    await conn.execute(_NOTIFY, CHANNEL, str(len(delivery_rows)))
        except pg.ForeignKeyViolationError as exc:
            raise StoreError(q.MISSING_PAYLOAD) from exc
        return None

    async def get_payload(self, payload_id: str) -> Payload | None:
        row = await self._fetchrow("get_payload", q.SELECT_PAYLOAD, payload_id)
        return q.row_to_payload(D, row) if row is not None else None

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        row = await self._fetchrow("get_delivery", pq.SELECT_DELIVERY, delivery_id)
        return q.row_to_delivery(D, row) if row is not None else None

    async def list_deliveries(self, query: DeliveryQuery | None = None) -> list[Delivery]:
        query = query or DeliveryQuery()
        if query.status == DeliveryStatus.PENDING:  # str values are accepted too
            text, args = pq.list_pending_sql(query)
        else:
            text, args = q.list_deliveries_sql(D, query)
            text = pq.with_queue_state(text, "ORDER BY d.created_at, d.id")
        return [q.row_to_delivery(D, r) for r in await self._fetch("list_deliveries", text, *args)]

    async def list_attempts(self, delivery_id: str) -> list[Attempt]:
        rows = await self._fetch("list_attempts", q.LIST_ATTEMPTS, delivery_id)
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
        rows = await self._claim(
            "claim_due",
            pq.CLAIM_DUE,
            D.ts(now),
            limit,
            D.ts(now + lease),
            D.id_list(sorted(exclude_webhooks)),
        )
        rows.sort(key=lambda r: (r["claimed_due"], r["id"]))
        return [pq.claimed_delivery(r) for r in rows]

    async def _claim(
        self, action: str, sql: str, now: datetime, limit: int, lease_end: datetime, *rest: Any
    ) -> list[Any]:
        """Run a claim statement in its own transaction, planned for the table as it is.

        A queue table's statistics are nearly always stale (a backlog builds within seconds,
        autovacuum analyzes within minutes): with few rows expected the planner reads and
        sorts every due row by bitmap scan; the ordered due index stops after the batch. And
        a prepared statement switches to a generic plan after five runs and keeps it for the
        connection's life: made while the table was small (a new deployment, the first
        seconds of a backlog), that plan updated the claimed rows through a sequential scan
        of the whole table, at every claim from then on (100 ms per claim at 11,000 rows,
        seen in `make bench`). So each claim is planned anew (about 0.7 ms).
        A claim's commit does not wait for its WAL flush (``synchronous_commit = off``): a
        lease lost in a server crash only makes its delivery claimable again (sent again,
        at-least-once, as after a worker's crash), and the next finish, which does wait,
        flushes the claim's WAL with its own. That halves the claim's commit (1.3 -> 0.7 ms
        in the queue drain). The settings last for the transaction only.
        """
        await self._release_unknown_claims()
        try:
            return await self._run_claim(action, sql, now, limit, lease_end, *rest)
        except BaseException:
            # Perhaps committed with its answer lost (the connection dropped at COMMIT): its
            # rows would wait out their lease, unsent. Released before the next claim, so
            # no later claim of this store can share the lease end; a no-op if nothing
            # committed.
            self._unknown_claims.append((lease_end, now))
            del self._unknown_claims[:-_UNKNOWN_CLAIMS_KEPT]
            raise

    async def _run_claim(self, action: str, sql: str, *args: Any) -> list[Any]:
        async with self._conn(action) as conn:
            # BEGIN and the settings in one round trip (asyncpg's transaction() sends its
            # BEGIN alone); rolled back here on any error, else by the pool on release.
            await conn.execute(_CLAIM_BEGIN)
            try:
                rows = await conn.fetch(sql, *args)
            except BaseException:
                if not conn.is_closed() and conn.is_in_transaction():
                    with contextlib.suppress(Exception):
                        await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")
            return list(rows)

    async def _release_unknown_claims(self) -> None:
        """Hand back what claims of unknown outcome leased; raises (and keeps them) while the
        store fails, so no claim runs before they are released."""
        if not self._unknown_claims:
            return
        pending = list(self._unknown_claims)
        await self._execute(
            "claim (releasing a claim of unknown outcome)",
            pq.RELEASE_UNKNOWN_CLAIMS,
            [lease_end for lease_end, _ in pending],
            max(now for _, now in pending),
        )
        del self._unknown_claims[: len(pending)]

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
        rows = await self._claim(
            "claim_batch",
            pq.CLAIM_BATCH,
            D.ts(now),
            limit,
            D.ts(now + lease),
            D.id_list(sorted(exclude_webhooks)),
            limit * 4,
            per_webhook if per_webhook is not None else limit,
        )
        deliveries = [pq.claimed_delivery(r) for r in rows]
        payloads = {
            r["payload_id"]: q.row_to_claimed_payload(D, r) for r in rows if r["body"] is not None
        }
        return ClaimedBatch(deliveries, payloads)

    async def finish_many(self, results: Sequence[AttemptResult]) -> None:
        if not results:
            return
        try:
            await self._execute("finish_many", self._finish_many_sql, q.finished_rows(results))
        except StoreError as exc:
            pg = self._pg
            # NOT NULL: the partitioned layout's attempt found no delivery to take its day from.
            if pg is not None and _no_such_delivery(pg, exc.__cause__):
                raise StoreError("finish_many: a delivery does not exist") from exc.__cause__
            if pg is None or not isinstance(exc.__cause__, pg.UniqueViolationError):
                raise
            # A write sent again after its answer was lost (the connection dropped as it
            # committed): what is on record stays as it is, the rest is written.
            rest = q.unrecorded(results, await self._recorded_attempts(results))
            if len(rest) == len(results):
                raise
            await self.finish_many(rest)

    async def _recorded_attempts(self, results: Sequence[AttemptResult]) -> set[str]:
        ids = D.id_list([r.attempt.id for r in results])
        rows = await self._fetch("finish_many", q.recorded_attempts_sql(D), ids)
        return {r["id"] for r in rows}

    async def count_pending(self) -> int:
        row = await self._fetchrow("count_pending", pq.COUNT_PENDING)
        return int(row["n"])

    async def next_due(self) -> datetime | None:
        row = await self._fetchrow("next_due", pq.NEXT_DUE)
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
        try:
            row = await self._fetchrow(
                "finish_attempt", self._finish_attempt_sql, *finish, *attempt_row
            )
        except StoreError as exc:
            pg = self._pg
            if pg is not None and _no_such_delivery(pg, exc.__cause__):
                raise q.missing_delivery(delivery_id) from None
            raise
        if row is None:
            # Already final (a worker that outlived its lease finished it): the attempt is on
            # record, the earlier outcome stands.
            row = await self._fetchrow("finish_attempt", pq.SELECT_DELIVERY, delivery_id)
            if row is None:
                raise q.missing_delivery(delivery_id)
        return q.row_to_delivery(D, row)

    async def release(self, delivery_ids: Sequence[str], *, until: datetime | None = None) -> None:
        if not delivery_ids:
            return
        async with self._conn("release") as conn, conn.transaction():
            await conn.execute(pq.RELEASE, D.id_list(delivery_ids), D.ts(until))
            await conn.execute(_NOTIFY, CHANNEL, str(len(delivery_ids)))

    async def requeue(self, delivery_id: str, now: datetime) -> Delivery | None:
        async with self._conn("requeue") as conn, conn.transaction():
            row = await conn.fetchrow(pq.REQUEUE, delivery_id, D.ts(now))
            if row is not None:
                await conn.execute(_NOTIFY, CHANNEL, "1")
        return None if row is None else q.row_to_delivery(D, row)

    async def purge(
        self,
        now: datetime,
        keep_success: timedelta | None = None,
        keep_failed: timedelta = DEFAULT_KEEP_FAILED,
    ) -> int:
        text, args = q.purge_sql(D, now, keep_success, keep_failed)
        payloads_sql = q.purge_payloads_sql(D)
        deleted = 0
        if self.partitioned:  # whole days first, then the rows of days still live
            deleted, text = await _partitions.purge_days(
                self._conn, now, keep_success, keep_failed, text
            )
        else:
            text = _partitions.plain_purge_sql(text)
        while True:
            # One transaction per batch: a long purge never holds many row locks at once.
            async with self._conn("purge") as conn, conn.transaction():
                rows = await conn.fetch(text, *args)
                payload_ids = sorted({r["payload_id"] for r in rows})
                if payload_ids:
                    await conn.execute(payloads_sql, payload_ids)
            deleted += len(rows)
            if len(rows) < q.PURGE_BATCH:
                break
        while True:
            status = await self._execute("purge", q.PURGE_IDEMPOTENCY_KEYS, D.ts(now))
            if _count(status) < q.PURGE_BATCH:
                return deleted

    # -- lifecycle ----------------------------------------------------------------------------
    async def aclose(self) -> None:
        async with self._open_lock:
            if self._closed:
                return
            if self._unknown_claims and self._pool is not None:
                with contextlib.suppress(Exception):  # TimeoutError included
                    await asyncio.wait_for(self._release_unknown_claims(), 5.0)
            self._closed = True
            task, self._reconnect_task = self._reconnect_task, None
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            listener, self._listener = self._listener, None
            pool, self._pool = self._pool, None
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close()
            if pool is not None:
                await pool.close()
            # Wake anyone in wait_for_work so they notice the store is gone.
            self._work.set()

    # -- app installations (webhookkit.graphql) ---------------------------------------------
    async def put_installation(self, installation: AppInstallation) -> None:
        await self._execute(
            "put_installation", q.UPSERT_INSTALLATION, *q.installation_params(D, installation)
        )

    async def get_installation(self, installation_id: str) -> AppInstallation | None:
        row = await self._fetchrow("get_installation", q.SELECT_INSTALLATION, installation_id)
        return q.row_to_installation(D, row) if row is not None else None

    async def list_installations(self) -> list[AppInstallation]:
        rows = await self._fetch("list_installations", q.LIST_INSTALLATIONS)
        return [q.row_to_installation(D, r) for r in rows]

    async def delete_installation(self, installation_id: str) -> bool:
        status = await self._execute("delete_installation", q.DELETE_INSTALLATION, installation_id)
        return _count(status) > 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._pool is not None else "new"
        return f"PostgresStore(dsn={_redact_dsn(self._dsn)!r}, {state})"

    # -- signing keys (webhookkit.keyring) -------------------------------------------
    async def load_keys(self) -> list[StoredKey]:
        rows = await self._fetch("load_keys", q.LIST_SIGNING_KEYS)
        return [q.row_to_stored_key(D, r) for r in rows]

    async def _keys_changed(self, conn: Any) -> None:
        # In the writer's transaction: other processes hear of it only on commit.
        version = await conn.fetchval(q.BUMP_KEYS_VERSION)
        await conn.execute(_NOTIFY, q.KEYS_CHANNEL, str(version))

    async def add_key(self, key: StoredKey, *, only_if_empty: bool) -> bool:
        params = q.stored_key_params(D, key)
        async with self._conn("add_key") as conn, conn.transaction():
            if only_if_empty and await conn.fetchval(q.COUNT_SIGNING_KEYS):
                return False
            # Two processes may both have seen an empty table: the unique index on the
            # active row lets one insert and turns the other's insert into nothing.
            if _count(await conn.execute(q.INSERT_SIGNING_KEY, *params)) == 0:
                return False
            await self._keys_changed(conn)
        return True

    async def update_key_state(
        self,
        kid: str,
        state: str,
        *,
        retire_at: datetime | None,
        now: datetime,
        retire_active_at: datetime | None = None,
    ) -> bool:
        async with self._conn("update_key_state") as conn, conn.transaction():
            if await conn.fetchval(q.SELECT_KEY_STATE, kid) is None:
                return False
            if state == "active":
                await conn.execute(q.RETIRE_ACTIVE_KEY, kid, retire_active_at, now)
            await conn.execute(q.UPDATE_KEY_STATE, kid, state, retire_at, now)
            await self._keys_changed(conn)
        return True

    async def delete_key(self, kid: str) -> bool:
        async with self._conn("delete_key") as conn, conn.transaction():
            if _count(await conn.execute(q.DELETE_SIGNING_KEY, kid)) == 0:
                return False
            await self._keys_changed(conn)
        return True

    async def keys_version(self) -> int:
        row = await self._fetchrow("keys_version", q.SELECT_KEYS_VERSION)
        return int(row["version"]) if row is not None else 0

    async def add_keys_listener(self, callback: Callable[[], None]) -> bool:
        """Call ``callback()`` on ``NOTIFY webhookkit_keys`` (a key change committed by any
        process), through the LISTEN connection. False without one (``listen=False``); after
        that connection is lost and reconnected, key notifications stop and the caller's
        polling is what remains."""
        if self._pool is None:
            await self.open()
        listeners: list[Callable[[], None]] | None = getattr(self, "_keys_listeners", None)
        if listeners is None:
            listeners = []
            self._keys_listeners = listeners
        listener = self._listener
        if listener is None:
            return False
        if not listeners:
            async with self._errors("listen"):
                await listener.add_listener(q.KEYS_CHANNEL, self._on_keys_notify)
        listeners.append(callback)
        return True

    def remove_keys_listener(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError, AttributeError):
            self._keys_listeners.remove(callback)

    def _on_keys_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        for callback in list(getattr(self, "_keys_listeners", ())):
            try:
                callback()
            except Exception:
                log.exception("webhookkit: keys listener raised")


async def _migrate(conn: Any, *, partitioned: bool = False) -> bool:
    """Create or upgrade the schema; an advisory lock lets many processes start at once.
    True if the database is partitioned (a new one is, with ``partitioned``)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(D.ddl(q.CREATE_MIGRATIONS_TABLE))
        current = await conn.fetchval(q.SELECT_SCHEMA_VERSION)
        for migration in q.pending_migrations(int(current)):
            for statement in migration.for_dialect(D):
                await conn.execute(statement)
            await conn.execute(
                q.INSERT_MIGRATION, migration.version, migration.description, datetime.now(UTC)
            )
        return await _partitions.settle_layout(conn, fresh=current == 0, requested=partitioned)


def _no_such_delivery(pg: ModuleType, exc: BaseException | None) -> bool:
    """Whether a finish statement failed because an attempt names no stored delivery: the
    attempt's ``delivery_id`` (plain layout) or ``delivery_created_at`` (partitioned) came
    back NULL from the delivery lookup, or a foreign key of an older schema refused it."""
    if isinstance(exc, pg.ForeignKeyViolationError):
        return True
    return isinstance(exc, pg.NotNullViolationError) and getattr(exc, "column_name", None) in (
        "delivery_id",
        "delivery_created_at",
    )


def _redact_dsn(dsn: str) -> str:
    """``dsn`` with its user info and any ``password=`` parameter hidden."""
    return re.sub(r"(?i)(password=)[^&\s]*", rf"\g<1>{REDACTED}", redact_url(dsn))


def _count(status: str) -> int:
    """Rows affected, from a command tag such as ``DELETE 1``."""
    return int(status.rsplit(" ", 1)[-1])
