"""The records a delivery leaves: the payload, the delivery and each attempt."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from .._sanitize import EXCERPT_LIMIT, excerpt

__all__ = [
    "EXCERPT_LIMIT",
    "Attempt",
    "AttemptResult",
    "AttemptStatus",
    "ClaimedBatch",
    "Delivery",
    "DeliveryStatus",
    "Payload",
    "excerpt",
]


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"


class AttemptStatus(enum.StrEnum):
    SUCCESS = "success"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Payload:
    """One body, shared by every delivery whose webhook got the same bytes."""

    id: str
    event: str
    body: bytes = field(repr=False)
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one webhook; ``next_try_at`` is when the scheduler may send it next."""

    id: str
    payload_id: str
    webhook_id: str
    app_id: str
    event: str
    created_at: datetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    next_try_at: datetime | None = None
    attempts: int = 0
    lease_until: datetime | None = None
    last_error: str | None = None
    updated_at: datetime | None = None
    #: A manual retry starts a fresh budget: attempts made before it, and when it happened.
    retry_base: int = 0
    requeued_at: datetime | None = None
    #: For webhooks with ``ordered=True``: deliveries sharing a key are sent one at a time,
    #: in trigger order (None: not ordered).
    ordering_key: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status is not DeliveryStatus.PENDING


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try: outcome, HTTP status if any, duration, redacted headers, response excerpt."""

    id: str
    delivery_id: str
    number: int
    created_at: datetime
    status: AttemptStatus
    duration: float
    response_status_code: int | None = None
    response_excerpt: str = ""
    request_headers: tuple[tuple[str, str], ...] = ()
    response_headers: tuple[tuple[str, str], ...] = ()
    error_kind: str | None = None
    error: str | None = None
    retryable: bool = False


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """One finished attempt as the store records it: the attempt row and the delivery's new
    status, next try (pending) and update time. Stores write many in one batch."""

    delivery_id: str
    attempt: Attempt
    status: DeliveryStatus
    next_try_at: datetime | None
    now: datetime


@dataclass(frozen=True, slots=True)
class ClaimedBatch:
    """What one claim hands a worker: the leased deliveries, in due order, and the payload of
    each (by id), so nothing more is read before sending."""

    deliveries: list[Delivery]
    payloads: dict[str, Payload]
