"""SQLite: each batch operation of the delivery path as one statement.

The store's thread gives up the GIL around every statement it steps and must take it back
afterwards; while the event loop's thread is busy sending, each of those hand-overs waits for
it. Measured in the end-to-end benchmark, ``BEGIN IMMEDIATE`` alone (no work) took 0.85 ms of
wall time for 0.06 ms of CPU. So the trigger's insert, the claim and the finish are each
written as one ``INSERT`` into a connection-local (``TEMP``) view whose ``INSTEAD OF``
trigger does the work: one statement is one transaction, atomic as the ``BEGIN`` ... ``COMMIT``
it replaces, and a write statement takes SQLite's write lock when it starts (with the busy
timeout), so it cannot deadlock on a lock upgrade either.

The objects are ``TEMP``: they live in this store's own connection only, so the database
file's schema (and its migrations) does not change and a host's connection to the same file
(the outbox) never sees them. SQLite refuses ``WITH`` inside a trigger, hence the nested
subqueries.
"""

# ruff: noqa: S608
# S608: every SQL text here is assembled from constants (this module's and _sql's) and
# placeholder lists; values always travel as bound parameters.

from __future__ import annotations

from typing import Final

from . import _sql as q

__all__ = [
    "ADD_DELIVERIES",
    "CLAIM",
    "CLAIMED",
    "FINISH",
    "MISSING_DELIVERY",
    "TEMP_OBJECTS",
    "add_deliveries_sql",
]

#: The message the finish trigger aborts with when a result names no delivery.
MISSING_DELIVERY: Final = "webhookkit: finish names a delivery that does not exist"


def _from_new(sql: str, names: dict[str, str]) -> str:
    """``sql`` with its ``?n`` parameters replaced by the trigger row's ``NEW.column``."""
    # Highest numbers first, so that ?1 never eats the start of ?12.
    for mark in sorted(names, key=lambda m: -len(m)):
        sql = sql.replace(mark, f"NEW.{names[mark]}")
    return sql


_PICKS: Final = f"""
    SELECT id, due_at FROM (
        SELECT id, due_at,
            row_number() OVER (PARTITION BY webhook_id ORDER BY due_at, id) AS rn
        FROM (
            -- Named: without statistics SQLite would take the status index and sort every
            -- pending row on each claim.
            SELECT id, webhook_id, due_at
            FROM webhookkit_deliveries AS d INDEXED BY webhookkit_deliveries_due
            WHERE status = 'pending' AND due_at <= NEW.now
              AND NOT ({q.SQLITE.in_ids("webhook_id", "NEW.excluded")})
              AND {q._ELIGIBLE.format(seq_col=q.SQLITE.types["seq_col"])}
            ORDER BY due_at, id LIMIT NEW.scan))
    WHERE rn <= NEW.per_webhook ORDER BY due_at, id LIMIT NEW.size"""

_FINISH_UPDATE: Final = _from_new(q.FINISH_MANY_SQLITE, {"?1": "finishes"})
_ATTEMPTS_INSERT: Final = _from_new(q.INSERT_ATTEMPTS_SQLITE, {"?1": "attempts"})
_DELIVERIES_INSERT: Final = _from_new(q.INSERT_DELIVERIES_SQLITE, {"?1": "deliveries"})

TEMP_OBJECTS: Final = (
    # The ids (and due times) of the last claim, read back by CLAIMED.
    "CREATE TEMP TABLE webhookkit_claimed (id TEXT PRIMARY KEY, due_at INTEGER NOT NULL)",
    """CREATE TEMP VIEW webhookkit_claim (now, size, excluded, scan, per_webhook, until)
        AS SELECT NULL, NULL, NULL, NULL, NULL, NULL""",
    f"""CREATE TEMP TRIGGER webhookkit_claim INSTEAD OF INSERT ON webhookkit_claim BEGIN
        DELETE FROM webhookkit_claimed;
        INSERT INTO webhookkit_claimed (id, due_at) {_PICKS};
        UPDATE webhookkit_deliveries SET lease_until = NEW.until, due_at = NEW.until
            WHERE id IN (SELECT id FROM webhookkit_claimed);
    END""",
    """CREATE TEMP VIEW webhookkit_finish (finishes, attempts, distinct_ids)
        AS SELECT NULL, NULL, NULL""",
    f"""CREATE TEMP TRIGGER webhookkit_finish INSTEAD OF INSERT ON webhookkit_finish BEGIN
        SELECT RAISE(ABORT, '{MISSING_DELIVERY}')
            WHERE (SELECT count(*) FROM webhookkit_deliveries
                   WHERE {q.SQLITE.in_ids("id", "NEW.distinct_ids")})
                <> json_array_length(NEW.distinct_ids);
        {_FINISH_UPDATE};
        {_ATTEMPTS_INSERT};
    END""",
    # One row per payload; the last row carries every delivery (the payloads they refer to
    # are written by then: the rows of one INSERT are taken in order). json_each(NULL) is
    # empty, so the rows before it insert no delivery.
    """CREATE TEMP VIEW webhookkit_add (id, event, body, created_at, deliveries)
        AS SELECT NULL, NULL, NULL, NULL, NULL""",
    f"""CREATE TEMP TRIGGER webhookkit_add INSTEAD OF INSERT ON webhookkit_add BEGIN
        INSERT INTO webhookkit_payloads ({q.PAYLOAD_COLUMNS})
            VALUES (NEW.id, NEW.event, NEW.body, NEW.created_at);
        {_DELIVERIES_INSERT};
    END""",
)

#: ``(now, size, excluded ids JSON, rows to scan, cap per webhook, lease end)``.
CLAIM: Final = (
    "INSERT INTO webhookkit_claim (now, size, excluded, scan, per_webhook, until) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
# The claimed rows and their payloads as two JSON values of one row (one step). A payload's
# body is a BLOB, which JSON cannot hold: it travels as hex. ``claimed_due`` is when each was
# due before the claim moved its due_at to the lease's end: the batch's order.
_CLAIMED_PAIRS: Final = ", ".join(
    f"'{c.strip()}', d.{c.strip()}" for c in q.DELIVERY_COLUMNS.split(",")
)
CLAIMED: Final = f"""
    SELECT
        (SELECT json_group_array(json_object({_CLAIMED_PAIRS}, 'claimed_due', c.due_at))
         FROM webhookkit_claimed AS c JOIN webhookkit_deliveries AS d ON d.id = c.id
        ) AS claimed,
        (SELECT json_group_array(json_array(p.id, p.event, hex(p.body), p.created_at))
         FROM webhookkit_payloads AS p WHERE p.id IN (
            SELECT d.payload_id FROM webhookkit_claimed AS c
            JOIN webhookkit_deliveries AS d ON d.id = c.id)
        ) AS payloads"""
#: ``(finish rows JSON, attempt rows JSON, distinct delivery ids JSON)``.
FINISH: Final = "INSERT INTO webhookkit_finish (finishes, attempts, distinct_ids) VALUES (?, ?, ?)"


def add_deliveries_sql(payloads: int) -> str:
    """The insert of ``payloads`` payload rows (5 parameters each: the payload's four
    columns, then the deliveries' JSON rows on the last row and NULL before it)."""
    rows = ", ".join(["(?, ?, ?, ?, ?)"] * payloads)
    return f"INSERT INTO webhookkit_add (id, event, body, created_at, deliveries) VALUES {rows}"


ADD_DELIVERIES: Final = add_deliveries_sql(1)
