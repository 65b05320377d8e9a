"""The PostgreSQL store's statements for pending deliveries: claims, finishes, release, requeue.

Since migration 13 a pending delivery's scheduling state (due time, lease, ordering key and
sequence) is its row in ``webhookkit_queue``; the delivery row keeps the record (status,
attempts, times), and no index covers a column a finish or a claim changes. A claim locks and
leases queue rows and reads their deliveries by primary key; a finish updates the deliveries
(HOT updates: no index entries), deletes the queue rows of those that ended and moves those
that wait for a retry, all in one statement. Reads of a delivery take ``due_at`` and
``lease_until`` from its queue row (none once it is finished).
"""

# ruff: noqa: S608
# S608: every SQL text here is assembled from this module's and ._sql's constants; values
# are always bound as parameters.

from __future__ import annotations

from typing import Any, Final

from ..delivery.records import Delivery
from ._sql import (
    _DELIVERY_STATUS,
    ATTEMPT_COLUMNS,
    DELIVERY_COLUMNS,
    FINISH_DELIVERY,
    FINISHED_TYPE,
    POSTGRES,
    QUEUE_FROM,
    QUEUE_TABLE,
    _insert,
    delivery_filters,
)
from .base import DeliveryQuery

__all__ = [
    "CLAIM_BATCH",
    "CLAIM_DUE",
    "COUNT_PENDING",
    "FINISH_ATTEMPT",
    "FINISH_MANY",
    "FINISH_MANY_PARTITIONED",
    "NEXT_DUE",
    "RELEASE",
    "RELEASE_UNKNOWN_CLAIMS",
    "REQUEUE",
    "SELECT_DELIVERY",
    "claimed_delivery",
    "list_pending_sql",
    "with_queue_state",
]

_COLUMNS: Final = tuple(c.strip() for c in DELIVERY_COLUMNS.split(","))
#: Kept in the queue row while pending; the delivery row's copies are not read.
_QUEUED: Final = frozenset({"due_at", "lease_until"})


def _columns(delivery: str, queue: str) -> str:
    """The delivery columns, ``due_at`` and ``lease_until`` from the queue row."""
    return ", ".join(f"{queue if c in _QUEUED else delivery}.{c}" for c in _COLUMNS)


def with_queue_state(select: str, order: str = "") -> str:
    """``select`` (of DELIVERY_COLUMNS from the deliveries) with each row's scheduling state
    from its queue row; ``order`` (``ORDER BY ...`` over ``d``) keeps the rows' order."""
    return (
        f"SELECT {_columns('d', 'q')} FROM ({select}) AS d "
        f"LEFT JOIN {QUEUE_TABLE} AS q ON q.id = d.id {order}"
    )


def claimed_delivery(row: Any) -> Delivery:
    """A claim's row (DELIVERY_COLUMNS first, in order) as a Delivery, positionally: asyncpg
    hands back timestamps as aware UTC datetimes and integers as ints, so this skips what
    :func:`~webhookkit.stores._sql.row_to_delivery` converts (a claim maps every row it
    leases; keyword construction cost half again as much)."""
    return Delivery(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        _DELIVERY_STATUS[row[6]],
        row[7],
        row[8],
        row[9],
        row[10],
        row[11],
        # row[12] is due_at, which a Delivery does not carry
        row[13],
        row[14],
        row[15],
    )


def list_pending_sql(query: DeliveryQuery) -> tuple[str, list[Any]]:
    """Pending deliveries listed from the queue (no index on the deliveries' status since
    migration 13): only pending rows are read, however many finished ones the table keeps.
    Same filters and order (creation, then id) as any other listing."""
    args: list[Any] = []
    where = delivery_filters(POSTGRES, query, args, lambda c: f"{_FILTER_FROM.get(c, 'd')}.{c}")
    args += [query.limit, query.offset]
    # OFFSET 0 keeps the lookup a subquery run per queue row, by primary key: as a join, a
    # planner misled by stale statistics hashed the whole deliveries table instead.
    text = (
        f"SELECT {_columns('d', 'q')} FROM {QUEUE_TABLE} AS q "
        "CROSS JOIN LATERAL (SELECT * FROM webhookkit_deliveries AS x "
        "WHERE x.id = q.id AND x.created_at = q.created_at OFFSET 0) AS d "
        f"WHERE {' AND '.join(where)} ORDER BY q.created_at, q.id "
        f"LIMIT ${len(args) - 1} OFFSET ${len(args)}"
    )
    return text, args


#: Filtered columns a pending listing reads from the queue row (the rest from the delivery).
_FILTER_FROM: Final = {"webhook_id": "q", "created_at": "q"}


SELECT_DELIVERY: Final = (
    f"SELECT {_columns('d', 'q')} FROM webhookkit_deliveries AS d "
    f"LEFT JOIN {QUEUE_TABLE} AS q ON q.id = d.id WHERE d.id = $1"
)
COUNT_PENDING: Final = f"SELECT count(*) AS n FROM {QUEUE_TABLE}"

# An ordered delivery is claimable only while no earlier one of its webhook and key is
# pending, that is, queued.
_ELIGIBLE: Final = f"""(q.ordering_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM {QUEUE_TABLE} AS e
          WHERE e.webhook_id = q.webhook_id AND e.ordering_key = q.ordering_key
            AND e.seq < q.seq))"""
# A claim sets the lease, which no index holds: the queue row's new version stays on its page
# without index entries (HOT; the table keeps room for it). Its due_at stays where it was:
# claims skip rows leased past $1 instead.
_NOT_LEASED: Final = "(q.lease_until IS NULL OR q.lease_until <= $1)"
_DUE: Final = f"""
        SELECT q.id, q.webhook_id, q.due_at FROM {QUEUE_TABLE} AS q
        WHERE q.due_at <= $1 AND NOT (q.webhook_id = ANY($4::text[])) AND {_NOT_LEASED}
          AND {_ELIGIBLE}
        ORDER BY q.due_at, q.id"""
# The leased queue rows' deliveries, one primary-key lookup each (created_at lets a
# partitioned table look in one partition).
_CLAIMED: Final = """
    u CROSS JOIN LATERAL (SELECT * FROM webhookkit_deliveries AS d
        WHERE d.id = u.id AND d.created_at = u.created_at) AS x"""

# Parameters: now, limit, lease end, webhooks to skip.
CLAIM_DUE: Final = f"""
    WITH due AS ({_DUE} LIMIT $2
        FOR UPDATE OF q SKIP LOCKED
    ), u AS (
        UPDATE {QUEUE_TABLE} AS q SET lease_until = $3 FROM due WHERE q.id = due.id
        RETURNING q.id, q.created_at, q.due_at, q.lease_until
    )
    SELECT {_columns("x", "u")}, u.due_at AS claimed_due FROM {_CLAIMED}"""

# Batched claims: a window over the first due rows caps each webhook's share of a batch, so a
# backlog for one endpoint cannot fill it; the payload body comes along, once per payload.
# Parameters: those of CLAIM_DUE, the window, the most per webhook.
CLAIM_BATCH: Final = f"""
    WITH due AS ({_DUE} LIMIT $5
    ), ranked AS (
        SELECT id, due_at,
            row_number() OVER (PARTITION BY webhook_id ORDER BY due_at, id) AS rn
        FROM due
    ), pick AS (
        -- One primary-key lookup and lock per chosen row, in due order, until the batch is
        -- full: the plan cannot depend on the (often stale) statistics of a queue table. A
        -- plain join here let the planner loop over every due row for every due row.
        SELECT l.id
        FROM (SELECT id, due_at FROM ranked WHERE rn <= $6 ORDER BY due_at, id) AS r
        CROSS JOIN LATERAL (
            SELECT q.id FROM {QUEUE_TABLE} AS q
            -- Re-checked on the row's newest version when another worker just claimed,
            -- retried or finished it (EvalPlanQual): a lease, a moved due_at or a deleted
            -- row means it is not ours.
            WHERE q.id = r.id AND q.due_at = r.due_at AND {_NOT_LEASED}
            FOR UPDATE OF q SKIP LOCKED
        ) AS l
        LIMIT $2
    ), u AS (
        UPDATE {QUEUE_TABLE} AS q SET lease_until = $3
        WHERE q.id = ANY(ARRAY(SELECT id FROM pick))
        RETURNING q.id, q.created_at, q.due_at, q.lease_until
    ), n AS (
        SELECT {_columns("x", "u")},
            row_number() OVER (PARTITION BY x.payload_id ORDER BY x.id) AS rn
        FROM {_CLAIMED}
    )
    -- No join: each payload is read once, by primary key, on its first delivery's row (a join
    -- of these CTEs is planned from guessed row counts and became a loop over both). Batch
    -- order is by the time each delivery was due to be tried.
    SELECT {", ".join("n." + c for c in _COLUMNS)},
        CASE WHEN n.rn = 1 THEN (SELECT p.created_at FROM webhookkit_payloads AS p
            WHERE p.id = n.payload_id) END AS payload_created_at,
        CASE WHEN n.rn = 1 THEN (SELECT p.body FROM webhookkit_payloads AS p
            WHERE p.id = n.payload_id) END AS body
    FROM n ORDER BY COALESCE(n.next_try_at, n.created_at), n.id"""

# A row is due at the later of its due_at and its lease's end. Every row due_at-ordered
# before the first one not leased past its due_at is leased past it, so the earliest is that
# first row or the earliest lease end among those before it; both are ranges of the due index.
# (The first in due order, not MIN(): MIN over a filtered set reads every row.)
NEXT_DUE: Final = f"""
    WITH free AS (
        SELECT q.due_at FROM {QUEUE_TABLE} AS q
        WHERE (q.lease_until IS NULL OR q.lease_until <= q.due_at) AND {_ELIGIBLE}
        ORDER BY q.due_at LIMIT 1
    )
    SELECT LEAST((SELECT due_at FROM free), (
        SELECT min(q.lease_until) FROM {QUEUE_TABLE} AS q
        WHERE q.lease_until > q.due_at
          AND q.due_at < COALESCE((SELECT due_at FROM free), 'infinity') AND {_ELIGIBLE}
    )) AS due"""


def _sync_queue(changed: str) -> str:
    """CTEs that bring the queue in line with the finished deliveries in ``changed`` (a CTE
    returning id, status, due_at): an ended one leaves the queue, a retried one moves to its
    next try, unleased. Looked up by primary key (``ANY(ARRAY(...))``), never by a join the
    planner might answer with a scan of the queue."""
    return f"""gone AS (
        DELETE FROM {QUEUE_TABLE} AS q
        WHERE q.id = ANY(ARRAY(SELECT id FROM {changed} WHERE status <> 'pending'))
        RETURNING 1
    ), moved AS (
        UPDATE {QUEUE_TABLE} AS q SET due_at = c.due_at, lease_until = NULL
        FROM {changed} AS c
        WHERE q.id = ANY(ARRAY(SELECT id FROM {changed} WHERE status = 'pending'))
          AND q.id = c.id
        RETURNING 1
    )"""


# The attempt, the delivery's new state and its queue row in one statement, one round trip
# (no BEGIN/COMMIT). Parameters: those of FINISH_DELIVERY, then the attempt's from $6.
FINISH_ATTEMPT: Final = f"""
    WITH attempt AS ({_insert("webhookkit_attempts", ATTEMPT_COLUMNS, 6)} RETURNING 1),
    f AS ({FINISH_DELIVERY}), {_sync_queue("f")}
    SELECT * FROM f"""


def _finish_many(partitioned: bool) -> str:
    """Finishing many attempts in one statement, from one array of FINISHED_TYPE rows: the
    attempts inserted, the deliveries' new states, their queue rows; only deliveries still
    pending change (a late attempt keeps the final outcome). No foreign key from attempts to
    deliveries (migration 11): an attempt takes its ``delivery_id`` (plain layout) or its
    ``delivery_created_at`` (partitioned) from the delivery row, so an unknown delivery gives
    NULL, which NOT NULL refuses."""
    lookup = "(SELECT x.{} FROM webhookkit_deliveries AS x WHERE x.id = r.delivery_id)"
    delivery = "r.delivery_id" if partitioned else lookup.format("id")
    extra_column = ", delivery_created_at" if partitioned else ""
    extra_value = f", {lookup.format('created_at')}" if partitioned else ""
    return f"""
    WITH r AS (SELECT * FROM unnest($1::{FINISHED_TYPE}[])
    ), a AS (
        INSERT INTO webhookkit_attempts ({ATTEMPT_COLUMNS}{extra_column})
        SELECT r.attempt_id, {delivery}, r.number, r.created_at, r.attempt_status, r.duration,
            r.response_status_code, r.response_excerpt, r.request_headers, r.response_headers,
            r.error_kind, r.error, r.retryable{extra_value}
        FROM r
        RETURNING 1
    ), f AS (
        UPDATE webhookkit_deliveries AS d SET
            status = r.status, attempts = d.attempts + 1, next_try_at = r.next_try_at,
            lease_until = NULL, last_error = r.error, updated_at = r.finished_at,
            due_at = CASE WHEN r.status = 'pending' THEN COALESCE(r.next_try_at, d.created_at)
                ELSE NULL END
        FROM r WHERE d.id = r.delivery_id AND d.id = ANY(ARRAY(SELECT delivery_id FROM r))
            AND d.status NOT IN ('success', 'failed')
        RETURNING d.id, d.status, d.due_at
    ), {_sync_queue("f")}
    SELECT count(*) FROM f"""


#: Parameter: :func:`~webhookkit.stores._sql.finished_rows` of the results.
FINISH_MANY: Final = _finish_many(partitioned=False)
FINISH_MANY_PARTITIONED: Final = _finish_many(partitioned=True)

# Hand back pending deliveries ($1), claimable again at $2 (NULL: at once).
RELEASE: Final = f"""
    UPDATE {QUEUE_TABLE} AS q SET lease_until = $2, due_at = CASE
        WHEN $2 > COALESCE(d.next_try_at, d.created_at) THEN $2
        ELSE COALESCE(d.next_try_at, d.created_at) END
    FROM webhookkit_deliveries AS d
    WHERE q.id = ANY($1::text[]) AND d.id = q.id AND d.created_at = q.created_at"""

# The rows claims of unknown outcome leased, if they committed: due by the time of the last
# of them ($2) and leased until exactly one of their lease ends ($1). They are claimable again
# at once instead of after their lease (through the due index, no scan of the table).
RELEASE_UNKNOWN_CLAIMS: Final = f"""
    UPDATE {QUEUE_TABLE} AS q SET lease_until = NULL
    WHERE q.due_at <= $2 AND q.lease_until = ANY($1::timestamptz[])"""

# A manual retry: a finished delivery becomes pending now, with a fresh retry budget, and
# queued again.
REQUEUE: Final = f"""
    WITH r AS (
        UPDATE webhookkit_deliveries SET
            status = 'pending', next_try_at = $2, lease_until = NULL, due_at = $2,
            retry_base = attempts, requeued_at = $2, updated_at = $2
        WHERE id = $1 AND status <> 'pending'
        RETURNING {DELIVERY_COLUMNS}, seq
    ), queued AS ({QUEUE_FROM.format(source="r")} RETURNING 1)
    SELECT {DELIVERY_COLUMNS} FROM r"""
