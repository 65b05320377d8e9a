"""The store protocol: configuration (apps, tokens, webhooks) and the delivery records."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Protocol, runtime_checkable

from ..apps import App, AppToken, Webhook
from ..delivery.records import (
    Attempt,
    AttemptResult,
    ClaimedBatch,
    Delivery,
    DeliveryStatus,
    Payload,
)
from ..installations import AppInstallation

__all__ = [
    "DEFAULT_KEEP_FAILED",
    "IDEMPOTENCY_WINDOW",
    "DeliveryQuery",
    "IdempotencyKey",
    "KeyNotifier",
    "KeyStore",
    "Retention",
    "Store",
    "StoredKey",
    "WorkNotifier",
]

#: How long failed deliveries are kept by default (Saleor keeps them 14 days).
DEFAULT_KEEP_FAILED: Final = timedelta(days=14)
#: How long successful deliveries are kept by default (Saleor deletes them at once).
DEFAULT_KEEP_SUCCESS: Final = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Retention:
    """What the dispatcher purges every ``interval``: successes older than ``keep_success``
    (24 hours, so an operator can still look at them; None: every success, Saleor's rule)
    and failures older than ``keep_failed`` (14 days, as Saleor)."""

    keep_success: timedelta | None = DEFAULT_KEEP_SUCCESS
    keep_failed: timedelta = DEFAULT_KEEP_FAILED
    interval: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        from ._checks import check_retention  # after the class: the checks import the types

        check_retention(self)


@dataclass(frozen=True, slots=True)
class DeliveryQuery:
    """Filters for :meth:`Store.list_deliveries`; ``None`` means any."""

    webhook_id: str | None = None
    status: DeliveryStatus | None = None
    event: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        from ._checks import check_query

        check_query(self)


@runtime_checkable
class Store(Protocol):
    """Everything webhookkit persists. Every method is async; none blocks the event loop."""

    # configuration -----------------------------------------------------------------------
    async def put_app(self, app: App) -> None: ...
    async def get_app(self, app_id: str) -> App | None: ...
    async def list_apps(self) -> list[App]: ...
    async def delete_app(self, app_id: str) -> None:
        """Delete the app with its tokens and webhooks."""
        ...

    async def put_token(self, token: AppToken) -> None: ...
    async def find_token(self, token_hash: str) -> AppToken | None: ...
    async def list_tokens(self, app_id: str) -> list[AppToken]: ...
    async def delete_token(self, token_id: str) -> bool: ...

    async def put_webhook(self, webhook: Webhook) -> None: ...
    async def get_webhook(self, webhook_id: str) -> Webhook | None: ...
    async def list_webhooks(self, app_id: str | None = None) -> list[Webhook]: ...
    async def delete_webhook(self, webhook_id: str) -> bool: ...

    # deliveries --------------------------------------------------------------------------
    async def add_deliveries(
        self,
        payloads: Sequence[Payload],
        deliveries: Sequence[Delivery],
        *,
        idempotency_key: IdempotencyKey | None = None,
    ) -> list[str] | None:
        """Write payloads and their deliveries in one batch, all or nothing.

        With ``idempotency_key`` the key row (holding the ids of ``deliveries``) is written in
        the same batch, unless an unexpired row for that key exists: then nothing is written
        and the ids that row holds are returned. None means the batch was written.
        """
        ...

    async def find_idempotency_key(self, key: str, now: datetime) -> list[str] | None:
        """The delivery ids kept for ``key`` if it has not expired at ``now``, else None."""
        ...

    async def get_payload(self, payload_id: str) -> Payload | None: ...
    async def get_delivery(self, delivery_id: str) -> Delivery | None: ...
    async def list_deliveries(self, query: DeliveryQuery | None = None) -> list[Delivery]: ...
    async def list_attempts(self, delivery_id: str) -> list[Attempt]: ...

    async def claim_due(
        self,
        now: datetime,
        *,
        limit: int,
        lease: timedelta,
        exclude_webhooks: Collection[str] = (),
    ) -> list[Delivery]:
        """Up to ``limit`` pending deliveries due at ``now``, leased until ``now + lease``,
        skipping those of ``exclude_webhooks`` (endpoints that are busy or held)."""
        ...

    async def next_due(self) -> datetime | None:
        """The earliest time a pending delivery becomes claimable, or None."""
        ...

    async def finish_attempt(
        self,
        delivery_id: str,
        attempt: Attempt,
        *,
        status: DeliveryStatus,
        next_try_at: datetime | None,
        now: datetime,
    ) -> Delivery:
        """Record ``attempt``, set the delivery's status and next try, and drop its lease."""
        ...

    async def claim_batch(
        self,
        now: datetime,
        *,
        limit: int,
        lease: timedelta,
        exclude_webhooks: Collection[str] = (),
        per_webhook: int | None = None,
    ) -> ClaimedBatch:
        """Like :meth:`claim_due`, in one round trip, with the payload of every delivery;
        at most ``per_webhook`` deliveries of one webhook (None: no cap)."""
        ...

    async def finish_many(self, results: Sequence[AttemptResult]) -> None:
        """Record many finished attempts at once (one transaction): each like
        :meth:`finish_attempt`; a delivery already final keeps its outcome. A result whose
        attempt id is on record already changes nothing (the scheduler writes a batch again
        when the store did not answer, and the first write may have landed)."""
        ...

    async def count_pending(self) -> int:
        """How many deliveries are pending (for back-pressure)."""
        ...

    #: Bumped on every configuration change this store object made or learnt of; caches of
    #: apps and webhooks reload when it moves.
    config_generation: int

    async def poll_config(self) -> None:
        """Look for configuration changes made by other processes (bumps
        :attr:`config_generation` if there were any); cheap: one small read."""
        ...

    async def mark_failing(self, webhook_id: str, now: datetime) -> datetime:
        """Start the webhook's failure streak at ``now`` unless one is running; returns the
        streak's start (shared by every process)."""
        ...

    async def clear_failing(self, webhook_id: str) -> None:
        """End the webhook's failure streak (it answered well)."""
        ...

    async def release(self, delivery_ids: Sequence[str], *, until: datetime | None = None) -> None:
        """Hand back deliveries that were claimed but not attempted: claimable again at
        ``until`` (None: at once). No attempt is recorded and the retry budget is unchanged."""
        ...

    async def requeue(self, delivery_id: str, now: datetime) -> Delivery | None:
        """Make a finished delivery pending again at ``now`` with a fresh retry budget
        (Saleor's ``eventDeliveryRetry``); None if it does not exist or is still pending."""
        ...

    async def purge(
        self,
        now: datetime,
        keep_success: timedelta | None = None,
        keep_failed: timedelta = DEFAULT_KEEP_FAILED,
    ) -> int:
        """Delete finished deliveries past retention with their attempts and unshared payloads.

        Successes older than ``keep_success`` go (``None``: every success), failures older
        than ``keep_failed`` (14 days, Saleor's rule); age counts from when the delivery
        finished. Pending deliveries are never touched. Returns how many deliveries went.
        """
        ...

    # lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect and create or migrate the schema; idempotent. Every method also opens the
        store on first use, so calling this first only moves the cost (and errors) earlier."""
        ...

    async def aclose(self) -> None: ...

    # app installations (webhookkit.graphql) ------------------------------------------------
    async def put_installation(self, installation: AppInstallation) -> None:
        """Insert or replace the installation with this id."""
        ...

    async def get_installation(self, installation_id: str) -> AppInstallation | None: ...
    async def list_installations(self) -> list[AppInstallation]:
        """Every installation, oldest first."""
        ...

    async def delete_installation(self, installation_id: str) -> bool: ...


@runtime_checkable
class WorkNotifier(Protocol):
    """A store that learns of work queued by other processes (PostgreSQL's LISTEN/NOTIFY)."""

    def add_work_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (in the event loop) whenever deliveries may have become due."""
        ...

    def remove_work_listener(self, callback: Callable[[], None]) -> None: ...


# -- signing keys kept in the store (webhookkit.keyring) -------------------------------


@dataclass(frozen=True, slots=True)
class StoredKey:
    """One JWS signing key as a store keeps it.

    ``private_key`` is the PKCS#8 PEM (``encryption == "none"``) or ``nonce || AES-256-GCM
    ciphertext`` of it (``encryption == "aes-256-gcm"``); it never appears in the repr.
    ``state`` is ``next``, ``active`` or ``retired`` (:class:`webhookkit.signing.KeyState`).
    """

    kid: str
    alg: str
    state: str
    private_key: bytes = field(repr=False)
    encryption: str
    retire_at: datetime | None
    created_at: datetime
    updated_at: datetime


@runtime_checkable
class KeyStore(Protocol):
    """A store that keeps the JWS key set, so every process signs and publishes the same keys.

    Every write also bumps :meth:`keys_version`, in the same transaction; at most one key is
    ``active`` at any time (writes that would make a second one fail or do nothing).
    """

    async def load_keys(self) -> list[StoredKey]:
        """Every stored key, oldest first."""
        ...

    async def add_key(self, key: StoredKey, *, only_if_empty: bool) -> bool:
        """Insert ``key``; False (nothing written) if its kid is taken, if it is active while
        another key is, or with ``only_if_empty`` if any key is stored: of processes racing
        to create the first (active) key exactly one gets True."""
        ...

    async def update_key_state(
        self,
        kid: str,
        state: str,
        *,
        retire_at: datetime | None,
        now: datetime,
        retire_active_at: datetime | None = None,
    ) -> bool:
        """Set ``kid``'s state and date; False if there is no such key. Making it ``active``
        retires the key active until then, published until ``retire_active_at``, in the
        same transaction."""
        ...

    async def delete_key(self, kid: str) -> bool:
        """Delete ``kid`` unless it is the active key; True if a row went."""
        ...

    async def keys_version(self) -> int:
        """A number that changes whenever the stored keys change (cheap to poll)."""
        ...


@runtime_checkable
class KeyNotifier(Protocol):
    """A store that announces key changes made by other processes (PostgreSQL's NOTIFY)."""

    async def add_keys_listener(self, callback: Callable[[], None]) -> bool:
        """Call ``callback()`` in the event loop when the keys may have changed; False if
        notifications are unavailable (the caller then relies on polling)."""
        ...

    def remove_keys_listener(self, callback: Callable[[], None]) -> None: ...


# -- idempotent triggers (kit.trigger(..., idempotency_key=...)) -------------------------------

#: How long ``kit.trigger(..., idempotency_key=k)`` keeps answering with the deliveries of
#: the first trigger with ``k`` (Svix keeps an ``Idempotency-Key`` 24 hours too). Expired keys
#: are deleted by :meth:`Store.purge`.
IDEMPOTENCY_WINDOW: Final = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """The key row a trigger writes with its deliveries: ``key`` answers with
    ``delivery_ids`` until ``expires_at``."""

    key: str
    delivery_ids: tuple[str, ...]
    created_at: datetime
    expires_at: datetime

    @classmethod
    def for_trigger(cls, key: str, deliveries: Sequence[Delivery], now: datetime) -> IdempotencyKey:
        """The row a trigger at ``now`` writes for ``deliveries``, kept for the window."""
        return cls(key, tuple(d.id for d in deliveries), now, now + IDEMPOTENCY_WINDOW)
