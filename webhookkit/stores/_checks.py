"""Validation of the store's value types (:class:`DeliveryQuery`, :class:`Retention`).

Every refusal is an :class:`~webhookkit.exceptions.InvalidFieldError` naming the field, raised
when the value is built, so a bad filter never reaches SQL and a bad retention never starts a
purge loop (a zero interval would spin the event loop).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .._sanitize import first_unstorable
from ..delivery.records import DeliveryStatus
from ..exceptions import InvalidFieldError

if TYPE_CHECKING:
    from .base import DeliveryQuery, Retention

__all__ = ["MAX_LIMIT", "MAX_OFFSET", "check_query", "check_retention"]

#: The most deliveries one query returns.
MAX_LIMIT = 10_000
#: SQLite and PostgreSQL take 64-bit integers.
MAX_OFFSET = 2**63 - 1
#: Longer than any retention needs; ``now - keep`` must stay a valid datetime.
MAX_KEEP = timedelta(days=100 * 366)
MIN_INTERVAL = timedelta(seconds=1)
_STATUSES = sorted(s.value for s in DeliveryStatus)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_query(query: DeliveryQuery) -> None:
    """Refuse a filter of the wrong type or range; ``status`` given as ``"failed"`` becomes
    :attr:`DeliveryStatus.FAILED` (so every store compares the same thing)."""
    for name in ("webhook_id", "app_id", "event"):
        value = getattr(query, name, None)
        if value is None:
            continue
        if not isinstance(value, str) or first_unstorable(value) is not None:
            raise InvalidFieldError(
                f"{name}: must be a string (without control characters) or None", field=name
            )
    status = query.status
    if status is not None:
        try:
            status = DeliveryStatus(status)
        except (ValueError, TypeError):
            shown = repr(status)[:40]
            raise InvalidFieldError(
                f"status: {shown} is not a delivery status (one of {_STATUSES})", field="status"
            ) from None
        object.__setattr__(query, "status", status)
    for name in ("created_after", "created_before"):
        value = getattr(query, name)
        if value is None:
            continue
        if not isinstance(value, datetime) or value.utcoffset() is None:
            raise InvalidFieldError(
                f"{name}: must be a timezone-aware datetime or None", field=name
            )
    if not _is_int(query.limit) or not 1 <= query.limit <= MAX_LIMIT:
        raise InvalidFieldError(f"limit: must be an integer from 1 to {MAX_LIMIT}", field="limit")
    if not _is_int(query.offset) or not 0 <= query.offset <= MAX_OFFSET:
        raise InvalidFieldError("offset: must be an integer >= 0", field="offset")


def _check_span(name: str, value: object, *, minimum: timedelta) -> None:
    if not isinstance(value, timedelta):
        raise InvalidFieldError(
            f"retention: {name} must be a timedelta, got {type(value).__name__}", field=name
        )
    if not minimum <= value <= MAX_KEEP:
        raise InvalidFieldError(
            f"retention: {name} must be from {minimum} to {MAX_KEEP.days} days", field=name
        )


def check_retention(retention: Retention) -> None:
    """``keep_success`` (or None) and ``keep_failed`` >= 0, ``interval`` >= 1 s, all
    timedeltas of at most a century."""
    if retention.keep_success is not None:
        _check_span("keep_success", retention.keep_success, minimum=timedelta(0))
    _check_span("keep_failed", retention.keep_failed, minimum=timedelta(0))
    _check_span("interval", retention.interval, minimum=MIN_INTERVAL)
