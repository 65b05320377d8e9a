"""What the SQL stores share: the versioned schema, the query texts and row <-> record mapping.

Queries are written once with PostgreSQL's ``$1`` placeholders; :meth:`Dialect.sql` turns them
into SQLite's numbered ``?1`` form. Timestamps are ``TIMESTAMPTZ`` in PostgreSQL and integer
microseconds since the epoch in SQLite, so both order and compare them exactly.
"""

# ruff: noqa: S608, S105
# S608: every SQL text here is assembled from this module's own constants and generated
# placeholders; values are always bound as parameters. S105: "token" column names, no secrets.

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Final, Protocol

from .._secret import Secret
from ..apps import App, AppToken, Webhook
from ..config import RateLimit, Timeouts
from ..delivery.records import (
    Attempt,
    AttemptResult,
    AttemptStatus,
    Delivery,
    DeliveryStatus,
    Payload,
)
from ..exceptions import StoreError
from ..filters import filter_from_json
from ..installations import AppInstallation, InstallationStatus
from .base import DeliveryQuery, IdempotencyKey, StoredKey

__all__ = ["MIGRATIONS", "POSTGRES", "SCHEMA_VERSION", "SQLITE", "Dialect", "Migration", "Row"]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
#: Deliveries deleted per statement by ``purge``, so a large purge never holds long locks.
PURGE_BATCH: Final = 1000


class Row(Protocol):
    """A result row addressed by column name: ``sqlite3.Row`` and ``asyncpg.Record`` both are."""

    def __getitem__(self, key: str, /) -> Any: ...


@cache
def _numbered_qmarks(text: str) -> str:
    return re.sub(r"\$(\d+)", r"?\1", text)


@dataclass(frozen=True, slots=True)
class Dialect:
    """The few ways SQLite and PostgreSQL differ for this schema."""

    name: str
    types: dict[str, str]
    native_time: bool

    def sql(self, text: str) -> str:
        """``text`` with placeholders in this dialect's style."""
        return text if self.name == "postgresql" else _numbered_qmarks(text)

    def ddl(self, template: str) -> str:
        return template.format(**self.types)

    def ts(self, value: datetime | None) -> Any:
        """A datetime as a query parameter; naive datetimes are refused, not guessed."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise StoreError(f"store: datetime {value.isoformat()} must be timezone-aware")
        if self.native_time:
            return value
        return (value - EPOCH) // _MICROSECOND

    def dt(self, value: Any) -> datetime | None:
        """A column value back to an aware UTC datetime."""
        if value is None:
            return None
        if isinstance(value, datetime):
            # asyncpg hands back UTC already: skip the conversion on every claimed row.
            return value if value.tzinfo is UTC else value.astimezone(UTC)
        return EPOCH + timedelta(microseconds=int(value))

    def id_list(self, ids: Sequence[str]) -> Any:
        """``ids`` as the parameter :meth:`in_ids` expects."""
        return list(ids) if self.name == "postgresql" else json.dumps(list(ids))

    def in_ids(self, column: str, param: str) -> str:
        """``column`` is one of the ids in the list parameter ``param`` (``$n``)."""
        if self.name == "postgresql":
            return f"{column} = ANY({param}::text[])"
        return f"{column} IN (SELECT value FROM json_each({param}))"


SQLITE: Final = Dialect(
    name="sqlite",
    types={
        "ts": "INTEGER",
        "blob": "BLOB",
        "json": "TEXT",
        "bool": "INTEGER",
        "real": "REAL",
        "serial_pk": "INTEGER PRIMARY KEY",
        "false": "0",
        # Trigger order comes from SQLite's own rowid (ever-growing among live rows).
        "seq": "INTEGER",
        "seq_col": "rowid",
    },
    native_time=False,
)
POSTGRES: Final = Dialect(
    name="postgresql",
    types={
        "ts": "TIMESTAMPTZ",
        "blob": "BYTEA",
        "json": "JSONB",
        "bool": "BOOLEAN",
        "real": "DOUBLE PRECISION",
        "serial_pk": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "false": "FALSE",
        "seq": "BIGINT GENERATED ALWAYS AS IDENTITY",
        "seq_col": "seq",
    },
    native_time=True,
)


# -- schema -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step; ``statements`` are DDL templates with ``{ts}``, ``{json}``... types."""

    version: int
    description: str
    statements: tuple[str, ...]
    #: Statements for one dialect only (triggers differ), run after ``statements``.
    sqlite: tuple[str, ...] = ()
    postgres: tuple[str, ...] = ()

    def for_dialect(self, dialect: Dialect) -> tuple[str, ...]:
        extra = self.sqlite if dialect.name == "sqlite" else self.postgres
        return tuple(dialect.ddl(s) for s in self.statements) + extra


#: PostgreSQL: how full new pages of the deliveries table are written, in percent. The rest
#: takes each row's finished version (migrations 12 and 13); the table is about twice as large.
DELIVERIES_FILLFACTOR: Final = 50

#: PostgreSQL (migration 13): one row per pending delivery, its scheduling state.
QUEUE_TABLE: Final = "webhookkit_queue"
#: How full new queue pages are written, in percent: room for the claimed row versions.
QUEUE_FILLFACTOR: Final = 50
#: The queue rows of the pending deliveries in ``{source}`` (a table or transition table).
QUEUE_FROM: Final = f"""INSERT INTO {QUEUE_TABLE}
                    (id, created_at, due_at, lease_until, webhook_id, ordering_key, seq)
                SELECT id, created_at, COALESCE(due_at, next_try_at, created_at), lease_until,
                    webhook_id, ordering_key, seq
                FROM {{source}} WHERE status = 'pending'"""
#: Statement-level, so a trigger's many deliveries cost one call; re-made on a partitioned
#: deliveries table by :mod:`.partitions` (a table made LIKE another has no triggers).
QUEUE_TRIGGER: Final = """CREATE TRIGGER webhookkit_deliveries_queued
                AFTER INSERT ON webhookkit_deliveries REFERENCING NEW TABLE AS webhookkit_added
                FOR EACH STATEMENT EXECUTE FUNCTION webhookkit_deliveries_added()"""

#: PostgreSQL (migration 13): one finished attempt and its delivery's new state, the element
#: type of the finish statement's parameter (:func:`finished_rows`).
FINISHED_TYPE: Final = "webhookkit_finished"
FINISHED_FIELDS: Final = (
    "delivery_id TEXT, status TEXT, next_try_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, "
    "attempt_id TEXT, number INTEGER, created_at TIMESTAMPTZ, attempt_status TEXT, "
    "duration DOUBLE PRECISION, response_status_code INTEGER, response_excerpt TEXT, "
    "request_headers JSONB, response_headers JSONB, error_kind TEXT, error TEXT, "
    "retryable BOOLEAN"
)
MIGRATIONS_TABLE: Final = "webhookkit_schema_migrations"
CREATE_MIGRATIONS_TABLE: Final = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at {{ts}} NOT NULL
)"""
SELECT_SCHEMA_VERSION: Final = f"SELECT COALESCE(MAX(version), 0) AS v FROM {MIGRATIONS_TABLE}"
INSERT_MIGRATION: Final = (
    f"INSERT INTO {MIGRATIONS_TABLE} (version, description, applied_at) VALUES ($1, $2, $3)"
)

MIGRATIONS: Final = (
    Migration(
        1,
        "apps, tokens, webhooks, payloads, deliveries, attempts",
        (
            """CREATE TABLE webhookkit_apps (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                is_active {bool} NOT NULL,
                permissions {json} NOT NULL,
                identifier TEXT,
                created_at {ts}
            )""",
            """CREATE TABLE webhookkit_tokens (
                id TEXT PRIMARY KEY,
                app_id TEXT NOT NULL,
                name TEXT NOT NULL,
                token_hash TEXT NOT NULL UNIQUE,
                last_4 TEXT NOT NULL,
                created_at {ts}
            )""",
            "CREATE INDEX webhookkit_tokens_app ON webhookkit_tokens (app_id)",
            """CREATE TABLE webhookkit_webhooks (
                id TEXT PRIMARY KEY,
                app_id TEXT NOT NULL,
                target_url TEXT NOT NULL,
                name TEXT NOT NULL,
                is_active {bool} NOT NULL,
                events {json} NOT NULL,
                subscription_query TEXT,
                secret_key TEXT,
                custom_headers {json} NOT NULL,
                query_events {json} NOT NULL,
                signing_profile TEXT NOT NULL,
                timeouts {json},
                created_at {ts}
            )""",
            "CREATE INDEX webhookkit_webhooks_app ON webhookkit_webhooks (app_id)",
            """CREATE TABLE webhookkit_payloads (
                id TEXT PRIMARY KEY,
                event TEXT NOT NULL,
                body {blob} NOT NULL,
                created_at {ts} NOT NULL
            )""",
            # No foreign key to webhooks: a delivery outlives a deleted webhook and fails with
            # "webhook was deleted" instead of vanishing.
            """CREATE TABLE webhookkit_deliveries (
                id TEXT PRIMARY KEY,
                payload_id TEXT NOT NULL REFERENCES webhookkit_payloads (id),
                webhook_id TEXT NOT NULL,
                app_id TEXT NOT NULL,
                event TEXT NOT NULL,
                created_at {ts} NOT NULL,
                status TEXT NOT NULL,
                next_try_at {ts},
                attempts INTEGER NOT NULL,
                lease_until {ts},
                last_error TEXT,
                updated_at {ts},
                due_at {ts}
            )""",
            # due_at = max(next try or creation, lease end) for pending rows: one ordered index
            # answers both "what is claimable now" and "when is the next one due".
            """CREATE INDEX webhookkit_deliveries_due ON webhookkit_deliveries (due_at, id)
                WHERE status = 'pending'""",
            "CREATE INDEX webhookkit_deliveries_created ON webhookkit_deliveries (created_at, id)",
            """CREATE INDEX webhookkit_deliveries_webhook
                ON webhookkit_deliveries (webhook_id, created_at)""",
            """CREATE INDEX webhookkit_deliveries_finished
                ON webhookkit_deliveries (status, updated_at)""",
            "CREATE INDEX webhookkit_deliveries_payload ON webhookkit_deliveries (payload_id)",
            """CREATE TABLE webhookkit_attempts (
                seq {serial_pk},
                id TEXT NOT NULL UNIQUE,
                delivery_id TEXT NOT NULL
                    REFERENCES webhookkit_deliveries (id) ON DELETE CASCADE,
                number INTEGER NOT NULL,
                created_at {ts} NOT NULL,
                status TEXT NOT NULL,
                duration {real} NOT NULL,
                response_status_code INTEGER,
                response_excerpt TEXT NOT NULL,
                request_headers {json} NOT NULL,
                response_headers {json} NOT NULL,
                error_kind TEXT,
                error TEXT,
                retryable {bool} NOT NULL
            )""",
            """CREATE INDEX webhookkit_attempts_delivery
                ON webhookkit_attempts (delivery_id, number)""",
        ),
    ),
    Migration(
        2,
        "manual retry budget on deliveries",
        (
            "ALTER TABLE webhookkit_deliveries ADD COLUMN retry_base INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE webhookkit_deliveries ADD COLUMN requeued_at {ts}",
        ),
    ),
    Migration(
        3,
        "ordered webhooks: ordering key and trigger sequence on deliveries",
        (
            "ALTER TABLE webhookkit_webhooks ADD COLUMN ordered {bool} NOT NULL DEFAULT {false}",
            "ALTER TABLE webhookkit_deliveries ADD COLUMN ordering_key TEXT",
            "ALTER TABLE webhookkit_deliveries ADD COLUMN seq {seq}",
            """CREATE INDEX webhookkit_deliveries_order
                ON webhookkit_deliveries (webhook_id, ordering_key, seq)
                WHERE status = 'pending' AND ordering_key IS NOT NULL""",
        ),
    ),
    Migration(
        4,
        "app installations",
        (
            """CREATE TABLE webhookkit_app_installations (
                id TEXT PRIMARY KEY,
                app_name TEXT NOT NULL,
                manifest_url TEXT NOT NULL,
                status TEXT NOT NULL,
                permissions {json} NOT NULL,
                activate_after_installation {bool} NOT NULL,
                message TEXT,
                app_id TEXT,
                created_at {ts} NOT NULL,
                updated_at {ts} NOT NULL
            )""",
            """CREATE INDEX webhookkit_app_installations_created
                ON webhookkit_app_installations (created_at, id)""",
        ),
    ),
    Migration(
        5,
        "signing keys kept in the store; stable webhook identifiers",
        (
            # One row per JWS key; private_key is PKCS#8 PEM, or AES-256-GCM of it when
            # encryption is 'aes-256-gcm' (see webhookkit.keyring).
            """CREATE TABLE webhookkit_signing_keys (
                kid TEXT PRIMARY KEY,
                alg TEXT NOT NULL,
                state TEXT NOT NULL,
                private_key {blob} NOT NULL,
                encryption TEXT NOT NULL,
                retire_at {ts},
                created_at {ts} NOT NULL,
                updated_at {ts} NOT NULL
            )""",
            # At most one active key, whatever processes race: the first key created wins.
            """CREATE UNIQUE INDEX webhookkit_signing_keys_active
                ON webhookkit_signing_keys (state) WHERE state = 'active'""",
            # Bumped by every change of the keys: processes poll this one row.
            """CREATE TABLE webhookkit_signing_keys_version (
                id INTEGER PRIMARY KEY,
                version BIGINT NOT NULL
            )""",
            "INSERT INTO webhookkit_signing_keys_version (id, version) VALUES (1, 0)",
            "ALTER TABLE webhookkit_webhooks ADD COLUMN identifier TEXT",
            """CREATE UNIQUE INDEX webhookkit_webhooks_identifier
                ON webhookkit_webhooks (app_id, identifier)""",
        ),
    ),
    Migration(
        6,
        "configuration version kept by triggers, so other processes see changes",
        (
            """CREATE TABLE webhookkit_config_version (
                id INTEGER PRIMARY KEY,
                version BIGINT NOT NULL
            )""",
            "INSERT INTO webhookkit_config_version (id, version) VALUES (1, 0)",
        ),
        sqlite=tuple(
            f"""CREATE TRIGGER webhookkit_{table}_{op.lower()} AFTER {op} ON webhookkit_{table}
            BEGIN UPDATE webhookkit_config_version SET version = version + 1 WHERE id = 1; END"""
            for table in ("apps", "webhooks")
            for op in ("INSERT", "UPDATE", "DELETE")
        ),
        postgres=(
            """CREATE FUNCTION webhookkit_config_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE webhookkit_config_version SET version = version + 1 WHERE id = 1;
                PERFORM pg_notify('webhookkit_config', '');
                RETURN NULL;
            END $$""",
            """CREATE TRIGGER webhookkit_apps_changed
                AFTER INSERT OR UPDATE OR DELETE ON webhookkit_apps
                FOR EACH STATEMENT EXECUTE FUNCTION webhookkit_config_changed()""",
            """CREATE TRIGGER webhookkit_webhooks_changed
                AFTER INSERT OR UPDATE OR DELETE ON webhookkit_webhooks
                FOR EACH STATEMENT EXECUTE FUNCTION webhookkit_config_changed()""",
        ),
    ),
    Migration(
        7,
        "webhook payload filters",
        ("ALTER TABLE webhookkit_webhooks ADD COLUMN payload_filter {json}",),
    ),
    Migration(
        8,
        "idempotency keys",
        (
            # delivery_ids is JSON text (not {json}): every outbox driver binds a str to it.
            """CREATE TABLE webhookkit_idempotency_keys (
                idempotency_key TEXT PRIMARY KEY,
                delivery_ids TEXT NOT NULL,
                created_at {ts} NOT NULL,
                expires_at {ts} NOT NULL
            )""",
            """CREATE INDEX webhookkit_idempotency_keys_expires
                ON webhookkit_idempotency_keys (expires_at)""",
        ),
    ),
    Migration(
        9,
        "rate limits on apps and webhooks",
        (
            "ALTER TABLE webhookkit_apps ADD COLUMN rate_limit {json}",
            "ALTER TABLE webhookkit_webhooks ADD COLUMN rate_limit {json}",
        ),
    ),
    Migration(
        10,
        "webhooks disabled after failing too long; endpoint failure streaks",
        (
            "ALTER TABLE webhookkit_webhooks ADD COLUMN disabled_at {ts}",
            """CREATE TABLE webhookkit_endpoint_failures (
                webhook_id TEXT PRIMARY KEY,
                failing_since {ts} NOT NULL
            )""",
        ),
    ),
    Migration(
        11,
        "PostgreSQL: no foreign key from attempts to deliveries",
        (),
        # Its check ran a trigger and a locking lookup per attempt written. The finish
        # statements look the delivery up instead (an unknown one is refused by NOT NULL) and
        # the purge deletes attempts with their deliveries. SQLite keeps its foreign key.
        postgres=(
            "ALTER TABLE webhookkit_attempts "
            "DROP CONSTRAINT IF EXISTS webhookkit_attempts_delivery_id_fkey",
        ),
    ),
    Migration(
        12,
        "PostgreSQL: room on each deliveries page for its rows' claims",
        (),
        # A claim changes only lease_until: with room on the page for the row's new version,
        # PostgreSQL writes it there without touching the table's seven indexes (a HOT
        # update). Pages written from now on are filled to DELIVERIES_FILLFACTOR percent.
        # Partitioned: each partition (a partitioned table holds no pages itself).
        postgres=(
            f"""DO $$ DECLARE part regclass; BEGIN
                FOR part IN SELECT c.oid::regclass FROM pg_class AS c
                    WHERE c.oid = 'webhookkit_deliveries'::regclass AND c.relkind = 'r'
                    UNION ALL SELECT relid FROM pg_partition_tree('webhookkit_deliveries')
                    WHERE isleaf AND relid <> 'webhookkit_deliveries'::regclass LOOP
                    EXECUTE format('ALTER TABLE %s SET (fillfactor = {DELIVERIES_FILLFACTOR})',
                        part);
                END LOOP; END $$""",
        ),
    ),
    Migration(
        13,
        "PostgreSQL: pending deliveries scheduled from a narrow queue table",
        (),
        # A finish changed the delivery's status, due time and finish time, all indexed, so
        # every finish wrote a new entry in each of the table's indexes. Now the scheduling
        # state of each pending delivery is a row of webhookkit_queue (due time, lease, what
        # ordering needs); claims read and lease queue rows, a finish deletes its queue row
        # (a retry moves it) and updates the delivery, which no index covers a changed column
        # of any more: a HOT update. Purges find old rows through the created_at index. The
        # trigger gives every delivery inserted pending its queue row, whoever inserts it
        # (the store, or the host's own connection through the outbox).
        postgres=(
            f"""CREATE TABLE {QUEUE_TABLE} (
                id TEXT PRIMARY KEY,
                created_at TIMESTAMPTZ NOT NULL,
                due_at TIMESTAMPTZ NOT NULL,
                lease_until TIMESTAMPTZ,
                webhook_id TEXT NOT NULL,
                ordering_key TEXT,
                seq BIGINT NOT NULL
            ) WITH (fillfactor = {QUEUE_FILLFACTOR})""",
            f"CREATE INDEX {QUEUE_TABLE}_due ON {QUEUE_TABLE} (due_at, id)",
            f"""CREATE INDEX {QUEUE_TABLE}_order ON {QUEUE_TABLE} (webhook_id, ordering_key, seq)
                WHERE ordering_key IS NOT NULL""",
            f"""CREATE FUNCTION webhookkit_deliveries_added() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                {QUEUE_FROM.format(source="webhookkit_added")};
                RETURN NULL;
            END $$""",
            QUEUE_TRIGGER,
            QUEUE_FROM.format(source="webhookkit_deliveries"),
            # A finish's rows as one array of this type: one parameter, encoded a row at a
            # time (an array per column cost the client a type check per value).
            f"CREATE TYPE {FINISHED_TYPE} AS ({FINISHED_FIELDS})",
            "DROP INDEX IF EXISTS webhookkit_deliveries_due",
            "DROP INDEX IF EXISTS webhookkit_deliveries_finished",
            "DROP INDEX IF EXISTS webhookkit_deliveries_order",
        ),
    ),
)
SCHEMA_VERSION: Final = MIGRATIONS[-1].version


def pending_migrations(current: int) -> tuple[Migration, ...]:
    """The migrations after ``current``; a database newer than this library is refused."""
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"store: database schema is version {current}, this webhookkit knows up to "
            f"{SCHEMA_VERSION}; upgrade webhookkit"
        )
    return tuple(m for m in MIGRATIONS if m.version > current)


# -- queries ------------------------------------------------------------------------------------

APP_COLUMNS: Final = "id, name, is_active, permissions, identifier, created_at, rate_limit"
TOKEN_COLUMNS: Final = "id, app_id, name, token_hash, last_4, created_at"
WEBHOOK_COLUMNS: Final = (
    "id, app_id, target_url, name, is_active, events, subscription_query, secret_key, "
    "payload_filter, "
    "custom_headers, query_events, signing_profile, timeouts, created_at, ordered, identifier, "
    "rate_limit, disabled_at"
)
PAYLOAD_COLUMNS: Final = "id, event, body, created_at"
DELIVERY_COLUMNS: Final = (
    "id, payload_id, webhook_id, app_id, event, created_at, status, next_try_at, attempts, "
    "lease_until, last_error, updated_at, due_at, retry_base, requeued_at, ordering_key"
)
ATTEMPT_COLUMNS: Final = (
    "id, delivery_id, number, created_at, status, duration, response_status_code, "
    "response_excerpt, request_headers, response_headers, error_kind, error, retryable"
)


def _insert(table: str, columns: str, first: int = 1) -> str:
    names = [c.strip() for c in columns.split(",")]
    marks = ", ".join(f"${i}" for i in range(first, first + len(names)))
    return f"INSERT INTO {table} ({columns}) VALUES ({marks})"


def _upsert(table: str, columns: str) -> str:
    names = [c.strip() for c in columns.split(",")]
    updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != "id")
    return f"{_insert(table, columns)} ON CONFLICT (id) DO UPDATE SET {updates}"


UPSERT_APP: Final = _upsert("webhookkit_apps", APP_COLUMNS)
SELECT_APP: Final = f"SELECT {APP_COLUMNS} FROM webhookkit_apps WHERE id = $1"
LIST_APPS: Final = f"SELECT {APP_COLUMNS} FROM webhookkit_apps ORDER BY id"
DELETE_APP: Final = (
    "DELETE FROM webhookkit_tokens WHERE app_id = $1",
    "DELETE FROM webhookkit_webhooks WHERE app_id = $1",
    "DELETE FROM webhookkit_apps WHERE id = $1",
)

UPSERT_TOKEN: Final = _upsert("webhookkit_tokens", TOKEN_COLUMNS)
FIND_TOKEN: Final = f"SELECT {TOKEN_COLUMNS} FROM webhookkit_tokens WHERE token_hash = $1"
LIST_TOKENS: Final = f"SELECT {TOKEN_COLUMNS} FROM webhookkit_tokens WHERE app_id = $1 ORDER BY id"
DELETE_TOKEN: Final = "DELETE FROM webhookkit_tokens WHERE id = $1"

UPSERT_WEBHOOK: Final = _upsert("webhookkit_webhooks", WEBHOOK_COLUMNS)
SELECT_WEBHOOK: Final = f"SELECT {WEBHOOK_COLUMNS} FROM webhookkit_webhooks WHERE id = $1"
LIST_WEBHOOKS: Final = f"SELECT {WEBHOOK_COLUMNS} FROM webhookkit_webhooks ORDER BY id"
LIST_APP_WEBHOOKS: Final = (
    f"SELECT {WEBHOOK_COLUMNS} FROM webhookkit_webhooks WHERE app_id = $1 ORDER BY id"
)
DELETE_WEBHOOK: Final = "DELETE FROM webhookkit_webhooks WHERE id = $1"

INSERT_PAYLOAD: Final = _insert("webhookkit_payloads", PAYLOAD_COLUMNS)
SELECT_PAYLOAD: Final = f"SELECT {PAYLOAD_COLUMNS} FROM webhookkit_payloads WHERE id = $1"
INSERT_DELIVERY: Final = _insert("webhookkit_deliveries", DELIVERY_COLUMNS)
SELECT_DELIVERY: Final = f"SELECT {DELIVERY_COLUMNS} FROM webhookkit_deliveries WHERE id = $1"
LIST_ATTEMPTS: Final = (
    f"SELECT {ATTEMPT_COLUMNS} FROM webhookkit_attempts WHERE delivery_id = $1 ORDER BY number, seq"
)
INSERT_ATTEMPT: Final = _insert("webhookkit_attempts", ATTEMPT_COLUMNS)
# A trigger's rows in one PostgreSQL statement, one round trip and one implicit transaction:
# the payloads and deliveries as column arrays, then the workers' NOTIFY (sent on commit).
# Both data-modifying CTEs always run to completion; a delivery's payload, inserted by the
# same statement, satisfies the foreign key (checked at the statement's end).
# Parameters: payload columns ($1-$4), delivery columns ($5-$20), channel, count.
INSERT_TRIGGER_POSTGRES: Final = f"""
    WITH p AS (
        INSERT INTO webhookkit_payloads ({PAYLOAD_COLUMNS})
        SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::timestamptz[])
        RETURNING 1
    ), d AS (
        INSERT INTO webhookkit_deliveries ({DELIVERY_COLUMNS})
        SELECT * FROM unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
            $10::timestamptz[], $11::text[], $12::timestamptz[], $13::int[], $14::timestamptz[],
            $15::text[], $16::timestamptz[], $17::timestamptz[], $18::int[], $19::timestamptz[],
            $20::text[])
        RETURNING 1
    )
    SELECT pg_notify($21, $22)"""


def columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows of ``width`` values as ``width`` column lists (the arrays of an unnest insert)."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(col) for col in zip(*rows, strict=True)]


# Claiming (SQLite; PostgreSQL's statements are in ._pg_sql): select then update inside one
# write transaction (one writer at a time).
# ``$n`` (the last parameter) lists webhooks to skip: endpoints busy or held by the caller.
# An ordered delivery is claimable only while no earlier one of its webhook and key is pending.
_ELIGIBLE: Final = """(d.ordering_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM webhookkit_deliveries AS e
          WHERE e.webhook_id = d.webhook_id AND e.ordering_key = d.ordering_key
            AND e.status = 'pending' AND e.{seq_col} < d.{seq_col}))"""
SELECT_DUE: Final = f"""
    SELECT id, due_at FROM webhookkit_deliveries AS d
    WHERE status = 'pending' AND due_at <= $1 AND NOT ({{excluded}}) AND {_ELIGIBLE}
    ORDER BY due_at, id LIMIT $2"""
SELECT_DUE_SQLITE: Final = SELECT_DUE.format(
    excluded=SQLITE.in_ids("webhook_id", "$3"), seq_col=SQLITE.types["seq_col"]
)
# The first eligible row in due order, not MIN(): MIN over a filtered set reads every
# pending row, the ordered scan stops at the first one.
_NEXT_DUE: Final = f"""SELECT due_at AS due FROM webhookkit_deliveries AS d {{hint}}
    WHERE status = 'pending' AND due_at IS NOT NULL AND {_ELIGIBLE}
    ORDER BY due_at LIMIT 1"""
NEXT_DUE_SQLITE: Final = _NEXT_DUE.format(
    seq_col=SQLITE.types["seq_col"], hint="INDEXED BY webhookkit_deliveries_due"
)
FINISH_DELIVERY: Final = f"""
    UPDATE webhookkit_deliveries SET
        status = $2, attempts = attempts + 1, next_try_at = $3, lease_until = NULL,
        last_error = $4, updated_at = $5,
        due_at = CASE WHEN $2 = 'pending' THEN COALESCE($3, created_at) ELSE NULL END
    WHERE id = $1 AND status = 'pending'
    RETURNING {DELIVERY_COLUMNS}"""
FINISH_ONE_SQLITE: Final = SQLITE.sql(
    """UPDATE webhookkit_deliveries SET
        status = $2, attempts = attempts + 1, next_try_at = $3, lease_until = NULL,
        last_error = $4, updated_at = $5,
        due_at = CASE WHEN $2 = 'pending' THEN COALESCE($3, created_at) ELSE NULL END
    WHERE id = $1 AND status = 'pending'"""
)
# SQLite: many rows in one statement from one JSON array of rows. An ``executemany`` steps
# once per row, and every step gives up and takes back the GIL in the store's thread: with
# the event loop busy sending, each of those hand-overs can wait for the loop's thread.


def _json_values(count: int) -> str:
    return ", ".join(f"json_extract(r.value, '$[{i}]')" for i in range(count))


INSERT_DELIVERIES_SQLITE: Final = (
    f"INSERT INTO webhookkit_deliveries ({DELIVERY_COLUMNS}) "
    f"SELECT {_json_values(16)} FROM json_each(?1) AS r"
)
INSERT_ATTEMPTS_SQLITE: Final = (
    f"INSERT INTO webhookkit_attempts ({ATTEMPT_COLUMNS}) "
    f"SELECT {_json_values(13)} FROM json_each(?1) AS r"
)
# The rows of :func:`finish_params` (id, status, next_try_at, last_error, now); ids unique.
# "Still pending" written so that no status index can answer it: each JSON row then finds
# its delivery by primary key (with `status = 'pending'` SQLite walked every pending row).
# No alias for the updated table: the statement also runs inside a trigger, where SQLite
# allows none (:mod:`._sqlite_batch`).
FINISH_MANY_SQLITE: Final = """
    UPDATE webhookkit_deliveries SET
        status = i.status, attempts = webhookkit_deliveries.attempts + 1,
        next_try_at = i.next_try_at, lease_until = NULL, last_error = i.last_error,
        updated_at = i.now,
        due_at = CASE WHEN i.status = 'pending'
            THEN COALESCE(i.next_try_at, webhookkit_deliveries.created_at) ELSE NULL END
    FROM (SELECT json_extract(r.value, '$[0]') AS id, json_extract(r.value, '$[1]') AS status,
            json_extract(r.value, '$[2]') AS next_try_at,
            json_extract(r.value, '$[3]') AS last_error, json_extract(r.value, '$[4]') AS now
          FROM json_each(?1) AS r) AS i
    WHERE webhookkit_deliveries.id = i.id
        AND webhookkit_deliveries.status NOT IN ('success', 'failed')"""


def json_rows(rows: Sequence[tuple[Any, ...]]) -> str:
    """Rows as one JSON array of arrays (the parameter of the statements above)."""
    return json.dumps(rows, separators=(",", ":"))


COUNT_IDS_SQLITE: Final = (
    f"SELECT count(*) AS n FROM webhookkit_deliveries WHERE {SQLITE.in_ids('id', '?1')}"
)
# Which of the given attempt ids are on record: a retried finish writes only the others.
RECORDED_ATTEMPTS: Final = "SELECT id FROM webhookkit_attempts WHERE {}"


def recorded_attempts_sql(dialect: Dialect) -> str:
    """The attempt ids in ``$1`` that are on record."""
    return dialect.sql(RECORDED_ATTEMPTS.format(dialect.in_ids("id", "$1")))


def unrecorded(results: Sequence[AttemptResult], recorded: set[str]) -> list[AttemptResult]:
    """The results whose attempt is not among ``recorded`` (ids)."""
    return [r for r in results if r.attempt.id not in recorded]


COUNT_PENDING: Final = "SELECT count(*) AS n FROM webhookkit_deliveries WHERE status = 'pending'"
SELECT_CONFIG_VERSION: Final = "SELECT version FROM webhookkit_config_version WHERE id = 1"


def row_to_claimed_payload(d: Dialect, row: Row) -> Payload:
    return Payload(
        id=row["payload_id"],
        event=row["event"],
        body=bytes(row["body"]),
        created_at=_required(d, row["payload_created_at"]),
    )


def finished_rows(results: Sequence[AttemptResult]) -> list[tuple[Any, ...]]:
    """PostgreSQL: ``results`` as :data:`FINISHED_TYPE` rows (the finish statement's one
    parameter); the delivery's last error is its attempt's error. Naive datetimes are
    refused, as :meth:`Dialect.ts` does."""
    rows: list[tuple[Any, ...]] = []
    for r in results:
        a = r.attempt
        if (
            r.now.tzinfo is None
            or a.created_at.tzinfo is None
            or (r.next_try_at is not None and r.next_try_at.tzinfo is None)
        ):
            POSTGRES.ts(r.next_try_at)
            POSTGRES.ts(a.created_at)
            POSTGRES.ts(r.now)
        rows.append(
            (
                r.delivery_id,
                _DELIVERY_VALUE[r.status],
                r.next_try_at,
                r.now,
                a.id,
                a.number,
                a.created_at,
                _ATTEMPT_VALUE[a.status],
                float(a.duration),
                a.response_status_code,
                a.response_excerpt,
                _dump_pairs(a.request_headers),
                _dump_pairs(a.response_headers),
                a.error_kind,
                a.error,
                a.retryable,
            )
        )
    return rows


# A manual retry: a finished delivery becomes pending now, with a fresh retry budget.
REQUEUE: Final = f"""
    UPDATE webhookkit_deliveries SET
        status = 'pending', next_try_at = $2, lease_until = NULL, due_at = $2,
        retry_base = attempts, requeued_at = $2, updated_at = $2
    WHERE id = $1 AND status <> 'pending'
    RETURNING {DELIVERY_COLUMNS}"""


def lease_sql(dialect: Dialect) -> str:
    """Set the lease of the deliveries whose ids are in ``$2``; ``$1`` is the lease end."""
    return dialect.sql(
        "UPDATE webhookkit_deliveries SET lease_until = $1, due_at = $1 "
        f"WHERE {dialect.in_ids('id', '$2')}"
    )


def select_by_ids_sql(dialect: Dialect) -> str:
    """The deliveries whose ids are in ``$1``."""
    return dialect.sql(
        f"SELECT {DELIVERY_COLUMNS} FROM webhookkit_deliveries WHERE {dialect.in_ids('id', '$1')}"
    )


def release_sql(dialect: Dialect) -> str:
    """Hand back the pending deliveries in ``$1``, claimable again at ``$2`` (NULL: at once)."""
    return dialect.sql(
        "UPDATE webhookkit_deliveries SET lease_until = $2, due_at = CASE "
        "WHEN $2 > COALESCE(next_try_at, created_at) THEN $2 "
        "ELSE COALESCE(next_try_at, created_at) END "
        # "Still pending" that no status index can answer: the ids must drive the lookup.
        f"WHERE {dialect.in_ids('id', '$1')} AND status NOT IN ('success', 'failed')"
    )


def delivery_filters(
    dialect: Dialect,
    query: DeliveryQuery,
    args: list[Any],
    column: Callable[[str], str] = str,
) -> list[str]:
    """The WHERE conditions of ``query`` (its values appended to ``args`` as ``$n``);
    ``column`` names each filtered column as the statement reads it (a table alias)."""

    def param(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where: list[str] = []
    if query.webhook_id is not None:
        where.append(f"{column('webhook_id')} = {param(query.webhook_id)}")
    if query.status is not None:
        where.append(f"{column('status')} = {param(DeliveryStatus(query.status).value)}")
    if query.event is not None:
        where.append(f"{column('event')} = {param(query.event)}")
    if query.created_after is not None:
        where.append(f"{column('created_at')} >= {param(dialect.ts(query.created_after))}")
    if query.created_before is not None:
        where.append(f"{column('created_at')} < {param(dialect.ts(query.created_before))}")
    return where


def list_deliveries_sql(dialect: Dialect, query: DeliveryQuery) -> tuple[str, list[Any]]:
    """The filtered, ordered, paged select for ``query`` and its parameters."""
    args: list[Any] = []
    where = delivery_filters(dialect, query, args)
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    args += [query.limit, query.offset]
    text = (
        f"SELECT {DELIVERY_COLUMNS} FROM webhookkit_deliveries {clause}"
        f"ORDER BY created_at, id LIMIT ${len(args) - 1} OFFSET ${len(args)}"
    )
    return dialect.sql(text), args


def purge_sql(
    dialect: Dialect, now: datetime, keep_success: timedelta | None, keep_failed: timedelta
) -> tuple[str, list[Any]]:
    """Delete up to PURGE_BATCH finished deliveries past retention, returning their payloads.

    A delivery's age counts from when it finished (``updated_at``), else from its creation.
    PostgreSQL has no index on status or finish time (see migration 13): it walks the
    deliveries in creation order, up to the latest cutoff, since a delivery finishes after it
    was created. (One whose finish time reads earlier than its creation, clocks of two hosts
    apart, waits for a purge whose cutoff is past its creation.)
    """
    failed_cutoff = dialect.ts(now - keep_failed)
    args: list[Any] = [failed_cutoff]
    old = "(updated_at < {p} OR (updated_at IS NULL AND created_at < {p}))"
    clauses = [f"(status = 'failed' AND {old.format(p='$1')})"]
    if keep_success is None:
        clauses.append("status = 'success'")
    else:
        args.append(dialect.ts(now - keep_success))
        clauses.append(f"(status = 'success' AND {old.format(p='$2')})")
    cond = " OR ".join(clauses)
    order = ""
    if dialect.name == "postgresql":
        order = " ORDER BY created_at, id"
        if keep_success is not None:
            cond = f"created_at < GREATEST($1::timestamptz, $2::timestamptz) AND ({cond})"
    text = f"""
        DELETE FROM webhookkit_deliveries WHERE id IN (
            SELECT id FROM webhookkit_deliveries WHERE {cond}{order}
            LIMIT {PURGE_BATCH})
        RETURNING payload_id"""
    return dialect.sql(text), args


def purge_payloads_sql(dialect: Dialect) -> str:
    """Delete the payloads in ``$1`` that no delivery refers to any more."""
    return dialect.sql(
        f"DELETE FROM webhookkit_payloads WHERE {dialect.in_ids('id', '$1')} AND NOT EXISTS "
        "(SELECT 1 FROM webhookkit_deliveries d WHERE d.payload_id = webhookkit_payloads.id)"
    )


# Status values by member or by text (a StrEnum member hashes and compares as its text), and
# members by text: a dict lookup per row instead of an Enum call (measurable per claimed row).
_DELIVERY_VALUE: Final[dict[str, str]] = {s.value: s.value for s in DeliveryStatus}
_DELIVERY_STATUS: Final[dict[str, DeliveryStatus]] = {s.value: s for s in DeliveryStatus}
_ATTEMPT_VALUE: Final[dict[str, str]] = {s.value: s.value for s in AttemptStatus}
_ATTEMPT_STATUS: Final[dict[str, AttemptStatus]] = {s.value: s for s in AttemptStatus}


# -- records <-> rows ---------------------------------------------------------------------------


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


_COMPACT: Final = json.JSONEncoder(separators=(",", ":"))


def _dump_pairs(pairs: tuple[tuple[str, str], ...]) -> str:
    """Header pairs as a JSON array of two-item arrays (what :func:`_pairs` reads back)."""
    # Tuples encode as arrays; one encoder object spares json.dumps' per-call setup.
    return _COMPACT.encode(pairs) if pairs else "[]"


def _pairs(value: str) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in json.loads(value))


def _names(value: str) -> frozenset[str]:
    return frozenset(json.loads(value))


def _required(dialect: Dialect, value: Any) -> datetime:
    result = dialect.dt(value)
    assert result is not None, "NOT NULL column"
    return result


def app_params(d: Dialect, app: App) -> tuple[Any, ...]:
    return (
        app.id,
        app.name,
        app.is_active,
        _dump(sorted(app.permissions)),
        app.identifier,
        d.ts(app.created_at),
        _rate(app.rate_limit),
    )


def row_to_app(d: Dialect, row: Row) -> App:
    return App(
        id=row["id"],
        name=row["name"],
        is_active=bool(row["is_active"]),
        permissions=_names(row["permissions"]),
        identifier=row["identifier"],
        created_at=d.dt(row["created_at"]),
        rate_limit=_row_rate(row["rate_limit"]),
    )


def token_params(d: Dialect, token: AppToken) -> tuple[Any, ...]:
    return (
        token.id,
        token.app_id,
        token.name,
        token.token_hash,
        token.last_4,
        d.ts(token.created_at),
    )


def row_to_token(d: Dialect, row: Row) -> AppToken:
    return AppToken(
        id=row["id"],
        app_id=row["app_id"],
        name=row["name"],
        token_hash=row["token_hash"],
        last_4=row["last_4"],
        created_at=d.dt(row["created_at"]),
    )


def webhook_params(d: Dialect, webhook: Webhook) -> tuple[Any, ...]:
    timeouts = webhook.timeouts
    return (
        webhook.id,
        webhook.app_id,
        webhook.target_url,
        webhook.name,
        webhook.is_active,
        _dump(sorted(webhook.events)),
        webhook.subscription_query,
        webhook.secret_key.reveal() if webhook.secret_key is not None else None,
        None if webhook.filter is None else webhook.filter.to_json(),
        _dump([list(pair) for pair in webhook.custom_headers]),
        _dump(sorted(webhook.query_events)),
        webhook.signing_profile,
        None if timeouts is None else _dump({"connect": timeouts.connect, "total": timeouts.total}),
        d.ts(webhook.created_at),
        webhook.ordered,
        webhook.identifier,
        _rate(webhook.rate_limit),
        d.ts(webhook.disabled_at),
    )


def _rate(limit: RateLimit | None) -> str | None:
    return None if limit is None else _dump(limit.to_json())


def _row_rate(value: Any) -> RateLimit | None:
    if value is None:
        return None
    data = json.loads(value) if isinstance(value, str) else value
    return RateLimit(per_second=float(data["per_second"]), burst=data.get("burst"))


def row_to_webhook(d: Dialect, row: Row) -> Webhook:
    secret = row["secret_key"]
    stored_filter = row["payload_filter"]
    timeouts = row["timeouts"]
    return Webhook(
        id=row["id"],
        app_id=row["app_id"],
        target_url=row["target_url"],
        name=row["name"],
        is_active=bool(row["is_active"]),
        events=_names(row["events"]),
        subscription_query=row["subscription_query"],
        secret_key=Secret(secret) if secret is not None else None,
        filter=filter_from_json(stored_filter) if stored_filter is not None else None,
        custom_headers=_pairs(row["custom_headers"]),
        query_events=_names(row["query_events"]),
        signing_profile=row["signing_profile"],
        timeouts=Timeouts(**json.loads(timeouts)) if timeouts is not None else None,
        created_at=d.dt(row["created_at"]),
        ordered=bool(row["ordered"]),
        identifier=row["identifier"],
        rate_limit=_row_rate(row["rate_limit"]),
        disabled_at=d.dt(row["disabled_at"]),
    )


def payload_params(d: Dialect, payload: Payload) -> tuple[Any, ...]:
    return (payload.id, payload.event, bytes(payload.body), d.ts(payload.created_at))


def row_to_payload(d: Dialect, row: Row) -> Payload:
    return Payload(
        id=row["id"],
        event=row["event"],
        body=bytes(row["body"]),
        created_at=_required(d, row["created_at"]),
    )


def due_at(delivery: Delivery) -> datetime | None:
    """When a delivery becomes claimable: its next try (or creation), or its lease's end."""
    if delivery.status is not DeliveryStatus.PENDING:
        return None
    due = delivery.next_try_at or delivery.created_at
    if delivery.lease_until is not None and delivery.lease_until > due:
        return delivery.lease_until
    return due


def delivery_columns(d: Dialect, deliveries: Sequence[Delivery]) -> list[list[Any]]:
    """The :func:`delivery_params` of ``deliveries`` as column lists (an unnest insert's
    arrays), built a column at a time."""
    ts = d.ts
    return [
        [x.id for x in deliveries],
        [x.payload_id for x in deliveries],
        [x.webhook_id for x in deliveries],
        [x.app_id for x in deliveries],
        [x.event for x in deliveries],
        [ts(x.created_at) for x in deliveries],
        [_DELIVERY_VALUE[x.status] for x in deliveries],
        [ts(x.next_try_at) for x in deliveries],
        [x.attempts for x in deliveries],
        [ts(x.lease_until) for x in deliveries],
        [x.last_error for x in deliveries],
        [ts(x.updated_at) for x in deliveries],
        [ts(due_at(x)) for x in deliveries],
        [x.retry_base for x in deliveries],
        [ts(x.requeued_at) for x in deliveries],
        [x.ordering_key for x in deliveries],
    ]


def delivery_params(d: Dialect, delivery: Delivery) -> tuple[Any, ...]:
    return (
        delivery.id,
        delivery.payload_id,
        delivery.webhook_id,
        delivery.app_id,
        delivery.event,
        d.ts(delivery.created_at),
        _DELIVERY_VALUE[delivery.status],
        d.ts(delivery.next_try_at),
        delivery.attempts,
        d.ts(delivery.lease_until),
        delivery.last_error,
        d.ts(delivery.updated_at),
        d.ts(due_at(delivery)),
        delivery.retry_base,
        d.ts(delivery.requeued_at),
        delivery.ordering_key,
    )


def row_to_delivery(d: Dialect, row: Row) -> Delivery:
    return Delivery(
        id=row["id"],
        payload_id=row["payload_id"],
        webhook_id=row["webhook_id"],
        app_id=row["app_id"],
        event=row["event"],
        created_at=_required(d, row["created_at"]),
        status=_DELIVERY_STATUS[row["status"]],
        next_try_at=d.dt(row["next_try_at"]),
        attempts=int(row["attempts"]),
        lease_until=d.dt(row["lease_until"]),
        last_error=row["last_error"],
        updated_at=d.dt(row["updated_at"]),
        retry_base=int(row["retry_base"]),
        requeued_at=d.dt(row["requeued_at"]),
        ordering_key=row["ordering_key"],
    )


def finish_params(
    d: Dialect,
    delivery_id: str,
    attempt: Attempt,
    status: DeliveryStatus,
    next_try_at: datetime | None,
    now: datetime,
) -> tuple[Any, ...]:
    """Parameters of :data:`FINISH_DELIVERY`."""
    return (
        delivery_id,
        _DELIVERY_VALUE[status],
        d.ts(next_try_at),
        attempt.error,
        d.ts(now),
    )


def attempt_params(d: Dialect, attempt: Attempt) -> tuple[Any, ...]:
    """An attempt's column values; the header pairs as JSON text (:func:`_dump_pairs`)."""
    row = attempt_json_row(d, attempt)
    return (*row[:8], _dump_pairs(row[8]), _dump_pairs(row[9]), *row[10:])


def attempt_json_row(d: Dialect, attempt: Attempt) -> tuple[Any, ...]:
    """:func:`attempt_params` for :data:`INSERT_ATTEMPTS_SQLITE`'s JSON rows: the header pairs
    stay nested arrays, which ``json_extract`` hands the insert as the same JSON text
    :func:`_dump_pairs` writes (encoding them apart, then again as strings inside the row,
    cost more than the rest of the row)."""
    return (
        attempt.id,
        attempt.delivery_id,
        attempt.number,
        d.ts(attempt.created_at),
        _ATTEMPT_VALUE[attempt.status],
        float(attempt.duration),
        attempt.response_status_code,
        attempt.response_excerpt,
        attempt.request_headers,
        attempt.response_headers,
        attempt.error_kind,
        attempt.error,
        attempt.retryable,
    )


def row_to_attempt(d: Dialect, row: Row) -> Attempt:
    return Attempt(
        id=row["id"],
        delivery_id=row["delivery_id"],
        number=int(row["number"]),
        created_at=_required(d, row["created_at"]),
        status=_ATTEMPT_STATUS[row["status"]],
        duration=float(row["duration"]),
        response_status_code=row["response_status_code"],
        response_excerpt=row["response_excerpt"],
        request_headers=_pairs(row["request_headers"]),
        response_headers=_pairs(row["response_headers"]),
        error_kind=row["error_kind"],
        error=row["error"],
        retryable=bool(row["retryable"]),
    )


def missing_delivery(delivery_id: str) -> StoreError:
    return StoreError(f"delivery {delivery_id}: not found")


DUPLICATE_TOKEN: Final = "token: a token with the same value already exists"
MISSING_PAYLOAD: Final = (
    "add_deliveries: a delivery names a payload that is neither in the batch nor stored"
)


# -- app installations (webhookkit.graphql's appInstall) ----------------------------------------

INSTALLATION_COLUMNS: Final = (
    "id, app_name, manifest_url, status, permissions, activate_after_installation, message, "
    "app_id, created_at, updated_at"
)
UPSERT_INSTALLATION: Final = _upsert("webhookkit_app_installations", INSTALLATION_COLUMNS)
SELECT_INSTALLATION: Final = (
    f"SELECT {INSTALLATION_COLUMNS} FROM webhookkit_app_installations WHERE id = $1"
)
LIST_INSTALLATIONS: Final = (
    f"SELECT {INSTALLATION_COLUMNS} FROM webhookkit_app_installations ORDER BY created_at, id"
)
DELETE_INSTALLATION: Final = "DELETE FROM webhookkit_app_installations WHERE id = $1"


def installation_params(d: Dialect, installation: AppInstallation) -> tuple[Any, ...]:
    return (
        installation.id,
        installation.app_name,
        installation.manifest_url,
        installation.status.value,
        _dump(sorted(installation.permissions)),
        installation.activate_after_installation,
        installation.message,
        installation.app_id,
        d.ts(installation.created_at),
        d.ts(installation.updated_at),
    )


def row_to_installation(d: Dialect, row: Row) -> AppInstallation:
    return AppInstallation(
        id=row["id"],
        app_name=row["app_name"],
        manifest_url=row["manifest_url"],
        status=InstallationStatus(row["status"]),
        permissions=_names(row["permissions"]),
        activate_after_installation=bool(row["activate_after_installation"]),
        message=row["message"],
        app_id=row["app_id"],
        created_at=_required(d, row["created_at"]),
        updated_at=_required(d, row["updated_at"]),
    )


# -- signing keys kept in the store (webhookkit.keyring) -------------------------------

#: PostgreSQL channel announcing a change of the stored signing keys (payload: new version).
KEYS_CHANNEL: Final = "webhookkit_keys"
SIGNING_KEY_COLUMNS: Final = (
    "kid, alg, state, private_key, encryption, retire_at, created_at, updated_at"
)
LIST_SIGNING_KEYS: Final = (
    f"SELECT {SIGNING_KEY_COLUMNS} FROM webhookkit_signing_keys ORDER BY created_at, kid"
)
SELECT_KEY_STATE: Final = "SELECT state FROM webhookkit_signing_keys WHERE kid = $1"
COUNT_SIGNING_KEYS: Final = "SELECT COUNT(*) AS n FROM webhookkit_signing_keys"
# DO NOTHING on a taken kid, and on a second active key (the unique index on active rows):
# of processes racing to create the first key, exactly one inserts.
INSERT_SIGNING_KEY: Final = (
    f"{_insert('webhookkit_signing_keys', SIGNING_KEY_COLUMNS)} ON CONFLICT DO NOTHING"
)
RETIRE_ACTIVE_KEY: Final = """
    UPDATE webhookkit_signing_keys SET state = 'retired', retire_at = $2, updated_at = $3
    WHERE state = 'active' AND kid <> $1"""
UPDATE_KEY_STATE: Final = """
    UPDATE webhookkit_signing_keys SET state = $2, retire_at = $3, updated_at = $4
    WHERE kid = $1"""
DELETE_SIGNING_KEY: Final = (
    "DELETE FROM webhookkit_signing_keys WHERE kid = $1 AND state <> 'active'"
)
BUMP_KEYS_VERSION: Final = (
    "UPDATE webhookkit_signing_keys_version SET version = version + 1 WHERE id = 1 "
    "RETURNING version"
)
SELECT_KEYS_VERSION: Final = "SELECT version FROM webhookkit_signing_keys_version WHERE id = 1"


def stored_key_params(d: Dialect, key: StoredKey) -> tuple[Any, ...]:
    return (
        key.kid,
        key.alg,
        key.state,
        bytes(key.private_key),
        key.encryption,
        d.ts(key.retire_at),
        d.ts(key.created_at),
        d.ts(key.updated_at),
    )


def row_to_stored_key(d: Dialect, row: Row) -> StoredKey:
    return StoredKey(
        kid=row["kid"],
        alg=row["alg"],
        state=row["state"],
        private_key=bytes(row["private_key"]),
        encryption=row["encryption"],
        retire_at=d.dt(row["retire_at"]),
        created_at=_required(d, row["created_at"]),
        updated_at=_required(d, row["updated_at"]),
    )


# -- idempotency keys (kit.trigger(..., idempotency_key=...)) ---------------------------------

# Inserts the key, or takes over an expired row for it; RETURNING gives a row only then. A
# concurrent insert of the same key waits for the other transaction (unique index): after
# its commit no row comes back (read the winner's ids), after its rollback this one inserts.
CLAIM_IDEMPOTENCY_KEY: Final = """
    INSERT INTO webhookkit_idempotency_keys
        (idempotency_key, delivery_ids, created_at, expires_at) VALUES ($1, $2, $3, $4)
    ON CONFLICT (idempotency_key) DO UPDATE SET delivery_ids = excluded.delivery_ids,
        created_at = excluded.created_at, expires_at = excluded.expires_at
    WHERE webhookkit_idempotency_keys.expires_at <= excluded.created_at
    RETURNING idempotency_key"""
SELECT_IDEMPOTENCY_KEY: Final = (
    "SELECT delivery_ids FROM webhookkit_idempotency_keys WHERE idempotency_key = $1"
)
FIND_IDEMPOTENCY_KEY: Final = (
    "SELECT delivery_ids FROM webhookkit_idempotency_keys "
    "WHERE idempotency_key = $1 AND expires_at > $2"
)
PURGE_IDEMPOTENCY_KEYS: Final = f"""
    DELETE FROM webhookkit_idempotency_keys WHERE idempotency_key IN (
        SELECT idempotency_key FROM webhookkit_idempotency_keys WHERE expires_at <= $1
        LIMIT {PURGE_BATCH})"""
KEY_VANISHED: Final = (
    "idempotency_key: the key was taken by a trigger whose row is gone (purged by a clock "
    "far ahead of this one?); try again"
)


def idempotency_key_params(d: Dialect, key: IdempotencyKey) -> tuple[Any, ...]:
    return (key.key, _dump(list(key.delivery_ids)), d.ts(key.created_at), d.ts(key.expires_at))


def delivery_ids_of(value: str) -> list[str]:
    """The ``delivery_ids`` column back to a list."""
    return [str(i) for i in json.loads(value)]


# -- endpoint failure streaks (webhooks disabled after failing too long) -----------------------

#: Start a streak unless one is running; the streak's start comes back either way.
MARK_FAILING: Final = """
    INSERT INTO webhookkit_endpoint_failures (webhook_id, failing_since) VALUES ($1, $2)
    ON CONFLICT (webhook_id) DO NOTHING"""
SELECT_FAILING: Final = (
    "SELECT failing_since FROM webhookkit_endpoint_failures WHERE webhook_id = $1"
)
CLEAR_FAILING: Final = "DELETE FROM webhookkit_endpoint_failures WHERE webhook_id = $1"


# -- retention at scale ------------------------------------------------------------------------

#: The longest pause (seconds) SQLite's ``purge`` makes between batches, so writers of other
#: processes get the database lock in between (SQLite's busy handler retries every <= 0.1 s).
PURGE_PAUSE: Final = 0.2
