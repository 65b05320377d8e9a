"""The default store: everything in process memory, lost on exit. No server, no files."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from ..apps import App, AppToken, Webhook
from ..delivery.records import (
    Attempt,
    AttemptResult,
    ClaimedBatch,
    Delivery,
    DeliveryStatus,
    Payload,
)
from ..exceptions import StoreError
from ..installations import AppInstallation
from .base import DEFAULT_KEEP_FAILED, DeliveryQuery, IdempotencyKey, StoredKey

__all__ = ["MemoryStore"]


class _DueIndex:
    """When each pending delivery becomes claimable: one heap per webhook plus a heap of
    their heads, so a claim that skips busy webhooks costs per webhook, not per delivery.

    Entries are never removed in place; a stale one (the delivery moved on) is dropped when
    it reaches the top. ``valid(due, delivery_id)`` tells whether an entry is current.
    """

    def __init__(self) -> None:
        self._by_webhook: dict[str, list[tuple[datetime, str]]] = {}
        self._heads: list[tuple[datetime, str]] = []

    def push(self, due: datetime, delivery_id: str, webhook_id: str) -> None:
        heap = self._by_webhook.setdefault(webhook_id, [])
        if not heap or due < heap[0][0]:
            heapq.heappush(self._heads, (due, webhook_id))
        heapq.heappush(heap, (due, delivery_id))

    def _top(
        self, webhook_id: str, valid: Callable[[datetime, str], bool]
    ) -> tuple[datetime, str] | None:
        heap = self._by_webhook.get(webhook_id)
        while heap and not valid(*heap[0]):
            heapq.heappop(heap)
        if not heap:
            self._by_webhook.pop(webhook_id, None)
            return None
        return heap[0]

    def first(self, valid: Callable[[datetime, str], bool]) -> datetime | None:
        while self._heads:
            due, webhook_id = self._heads[0]
            top = self._top(webhook_id, valid)
            if top is not None and top[0] == due:
                return due
            heapq.heappop(self._heads)
            if top is not None:
                heapq.heappush(self._heads, (top[0], webhook_id))
        return None

    def pop_due(
        self,
        now: datetime,
        limit: int,
        exclude: Collection[str],
        valid: Callable[[datetime, str], bool],
        per_webhook: int | None = None,
    ) -> list[str]:
        """Up to ``limit`` delivery ids due at ``now``, earliest first, skipping ``exclude``
        and taking at most ``per_webhook`` of one webhook; the caller pushes them again with
        their new (leased) time."""
        taken: list[str] = []
        skipped: list[tuple[datetime, str]] = []
        counts: dict[str, int] = {}
        while self._heads and len(taken) < limit:
            due, webhook_id = self._heads[0]
            if due > now:
                break
            heapq.heappop(self._heads)
            top = self._top(webhook_id, valid)
            if top is None:
                continue
            if top[0] != due:  # a stale head: put the real one back
                heapq.heappush(self._heads, (top[0], webhook_id))
                continue
            if webhook_id in exclude:
                skipped.append((due, webhook_id))
                continue
            if per_webhook is not None:
                count = counts.get(webhook_id, 0)
                if count >= per_webhook:
                    skipped.append((due, webhook_id))
                    continue
                counts[webhook_id] = count + 1
            heapq.heappop(self._by_webhook[webhook_id])
            taken.append(top[1])
            nxt = self._top(webhook_id, valid)
            if nxt is not None:
                heapq.heappush(self._heads, (nxt[0], webhook_id))
        for entry in skipped:
            heapq.heappush(self._heads, entry)
        return taken


class MemoryStore:
    """Dict-backed store; due deliveries are found through a heap keyed by next-try time."""

    def __init__(self) -> None:
        self._apps: dict[str, App] = {}
        self._tokens: dict[str, AppToken] = {}
        self._token_by_hash: dict[str, str] = {}
        self._webhooks: dict[str, Webhook] = {}
        self._payloads: dict[str, Payload] = {}
        self._deliveries: dict[str, Delivery] = {}
        self._attempts: dict[str, list[Attempt]] = {}
        self._due = _DueIndex()
        # Pending deliveries of ordered webhooks, per (webhook, key), in trigger order.
        self._chains: dict[tuple[str, str], deque[str]] = {}
        self._pending = 0
        self._failing: dict[str, datetime] = {}
        self._idempotency: dict[str, IdempotencyKey] = {}
        self._closed = False
        #: Bumped on every app/webhook write (see :class:`webhookkit._catalog.Catalog`).
        self.config_generation = 0

    def _check(self) -> None:
        if self._closed:
            raise StoreError("store: used after aclose()")

    # configuration -----------------------------------------------------------------------
    async def put_app(self, app: App) -> None:
        self._check()
        self._apps[app.id] = app
        self.config_generation += 1

    async def get_app(self, app_id: str) -> App | None:
        return self._apps.get(app_id)

    async def list_apps(self) -> list[App]:
        return list(self._apps.values())

    async def delete_app(self, app_id: str) -> None:
        self._check()
        self.config_generation += 1
        self._apps.pop(app_id, None)
        for token in [t for t in self._tokens.values() if t.app_id == app_id]:
            await self.delete_token(token.id)
        for webhook in [w for w in self._webhooks.values() if w.app_id == app_id]:
            del self._webhooks[webhook.id]

    async def put_token(self, token: AppToken) -> None:
        self._check()
        if self._token_by_hash.get(token.token_hash, token.id) != token.id:
            raise StoreError("token: a token with the same value already exists")
        self._tokens[token.id] = token
        self._token_by_hash[token.token_hash] = token.id

    async def find_token(self, token_hash: str) -> AppToken | None:
        token_id = self._token_by_hash.get(token_hash)
        return self._tokens.get(token_id) if token_id else None

    async def list_tokens(self, app_id: str) -> list[AppToken]:
        return [t for t in self._tokens.values() if t.app_id == app_id]

    async def delete_token(self, token_id: str) -> bool:
        self._check()
        token = self._tokens.pop(token_id, None)
        if token is None:
            return False
        self._token_by_hash.pop(token.token_hash, None)
        return True

    async def put_webhook(self, webhook: Webhook) -> None:
        self._check()
        self._webhooks[webhook.id] = webhook
        self.config_generation += 1

    async def get_webhook(self, webhook_id: str) -> Webhook | None:
        return self._webhooks.get(webhook_id)

    async def list_webhooks(self, app_id: str | None = None) -> list[Webhook]:
        return [w for w in self._webhooks.values() if app_id is None or w.app_id == app_id]

    async def delete_webhook(self, webhook_id: str) -> bool:
        self._check()
        self.config_generation += 1
        return self._webhooks.pop(webhook_id, None) is not None

    async def poll_config(self) -> None:
        """Nothing to poll: every change goes through this object."""

    async def mark_failing(self, webhook_id: str, now: datetime) -> datetime:
        self._check()
        return self._failing.setdefault(webhook_id, now)

    async def clear_failing(self, webhook_id: str) -> None:
        self._failing.pop(webhook_id, None)

    # deliveries --------------------------------------------------------------------------
    async def add_deliveries(
        self,
        payloads: Sequence[Payload],
        deliveries: Sequence[Delivery],
        *,
        idempotency_key: IdempotencyKey | None = None,
    ) -> list[str] | None:
        self._check()
        # No await from the key check to the last write: concurrent triggers with one key
        # in this event loop are serial here, so exactly one writes.
        if idempotency_key is not None:
            held = self._idempotency.get(idempotency_key.key)
            if held is not None and held.expires_at > idempotency_key.created_at:
                return list(held.delivery_ids)
        new = {p.id for p in payloads}
        for delivery in deliveries:
            if delivery.payload_id not in new and delivery.payload_id not in self._payloads:
                raise StoreError(f"delivery {delivery.id}: payload {delivery.payload_id} missing")
        for payload in payloads:
            self._payloads[payload.id] = payload
        for delivery in deliveries:
            if delivery.id in self._deliveries:
                raise StoreError(f"delivery {delivery.id}: already exists")
        for delivery in deliveries:
            self._deliveries[delivery.id] = delivery
            if delivery.status is DeliveryStatus.PENDING:
                self._pending += 1
                self._enqueue(delivery)
        if idempotency_key is not None:
            self._idempotency[idempotency_key.key] = idempotency_key
        return None

    async def find_idempotency_key(self, key: str, now: datetime) -> list[str] | None:
        self._check()
        held = self._idempotency.get(key)
        return list(held.delivery_ids) if held is not None and held.expires_at > now else None

    def _enqueue(self, delivery: Delivery) -> None:
        """Index a pending delivery; an ordered one waits behind earlier ones of its key."""
        if delivery.ordering_key is not None:
            chain = self._chains.setdefault((delivery.webhook_id, delivery.ordering_key), deque())
            chain.append(delivery.id)
            if len(chain) > 1:
                return
        self._due.push(self._due_at(delivery), delivery.id, delivery.webhook_id)

    def _dequeue(self, delivery: Delivery) -> None:
        """A delivery is final: let the next of its ordering key become due."""
        if delivery.ordering_key is None:
            return
        key = (delivery.webhook_id, delivery.ordering_key)
        chain = self._chains.get(key)
        if chain is None or delivery.id not in chain:
            return
        chain.remove(delivery.id)
        if not chain:
            del self._chains[key]
            return
        head = self._deliveries[chain[0]]
        self._due.push(self._due_at(head), head.id, head.webhook_id)

    async def get_payload(self, payload_id: str) -> Payload | None:
        return self._payloads.get(payload_id)

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        return self._deliveries.get(delivery_id)

    async def list_deliveries(self, query: DeliveryQuery | None = None) -> list[Delivery]:
        query = query or DeliveryQuery()
        found = [
            d
            for d in self._deliveries.values()
            if (query.webhook_id is None or d.webhook_id == query.webhook_id)
            and (query.status is None or d.status == query.status)
            and (query.event is None or d.event == query.event)
            and (query.created_after is None or d.created_at >= query.created_after)
            and (query.created_before is None or d.created_at < query.created_before)
        ]
        found.sort(key=lambda d: (d.created_at, d.id))
        return found[query.offset : query.offset + query.limit]

    async def list_attempts(self, delivery_id: str) -> list[Attempt]:
        return list(self._attempts.get(delivery_id, ()))

    def _due_at(self, delivery: Delivery) -> datetime:
        due = delivery.next_try_at or delivery.created_at
        if delivery.lease_until is not None and delivery.lease_until > due:
            return delivery.lease_until
        return due

    async def claim_due(
        self,
        now: datetime,
        *,
        limit: int,
        lease: timedelta,
        exclude_webhooks: Collection[str] = (),
    ) -> list[Delivery]:
        return self._claim(now, limit, lease, exclude_webhooks, None)

    async def claim_batch(
        self,
        now: datetime,
        *,
        limit: int,
        lease: timedelta,
        exclude_webhooks: Collection[str] = (),
        per_webhook: int | None = None,
    ) -> ClaimedBatch:
        claimed = self._claim(now, limit, lease, exclude_webhooks, per_webhook)
        payloads = {d.payload_id: self._payloads[d.payload_id] for d in claimed}
        return ClaimedBatch(claimed, payloads)

    def _claim(
        self,
        now: datetime,
        limit: int,
        lease: timedelta,
        exclude_webhooks: Collection[str],
        per_webhook: int | None,
    ) -> list[Delivery]:
        self._check()
        claimed: list[Delivery] = []
        if limit <= 0:
            return claimed
        due = self._due.pop_due(now, limit, exclude_webhooks, self._valid, per_webhook)
        for delivery_id in due:
            delivery = self._deliveries[delivery_id]
            leased = _with_lease(delivery, now + lease)
            self._deliveries[delivery_id] = leased
            self._due.push(now + lease, delivery_id, delivery.webhook_id)
            claimed.append(leased)
        return claimed

    def _valid(self, due: datetime, delivery_id: str) -> bool:
        """Whether a due-index entry still describes its delivery (lazy deletion)."""
        delivery = self._deliveries.get(delivery_id)
        return (
            delivery is not None
            and delivery.status is DeliveryStatus.PENDING
            and self._due_at(delivery) == due
        )

    async def next_due(self) -> datetime | None:
        return self._due.first(self._valid)

    async def count_pending(self) -> int:
        return self._pending

    async def finish_many(self, results: Sequence[AttemptResult]) -> None:
        self._check()
        for r in results:
            if r.delivery_id not in self._deliveries:
                raise StoreError(f"delivery {r.delivery_id}: not found")
        for r in results:
            recorded = self._attempts.get(r.delivery_id, ())
            if any(a.id == r.attempt.id for a in recorded):
                continue  # written before (a retried write): what is on record stays
            self._finish(r.delivery_id, r.attempt, r.status, r.next_try_at, r.now)

    async def finish_attempt(
        self,
        delivery_id: str,
        attempt: Attempt,
        *,
        status: DeliveryStatus,
        next_try_at: datetime | None,
        now: datetime,
    ) -> Delivery:
        self._check()
        return self._finish(delivery_id, attempt, status, next_try_at, now)

    def _finish(
        self,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_try_at: datetime | None,
        now: datetime,
    ) -> Delivery:
        delivery = self._deliveries.get(delivery_id)
        if delivery is None:
            raise StoreError(f"delivery {delivery_id}: not found")
        if delivery.status is not DeliveryStatus.PENDING:
            # Already final (a worker that outlived its lease finished it): keep that outcome.
            self._attempts.setdefault(delivery_id, []).append(attempt)
            return delivery
        updated = _finished_as(delivery, status, next_try_at, attempt.error, now)
        self._deliveries[delivery_id] = updated
        self._attempts.setdefault(delivery_id, []).append(attempt)
        if status is DeliveryStatus.PENDING:
            # The same due time _due_at computes, or the lazy heap would skip the entry.
            self._due.push(self._due_at(updated), delivery_id, updated.webhook_id)
        else:
            self._pending -= 1
            self._dequeue(updated)
        return updated

    async def release(self, delivery_ids: Sequence[str], *, until: datetime | None = None) -> None:
        for delivery_id in delivery_ids:
            delivery = self._deliveries.get(delivery_id)
            if delivery is not None and delivery.status is DeliveryStatus.PENDING:
                released = _with_lease(delivery, until)
                self._deliveries[delivery_id] = released
                self._due.push(self._due_at(released), delivery_id, released.webhook_id)

    async def requeue(self, delivery_id: str, now: datetime) -> Delivery | None:
        self._check()
        delivery = self._deliveries.get(delivery_id)
        if delivery is None or delivery.status is DeliveryStatus.PENDING:
            return None
        requeued = replace(
            delivery,
            status=DeliveryStatus.PENDING,
            next_try_at=now,
            lease_until=None,
            retry_base=delivery.attempts,
            requeued_at=now,
            updated_at=now,
        )
        self._deliveries[delivery_id] = requeued
        self._pending += 1
        self._enqueue(requeued)
        return requeued

    async def purge(
        self,
        now: datetime,
        keep_success: timedelta | None = None,
        keep_failed: timedelta = DEFAULT_KEEP_FAILED,
    ) -> int:
        self._check()
        gone = [
            d
            for d in self._deliveries.values()
            if (d.status is DeliveryStatus.FAILED and _finished(d) < now - keep_failed)
            or (
                d.status is DeliveryStatus.SUCCESS
                and (keep_success is None or _finished(d) < now - keep_success)
            )
        ]
        for delivery in gone:
            del self._deliveries[delivery.id]
            self._attempts.pop(delivery.id, None)
        still_used = {d.payload_id for d in self._deliveries.values()}
        for payload_id in {d.payload_id for d in gone} - still_used:
            self._payloads.pop(payload_id, None)
        for key in [k for k, held in self._idempotency.items() if held.expires_at <= now]:
            del self._idempotency[key]
        return len(gone)

    async def open(self) -> None:
        self._check()

    async def aclose(self) -> None:
        self._closed = True

    # -- app installations (webhookkit.graphql) ---------------------------------------------
    def _installation_rows(self) -> dict[str, AppInstallation]:
        # Created on first use, so this section needs nothing from ``__init__``.
        rows: dict[str, AppInstallation] | None = getattr(self, "_installations", None)
        if rows is None:
            rows = {}
            self._installations = rows
        return rows

    async def put_installation(self, installation: AppInstallation) -> None:
        self._check()
        self._installation_rows()[installation.id] = installation

    async def get_installation(self, installation_id: str) -> AppInstallation | None:
        return self._installation_rows().get(installation_id)

    async def list_installations(self) -> list[AppInstallation]:
        return sorted(self._installation_rows().values(), key=lambda i: (i.created_at, i.id))

    async def delete_installation(self, installation_id: str) -> bool:
        self._check()
        return self._installation_rows().pop(installation_id, None) is not None

    def __repr__(self) -> str:
        return (
            f"MemoryStore(apps={len(self._apps)}, webhooks={len(self._webhooks)}, "
            f"deliveries={len(self._deliveries)})"
        )

    # -- signing keys (webhookkit.keyring) -------------------------------------------
    def _key_rows(self) -> dict[str, StoredKey]:
        # Created on first use, so this section needs nothing from ``__init__``.
        rows: dict[str, StoredKey] | None = getattr(self, "_signing_keys", None)
        if rows is None:
            rows = {}
            self._signing_keys = rows
            self._signing_keys_version = 0
        return rows

    def _keys_changed(self) -> None:
        self._signing_keys_version += 1

    async def load_keys(self) -> list[StoredKey]:
        return sorted(self._key_rows().values(), key=lambda k: (k.created_at, k.kid))

    async def add_key(self, key: StoredKey, *, only_if_empty: bool) -> bool:
        self._check()
        rows = self._key_rows()
        if key.kid in rows or (only_if_empty and rows):
            return False
        if key.state == "active" and any(k.state == "active" for k in rows.values()):
            return False
        rows[key.kid] = key
        self._keys_changed()
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
        self._check()
        rows = self._key_rows()
        if kid not in rows:
            return False
        if state == "active":
            for other in [k for k in rows.values() if k.state == "active" and k.kid != kid]:
                rows[other.kid] = replace(
                    other, state="retired", retire_at=retire_active_at, updated_at=now
                )
        rows[kid] = replace(rows[kid], state=state, retire_at=retire_at, updated_at=now)
        self._keys_changed()
        return True

    async def delete_key(self, kid: str) -> bool:
        self._check()
        rows = self._key_rows()
        found = rows.get(kid)
        if found is None or found.state == "active":
            return False
        del rows[kid]
        self._keys_changed()
        return True

    async def keys_version(self) -> int:
        self._key_rows()
        return self._signing_keys_version


def _finished(delivery: Delivery) -> datetime:
    return delivery.updated_at or delivery.created_at


# The hot path's copies of a delivery, spelled out: dataclasses.replace() looks up the fields
# on every call and was the memory pipeline's largest cost per delivery.
def _with_lease(d: Delivery, until: datetime | None) -> Delivery:
    return Delivery(
        d.id,
        d.payload_id,
        d.webhook_id,
        d.app_id,
        d.event,
        d.created_at,
        d.status,
        d.next_try_at,
        d.attempts,
        until,
        d.last_error,
        d.updated_at,
        d.retry_base,
        d.requeued_at,
        d.ordering_key,
    )


def _finished_as(
    d: Delivery,
    status: DeliveryStatus,
    next_try_at: datetime | None,
    error: str | None,
    now: datetime,
) -> Delivery:
    return Delivery(
        d.id,
        d.payload_id,
        d.webhook_id,
        d.app_id,
        d.event,
        d.created_at,
        status,
        next_try_at,
        d.attempts + 1,
        None,
        error,
        now,
        d.retry_base,
        d.requeued_at,
        d.ordering_key,
    )
