"""Time-partitioned deliveries and attempts on PostgreSQL: retention drops whole days.

``PostgresStore(dsn, partitioned=True)`` (or ``?partitioned=true`` in the store URL) creates a
new database with ``webhookkit_deliveries`` range-partitioned by ``created_at`` into one
partition per UTC day, and ``webhookkit_attempts`` partitioned the same way by the
``delivery_created_at`` it carries (its delivery's creation time), so an attempt lives in the
partition of the same day as its delivery. A ``DEFAULT`` partition of each table takes any row
no day partition covers, so an insert never fails for want of a partition.

- **Partitions ahead.** :meth:`~webhookkit.stores.PostgresStore.open` and every ``purge``
  create the partitions of today and the next :data:`AHEAD_DAYS` days that are missing.
- **Retention.** ``purge`` drops the pair of partitions of a past day once none of its
  deliveries is pending and every one is past its retention (checked by a query before, and
  again under the lock); then it deletes the remaining expired rows (successes after 24 h in
  days still live, rows of the default partition) in bounded batches as the unpartitioned store
  does. Payloads no delivery uses any more are deleted after the drop, through a small work
  table (``webhookkit_payload_sweep``), so a crash between the two never leaks one.
- **Locks.** Creating or dropping a partition takes PostgreSQL's ``ACCESS EXCLUSIVE`` lock on
  the parent table (and the default partition) for the few milliseconds of the catalog change;
  every such statement runs with ``lock_timeout`` = :data:`LOCK_TIMEOUT_MS`, so a claim never
  queues behind it for longer, and a drop that cannot get its lock is retried by the next purge.
  ``DETACH PARTITION ... CONCURRENTLY`` would avoid the lock but PostgreSQL refuses it on a
  table that has a default partition, and it cannot run in the transaction that re-checks the
  rows, so the drop is a plain ``DROP TABLE`` of a partition checked empty of live rows.

There is no foreign key from attempts to deliveries in this layout (one to a partitioned table
would make every partition drop scan the attempts for references under that lock): the attempt
insert takes ``delivery_created_at`` from its delivery and writes nothing when there is none
(``finish_attempt`` then reports the delivery missing, ``finish_many`` fails on NOT NULL), and
a purge deletes a delivery's attempts with it. What the foreign key also did, lock the
delivery against a concurrent delete, is not done (the finish statement updates that row
itself, and a lock taken after that update finds nothing): an attempt recorded by a worker in
the very instant its finished, expired delivery is purged stays behind, in that delivery's day,
until the day's partition is dropped (for good, if that day is the default partition's).

An existing unpartitioned database is never converted behind the operator's back: opening it
with ``partitioned=True`` raises :class:`~webhookkit.ConfigurationError` (``field=
"partitioned"``). :func:`convert_to_partitioned` converts one explicitly, copying every row in
one transaction (the tables are locked meanwhile: run it in a maintenance window, after a
purge). A store opened without the option on a partitioned database uses it as partitioned.
"""

# ruff: noqa: S608
# S608: every SQL text here is built from this module's constants and partition names it made
# itself (``webhookkit_deliveries_pYYYYMMDD``); values are bound as parameters.

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

from ..exceptions import ConfigurationError, StoreError
from . import _pg_sql as pq
from . import _sql as q

if TYPE_CHECKING:
    from .postgres import PostgresStore

__all__ = [
    "AHEAD_DAYS",
    "LOCK_TIMEOUT_MS",
    "URL_OPTION",
    "convert_to_partitioned",
    "create_partitions",
    "list_partitions",
]

log = logging.getLogger("webhookkit.stores")

DELIVERIES: Final = "webhookkit_deliveries"
ATTEMPTS: Final = "webhookkit_attempts"
SWEEP: Final = "webhookkit_payload_sweep"
#: The store URL's query parameter that turns the layout on (``?partitioned=true``).
URL_OPTION: Final = "partitioned"
#: Days after today whose partitions exist ahead of time (made on open and by every purge).
AHEAD_DAYS: Final = 3
#: The longest a partition's CREATE or DROP waits for its lock (claims waiting behind it wait
#: at most this long too) before it gives up until the next try.
LOCK_TIMEOUT_MS: Final = 50
#: Tries (with a short pause between) before a drop is left to the next purge.
DROP_TRIES: Final = 5
#: The longest a partition's CREATE may run: it scans the default partition, which holds only
#: rows outside every day partition and should stay small.
DDL_STATEMENT_TIMEOUT_MS: Final = 2000
#: How many recent days of existing rows get their own partition in a conversion; older rows
#: go to the default partition (where row deletion purges them).
CONVERT_DAYS: Final = 62
#: Serialises the creation of partitions by concurrently starting processes.
_PARTITION_LOCK: Final = 0x77686B5F707274  # "whk_prt"
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})
#: Unique indexes of the unpartitioned tables, rebuilt with the partition key added.
_KEYS: Final = {
    DELIVERIES: {f"{DELIVERIES}_pkey": "PRIMARY KEY (id, created_at)"},
    ATTEMPTS: {
        f"{ATTEMPTS}_pkey": "PRIMARY KEY (seq, delivery_created_at)",
        f"{ATTEMPTS}_id_key": "UNIQUE (id, delivery_created_at)",
    },
}

Connect = Callable[[str], AbstractAsyncContextManager[Any]]


# -- the store URL's option ---------------------------------------------------------------------


def split_url_option(dsn: str) -> tuple[str, bool | None]:
    """``dsn`` without its ``partitioned=`` query parameter (asyncpg would send an unknown
    one to the server as a setting), and that parameter's value (None if absent). Every other
    byte of the URL stays as it was."""
    base, sep, query = dsn.partition("?")
    if not sep:
        return dsn, None
    value: bool | None = None
    kept: list[str] = []
    for item in query.split("&"):
        key, _, raw = item.partition("=")
        if unquote(key) != URL_OPTION:
            kept.append(item)
            continue
        text = unquote(raw).strip().lower()
        if text not in _TRUE | _FALSE:
            raise ConfigurationError(
                f"store: the PostgreSQL URL's {URL_OPTION!r} parameter must be true or false",
                field="store",
            )
        value = text in _TRUE
    return (f"{base}?{'&'.join(kept)}" if kept else base), value


# -- names and days -------------------------------------------------------------------------------


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def days_ahead(now: datetime | None = None) -> tuple[date, date]:
    """The first and last day whose partitions should exist at ``now`` (default: the wall
    clock): today and :data:`AHEAD_DAYS` more."""
    today = day_of(now or datetime.now(UTC))
    return today, today + timedelta(days=AHEAD_DAYS)


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def layout_of(conn: Any) -> str | None:
    """``"partitioned"``, ``"plain"`` or None (no deliveries table yet)."""
    kind = await conn.fetchval(
        "SELECT c.relkind FROM pg_class AS c WHERE c.oid = to_regclass($1)", DELIVERIES
    )
    if kind is None:
        return None
    return "partitioned" if kind in ("p", b"p") else "plain"


async def _day_partitions(conn: Any, table: str) -> dict[date, str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass($1)",
        table,
    )
    pattern = re.compile(rf"^{table}_p(\d{{8}})$")
    found: dict[date, str] = {}
    for row in rows:
        match = pattern.match(row["relname"])
        if match is not None:
            found[datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC).date()] = row[
                "relname"
            ]
    return found


def _storage(table: str) -> str:
    """Room for the rows' new versions on delivery pages (migrations 12 and 13)."""
    return f" WITH (fillfactor = {q.DELIVERIES_FILLFACTOR})" if table == DELIVERIES else ""


def _create_day_sql(table: str, day: date) -> str:
    lower = _start(day).isoformat()
    upper = _start(day + timedelta(days=1)).isoformat()
    return (
        f"CREATE TABLE IF NOT EXISTS {_quote(partition_name(table, day))} PARTITION OF "
        f"{table} FOR VALUES FROM ('{lower}') TO ('{upper}'){_storage(table)}"
    )


# -- layout: creating and converting ---------------------------------------------------------


async def settle_layout(conn: Any, *, fresh: bool, requested: bool) -> bool:
    """In the migration's transaction: partition a database created just now if asked to,
    else report whether the database is partitioned. An unpartitioned database that holds
    data (or was made earlier) is refused with ``requested``, never converted."""
    layout = await layout_of(conn)
    if layout == "partitioned":
        return True
    if not requested:
        return False
    if not fresh:
        raise ConfigurationError(
            "partitioned: this database's deliveries table is not partitioned and is not "
            "converted on open; convert it explicitly with "
            "webhookkit.stores.partitions.convert_to_partitioned(dsn) (it copies every row "
            "under a lock) or open it without partitioned=True",
            field="partitioned",
        )
    await _partition_tables(conn, day_of(datetime.now(UTC)))
    return True


async def _unique_and_plain_indexes(conn: Any, table: str) -> tuple[list[str], list[str]]:
    rows = await conn.fetch(
        "SELECT i.relname AS name, pg_get_indexdef(i.oid) AS def, x.indisunique AS uniq "
        "FROM pg_index AS x JOIN pg_class AS i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = to_regclass($1) ORDER BY i.relname",
        table,
    )
    unique = [r["name"] for r in rows if r["uniq"]]
    unknown = sorted(set(unique) - set(_KEYS[table]))
    if unknown:
        raise StoreError(
            f"partitioned: {table} has unique indexes this webhookkit cannot partition "
            f"({', '.join(unknown)}); upgrade webhookkit"
        )
    return unique, [r["def"] for r in rows if not r["uniq"]]


async def _foreign_keys(conn: Any, table: str) -> list[tuple[str, str]]:
    """The table's foreign keys, except those to the deliveries (see the module's notes)."""
    rows = await conn.fetch(
        "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint "
        "WHERE conrelid = to_regclass($1) AND contype = 'f' AND confrelid <> to_regclass($2) "
        "ORDER BY conname",
        table,
        DELIVERIES,
    )
    return [(r["conname"], r["def"]) for r in rows]


async def _partition_tables(conn: Any, today: date) -> None:
    """Rebuild deliveries and attempts as partitioned tables holding the same rows (in the
    caller's transaction). Columns come from the tables as they are (``LIKE``), so every
    migration's columns follow; indexes are replayed from their definitions."""
    old = {t: f"{t}_unpartitioned" for t in (DELIVERIES, ATTEMPTS)}
    saved: dict[str, tuple[list[str], list[str], list[tuple[str, str]]]] = {}
    for table in (DELIVERIES, ATTEMPTS):
        unique, plain = await _unique_and_plain_indexes(conn, table)
        saved[table] = (unique, plain, await _foreign_keys(conn, table))
    for table in (DELIVERIES, ATTEMPTS):
        sequence = await conn.fetchval("SELECT pg_get_serial_sequence($1, 'seq')", table)
        await conn.execute(f"ALTER TABLE {table} RENAME TO {old[table]}")
        names = await conn.fetch(
            "SELECT i.relname FROM pg_index AS x JOIN pg_class AS i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = to_regclass($1)",
            old[table],
        )
        for row in names:
            name = row["relname"]
            await conn.execute(f"ALTER INDEX {_quote(name)} RENAME TO {_quote(name + '_old')}")
        if sequence is not None:
            await conn.execute(
                f"ALTER SEQUENCE {sequence} RENAME TO {_quote(f'{table}_seq_seq_old')}"
            )
    like = (
        "INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED INCLUDING CONSTRAINTS "
        "INCLUDING STORAGE INCLUDING COMMENTS"
    )
    await conn.execute(
        f"CREATE TABLE {DELIVERIES} (LIKE {old[DELIVERIES]} {like}) PARTITION BY RANGE (created_at)"
    )
    await conn.execute(
        f"CREATE TABLE {ATTEMPTS} (LIKE {old[ATTEMPTS]} {like}, "
        "delivery_created_at TIMESTAMPTZ NOT NULL) PARTITION BY RANGE (delivery_created_at)"
    )
    for table in (DELIVERIES, ATTEMPTS):
        unique, plain, foreign = saved[table]
        for name in unique:
            await conn.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT {_quote(name)} {_KEYS[table][name]}"
            )
        for definition in plain:
            await conn.execute(definition)
        for name, definition in foreign:
            await conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {_quote(name)} {definition}")
        await conn.execute(
            f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT{_storage(table)}"
        )
    since = _start(today - timedelta(days=CONVERT_DAYS))
    rows = await conn.fetch(
        f"SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date AS day FROM {old[DELIVERIES]} "
        "WHERE created_at >= $1",
        since,
    )
    days = {r["day"] for r in rows} | {today + timedelta(days=n) for n in range(AHEAD_DAYS + 1)}
    for day in sorted(days):
        for table in (DELIVERIES, ATTEMPTS):
            await conn.execute(_create_day_sql(table, day))
    await conn.execute(
        f"INSERT INTO {DELIVERIES} OVERRIDING SYSTEM VALUE SELECT * FROM {old[DELIVERIES]}"
    )
    await conn.execute(
        f"INSERT INTO {ATTEMPTS} OVERRIDING SYSTEM VALUE SELECT a.*, d.created_at "
        f"FROM {old[ATTEMPTS]} AS a JOIN {old[DELIVERIES]} AS d ON d.id = a.delivery_id"
    )
    for table in (DELIVERIES, ATTEMPTS):
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'seq'), "
            f"COALESCE(MAX(seq), 0) + 1, false) FROM {table}"
        )
    # After the copy: the rows copied are in the queue already (migration 13).
    await conn.execute(q.QUEUE_TRIGGER)
    await conn.execute(f"DROP TABLE {old[ATTEMPTS]}, {old[DELIVERIES]}")
    await conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {SWEEP} (
            partition_name TEXT NOT NULL,
            payload_id TEXT NOT NULL,
            PRIMARY KEY (partition_name, payload_id)
        )"""
    )


async def convert_to_partitioned(dsn: str) -> None:
    """Convert the unpartitioned webhookkit database at ``dsn`` to the partitioned layout.

    Migrates the schema first, then, in one transaction holding the migration lock, renames
    the deliveries and attempts tables, creates the partitioned ones (day partitions for the
    last :data:`CONVERT_DAYS` days with rows and the days ahead, older rows in the default
    partition), copies every row and drops the old tables. Claims and triggers of running
    processes wait for it (the tables are locked), so stop the workers or run it when the
    tables are small (after a purge). Converting a partitioned database does nothing.
    """
    from .postgres import _MIGRATION_LOCK, PostgresStore

    store = PostgresStore(dsn, min_size=0, max_size=1, listen=False, partitioned=False)
    try:
        await store.open()
        async with store._conn("convert_to_partitioned") as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            if await layout_of(conn) == "partitioned":
                return
            await _partition_tables(conn, day_of(datetime.now(UTC)))
    finally:
        await store.aclose()


# -- partitions ahead ---------------------------------------------------------------------------


def _lock_settings(statement_ms: int | None = None) -> str:
    text = f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'"
    if statement_ms is not None:
        text += f"; SET LOCAL statement_timeout = '{statement_ms}ms'"
    return text


async def ensure_partitions(conn: Any, first: date, last: date) -> list[str]:
    """Create the missing day partitions from ``first`` to ``last`` (both tables, one short
    transaction per day, bounded lock waits). A day whose rows already sit in the default
    partition, or whose lock is busy, is skipped (logged) and tried again next time."""
    from asyncpg import exceptions as pgx

    have = await _day_partitions(conn, DELIVERIES)
    have_attempts = await _day_partitions(conn, ATTEMPTS)
    made: list[str] = []
    day = first
    while day <= last:
        if day not in have or day not in have_attempts:
            try:
                async with conn.transaction():
                    await conn.execute(_lock_settings(DDL_STATEMENT_TIMEOUT_MS))
                    if not await conn.fetchval(
                        "SELECT pg_try_advisory_xact_lock($1)", _PARTITION_LOCK
                    ):
                        return made  # another process is creating them right now
                    for table in (DELIVERIES, ATTEMPTS):
                        await conn.execute(_create_day_sql(table, day))
                made.append(partition_name(DELIVERIES, day))
            except (pgx.LockNotAvailableError, pgx.QueryCanceledError) as exc:
                log.warning("webhookkit: partitions from %s not created yet: %s", day, exc)
                break  # busy: the next open or purge tries again
            except pgx.CheckViolationError:
                log.warning(
                    "webhookkit: partitions of %s not created: the default partition holds "
                    "rows of that day (they stay there and are purged row by row)",
                    day,
                )
        day += timedelta(days=1)
    return made


async def create_partitions(store: PostgresStore, first: date, last: date) -> list[str]:
    """Create the day partitions from ``first`` to ``last`` that are missing, on a
    partitioned store (the store makes today's and :data:`AHEAD_DAYS` more by itself);
    returns the names of the deliveries partitions made."""
    async with store._conn("create_partitions") as conn:
        if await layout_of(conn) != "partitioned":
            raise ConfigurationError(
                "partitioned: this database is not partitioned", field="partitioned"
            )
        return await ensure_partitions(conn, first, last)


async def list_partitions(store: PostgresStore) -> list[tuple[str, int]]:
    """Every partition of the deliveries table (day partitions oldest first, then the
    default) with its row count; for operators and tests."""
    async with store._conn("list_partitions") as conn:
        days = await _day_partitions(conn, DELIVERIES)
        names = [days[d] for d in sorted(days)] + [f"{DELIVERIES}_default"]
        result: list[tuple[str, int]] = []
        for name in names:
            if await conn.fetchval("SELECT to_regclass($1)", name) is not None:
                result.append((name, int(await conn.fetchval(f"SELECT count(*) FROM {name}"))))
        return result


# -- statements of the partitioned layout ----------------------------------------------------

_INSERT_ATTEMPT: Final = re.compile(
    r"INSERT INTO webhookkit_attempts \((?P<cols>[^)]*)\)\s*VALUES \((?P<values>[^)]*)\)"
)


def _attempt_insert(statement: str) -> tuple[re.Match[str], list[str], list[str]]:
    """The attempt insert of a one-attempt finish statement, its columns and its values."""
    match = _INSERT_ATTEMPT.search(statement)
    if match is None:
        raise StoreError(
            "the attempt insert of a finish statement has a shape webhookkit.stores."
            "partitions does not know"
        )
    cols = [c.strip() for c in match.group("cols").split(",")]
    return match, cols, [v.strip() for v in match.group("values").split(",")]


def _with_delivery_time(statement: str) -> str:
    """``statement`` with its attempt insert also writing ``delivery_created_at``, read from
    the delivery (in the statement's snapshot, before its own update of that row). No row (an
    unknown delivery) inserts nothing: the finish then reports it missing."""
    match, cols, values = _attempt_insert(statement)
    delivery = values[cols.index("delivery_id")]
    replacement = (
        f"INSERT INTO webhookkit_attempts ({', '.join(cols)}, delivery_created_at) "
        f"SELECT {', '.join(values)}, x.created_at "
        f"FROM webhookkit_deliveries AS x WHERE x.id = {delivery}"
    )
    return statement[: match.start()] + replacement + statement[match.end() :]


def _with_delivery_check(statement: str) -> str:
    """``statement`` with its attempt insert taking ``delivery_id`` from the delivery row: an
    unknown delivery gives NULL, which NOT NULL refuses (what a foreign key would do, for a
    primary-key lookup instead of a trigger per row)."""
    match, cols, values = _attempt_insert(statement)
    at = cols.index("delivery_id")
    values[at] = f"(SELECT x.id FROM webhookkit_deliveries AS x WHERE x.id = {values[at]})"
    replacement = f"INSERT INTO webhookkit_attempts ({', '.join(cols)}) SELECT {', '.join(values)}"
    return statement[: match.start()] + replacement + statement[match.end() :]


@cache
def checked_finish_attempt_sql() -> str:
    """:data:`~webhookkit.stores._pg_sql.FINISH_ATTEMPT` for the plain layout since
    migration 11 (no foreign key from attempts to deliveries)."""
    return _with_delivery_check(pq.FINISH_ATTEMPT)


def checked_finish_many_sql() -> str:
    """:data:`~webhookkit.stores._pg_sql.FINISH_MANY`: the plain layout's (it checks the
    delivery itself)."""
    return pq.FINISH_MANY


@cache
def finish_attempt_sql() -> str:
    """:data:`~webhookkit.stores._pg_sql.FINISH_ATTEMPT` for the partitioned layout."""
    return _with_delivery_time(pq.FINISH_ATTEMPT)


def finish_many_sql() -> str:
    """:data:`~webhookkit.stores._pg_sql.FINISH_MANY_PARTITIONED`."""
    return pq.FINISH_MANY_PARTITIONED


_PURGE_HEAD: Final = re.compile(r"DELETE FROM webhookkit_deliveries WHERE id IN \(")
_PURGE_PICK: Final = re.compile(
    r"(SELECT id FROM webhookkit_deliveries WHERE )(?P<cond>.*?)"
    r"(\s+(?:ORDER BY created_at, id\s+)?LIMIT )",
    re.DOTALL,
)
_PURGE_TAIL: Final = re.compile(r"RETURNING payload_id\s*$")


@cache
def plain_purge_sql(statement: str) -> str:
    """:func:`~webhookkit.stores._sql.purge_sql` for the plain PostgreSQL layout: the deleted
    deliveries' attempts go in the same statement (no cascading foreign key since migration
    11)."""
    if not _PURGE_HEAD.search(statement) or not _PURGE_TAIL.search(statement):
        raise StoreError(
            "the purge statement has a shape webhookkit.stores.partitions does not know"
        )
    body = _PURGE_HEAD.sub(
        "WITH gone AS (DELETE FROM webhookkit_deliveries WHERE id IN (", statement
    )
    return _PURGE_TAIL.sub(
        "RETURNING id, payload_id), "
        "gone_attempts AS (DELETE FROM webhookkit_attempts AS a USING gone "
        "WHERE a.delivery_id = gone.id) "
        "SELECT payload_id FROM gone",
        body,
    )


@cache
def purge_rows_sql(statement: str, skip: tuple[date, ...] = ()) -> str:
    """A batch of :func:`~webhookkit.stores._sql.purge_sql` for the partitioned layout: the
    deleted deliveries' attempts go in the same statement (no cascading foreign key), and the
    rows of the days in ``skip`` (whole days whose drop was postponed) are left alone."""
    pick = _PURGE_PICK.search(statement)
    if not _PURGE_HEAD.search(statement) or not _PURGE_TAIL.search(statement) or not pick:
        raise StoreError(
            "partitioned: the purge statement has a shape the partitioned layout does not know"
        )
    if skip:
        ranges = " OR ".join(
            f"(created_at >= '{_start(d).isoformat()}' "
            f"AND created_at < '{_start(d + timedelta(days=1)).isoformat()}')"
            for d in skip
        )
        statement = (
            statement[: pick.start()]
            + f"{pick.group(1)}({pick.group('cond')}) AND NOT ({ranges}){pick.group(3)}"
            + statement[pick.end() :]
        )
    body = _PURGE_HEAD.sub(
        "WITH gone AS (DELETE FROM webhookkit_deliveries WHERE id IN (", statement
    )
    return _PURGE_TAIL.sub(
        "RETURNING id, created_at, payload_id), "
        "gone_attempts AS (DELETE FROM webhookkit_attempts AS a USING gone "
        "WHERE a.delivery_id = gone.id AND a.delivery_created_at = gone.created_at) "
        "SELECT payload_id FROM gone",
        body,
    )


# -- retention: dropping partitions ------------------------------------------------------------


def _live_sql(partition: str, *, successes_expire_at_once: bool) -> str:
    """True if a row of ``partition`` is pending or not yet past its retention ($1: the
    failures' cutoff, $2: the successes'): exactly the rows ``purge_sql`` would keep."""
    young = "(updated_at >= ${0} OR (updated_at IS NULL AND created_at >= ${0}))"
    checks = [
        f"EXISTS (SELECT 1 FROM {partition} WHERE status = 'pending')",
        f"EXISTS (SELECT 1 FROM {partition} WHERE status = 'failed' AND {young.format(1)})",
    ]
    if not successes_expire_at_once:
        checks.append(
            f"EXISTS (SELECT 1 FROM {partition} WHERE status = 'success' AND {young.format(2)})"
        )
    return "SELECT " + " OR ".join(checks) + " AS live"


async def _is_live(conn: Any, partition: str, failed: datetime, success: datetime | None) -> bool:
    sql = _live_sql(partition, successes_expire_at_once=success is None)
    args = (failed,) if success is None else (failed, success)
    return bool(await conn.fetchval(sql, *args))


async def _drop_day(
    conn: Any,
    names: tuple[str, ...],
    failed: datetime,
    success: datetime | None,
) -> str:
    """Drop ``names`` (the deliveries partition first) if its rows are still all expired,
    under a bounded lock wait: ``"dropped"``, ``"live"`` (a row was requeued or written
    meanwhile), ``"gone"`` (another process dropped it) or ``"busy"`` (the lock stayed taken)."""
    from asyncpg import exceptions as pgx

    partition = names[0]
    for attempt in range(DROP_TRIES):
        try:
            async with conn.transaction():
                await conn.execute(_lock_settings())
                # The parents in the order a finish takes them (attempts, then deliveries):
                # nothing reads or writes either table until the commit, a few ms from now.
                await conn.execute(
                    f"LOCK TABLE ONLY {ATTEMPTS}, {DELIVERIES} IN ACCESS EXCLUSIVE MODE"
                )
                if await conn.fetchval("SELECT to_regclass($1)", partition) is None:
                    return "gone"  # another process dropped it
                if await _is_live(conn, partition, failed, success):
                    return "live"
                await conn.execute(f"DROP TABLE {', '.join(names)}")
            return "dropped"
        except pgx.LockNotAvailableError:
            await asyncio.sleep(0.05 * (attempt + 1))
    return "busy"


SWEEP_PAYLOADS: Final = f"""
    WITH taken AS (
        DELETE FROM {SWEEP} AS w WHERE (w.partition_name, w.payload_id) IN (
            SELECT partition_name, payload_id FROM {SWEEP}
            WHERE to_regclass(partition_name) IS NULL LIMIT {q.PURGE_BATCH})
        RETURNING w.payload_id
    ), unused AS (
        DELETE FROM webhookkit_payloads AS p USING (SELECT DISTINCT payload_id FROM taken) AS t
        WHERE p.id = t.payload_id
          AND NOT EXISTS (SELECT 1 FROM webhookkit_deliveries AS d WHERE d.payload_id = p.id)
    )
    SELECT count(*) AS n FROM taken"""


async def purge_days(
    connect: Connect,
    now: datetime,
    keep_success: timedelta | None,
    keep_failed: timedelta,
    rows_statement: str,
) -> tuple[int, str]:
    """The partition side of ``purge``: make the partitions ahead, drop every past day whose
    rows are all expired (oldest first), delete the payloads they alone used. Returns how many
    deliveries went with the dropped days, and ``rows_statement`` (a batch of
    :func:`~webhookkit.stores._sql.purge_sql`) made fit for the rest: attempts deleted with
    their deliveries, days whose drop was postponed (lock busy) left whole for the next purge.
    """
    failed = now - keep_failed
    success = None if keep_success is None else now - keep_success
    dropped = 0
    postponed: list[date] = []
    async with connect("purge") as conn:
        await ensure_partitions(conn, *days_ahead(now))
        days = await _day_partitions(conn, DELIVERIES)
        attempts = await _day_partitions(conn, ATTEMPTS)
        for day in sorted(days):
            if _start(day + timedelta(days=1)) > now:
                break  # today and ahead: still being written
            partition = days[day]
            if await _is_live(conn, partition, failed, success):
                continue
            if postponed:  # the lock is busy (a long transaction): try again next purge
                postponed.append(day)
                continue
            count = int(await conn.fetchval(f"SELECT count(*) FROM {partition}"))
            # Committed before the drop: the payloads to look at once the partition is gone.
            await conn.execute(
                f"INSERT INTO {SWEEP} (partition_name, payload_id) "
                f"SELECT DISTINCT $1::text, payload_id FROM {partition} ON CONFLICT DO NOTHING",
                partition,
            )
            names = (partition, attempts[day]) if day in attempts else (partition,)
            outcome = await _drop_day(conn, names, failed, success)
            if outcome == "dropped":
                dropped += count
                log.info(
                    "webhookkit: retention dropped partition %s (%d deliveries)", partition, count
                )
            elif outcome == "busy":
                postponed.append(day)
        if postponed:
            log.warning(
                "webhookkit: retention could not drop %d expired day partitions (from %s): "
                "their lock stayed busy (a long transaction on the deliveries?); the next "
                "purge tries again",
                len(postponed),
                postponed[0],
            )
        while True:
            taken = int(await conn.fetchval(SWEEP_PAYLOADS))
            if taken < q.PURGE_BATCH:
                break
    return dropped, purge_rows_sql(rows_statement, tuple(postponed))
