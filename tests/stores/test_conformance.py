"""One behaviour suite for every store: memory (the reference), SQLite and PostgreSQL.

Every test gets the ``store`` fixture four times (PostgreSQL unpartitioned and partitioned by
day); times are passed explicitly, so leases and retries are tested without sleeping.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from stores.factories import LEASE, SECRET, T0, at, attempt, delivery, finish, payload, queue
from webhookkit import (
    App,
    AppToken,
    DeliveryQuery,
    DeliveryStatus,
    Secret,
    StoreError,
    Timeouts,
    Webhook,
)
from webhookkit.delivery.records import AttemptResult
from webhookkit.stores import Store

# -- configuration --------------------------------------------------------------------------


async def test_app_round_trip_update_and_delete_with_its_tokens_and_webhooks(
    store: Store,
) -> None:
    app = App(
        id="a1",
        name="Shop app",
        permissions=frozenset({"MANAGE_ORDERS", "MANAGE_USERS"}),
        identifier="com.example.app",
        created_at=T0,
    )
    other = App(id="a2", name="Other", is_active=False)
    await store.put_app(app)
    await store.put_app(other)
    assert await store.get_app("a1") == app
    assert await store.get_app("a2") == other
    assert await store.get_app("nope") is None
    renamed = replace(app, name="Renamed", permissions=frozenset())
    await store.put_app(renamed)
    assert await store.get_app("a1") == renamed
    assert sorted(a.id for a in await store.list_apps()) == ["a1", "a2"]

    await store.put_token(AppToken("t1", "a1", "ci", "hash-1", "abcd", T0))
    await store.put_webhook(Webhook(id="w1", app_id="a1", target_url="https://x.test/"))
    await store.put_webhook(Webhook(id="w2", app_id="a2", target_url="https://y.test/"))
    await store.delete_app("a1")
    assert await store.get_app("a1") is None
    assert await store.list_tokens("a1") == []
    assert await store.find_token("hash-1") is None
    assert [w.id for w in await store.list_webhooks()] == ["w2"]
    assert await store.get_app("a2") == other


async def test_tokens_are_found_by_hash_and_a_hash_is_unique(store: Store) -> None:
    token = AppToken("t1", "a1", "ci", "hash-1", "abcd", T0)
    await store.put_token(token)
    await store.put_token(AppToken("t2", "a1", "deploy", "hash-2", "wxyz"))
    await store.put_token(AppToken("t3", "a2", "other", "hash-3", "qrst"))
    assert await store.find_token("hash-1") == token
    assert await store.find_token("hash-x") is None
    assert sorted(t.id for t in await store.list_tokens("a1")) == ["t1", "t2"]

    with pytest.raises(StoreError, match="same value"):
        await store.put_token(AppToken("t9", "a1", "copy", "hash-1", "abcd"))
    assert await store.find_token("hash-1") == token
    renamed = replace(token, name="renamed")
    await store.put_token(renamed)  # the same token again is an update, not a duplicate
    assert await store.find_token("hash-1") == renamed

    assert await store.delete_token("t1") is True
    assert await store.delete_token("t1") is False
    assert await store.find_token("hash-1") is None
    await store.put_token(AppToken("t9", "a1", "reuse", "hash-1", "abcd"))
    assert (await store.find_token("hash-1")) is not None


async def test_webhook_round_trip_keeps_every_field(store: Store) -> None:
    full = Webhook(
        id="w1",
        app_id="a1",
        target_url="https://user:pw@hooks.example.com/in?x=1",
        name="orders",
        is_active=False,
        events=frozenset({"order_created", "order_updated"}),
        subscription_query="subscription { event { ... on OrderCreated { order { id } } } }",
        secret_key=Secret(SECRET),
        custom_headers=(("x-one", "1"), ("authorization", "Bearer abc")),
        query_events=frozenset({"order_created"}),
        signing_profile="standard-webhooks",
        timeouts=Timeouts(connect=1.5, total=7.25),
        created_at=T0,
    )
    bare = Webhook(id="w2", app_id="a1", target_url="https://x.test/")
    elsewhere = Webhook(id="w3", app_id="a2", target_url="awssqs://queue")
    for webhook in (full, bare, elsewhere):
        await store.put_webhook(webhook)

    loaded = await store.get_webhook("w1")
    assert loaded == full
    assert loaded is not None
    assert isinstance(loaded.secret_key, Secret)
    assert loaded.secret_key.reveal() == SECRET
    assert loaded.custom_headers == full.custom_headers  # order kept
    assert await store.get_webhook("w2") == bare
    assert await store.get_webhook("nope") is None
    assert sorted(w.id for w in await store.list_webhooks("a1")) == ["w1", "w2"]
    assert sorted(w.id for w in await store.list_webhooks()) == ["w1", "w2", "w3"]

    updated = replace(
        full, secret_key=None, timeouts=None, custom_headers=(), signing_profile="saleor"
    )
    await store.put_webhook(updated)
    assert await store.get_webhook("w1") == updated
    assert await store.delete_webhook("w1") is True
    assert await store.delete_webhook("w1") is False
    assert await store.get_webhook("w1") is None


# -- queuing and reading ---------------------------------------------------------------------


async def test_deliveries_and_payload_round_trip(store: Store) -> None:
    body = bytes(range(256)) + "ünïcode".encode()
    made = [delivery("d1"), delivery("d2", webhook="w2", next_try=None)]
    await store.add_deliveries([payload("p1", body)], made)
    assert await store.get_payload("p1") == payload("p1", body)
    loaded = await store.get_payload("p1")
    assert loaded is not None and loaded.body == body
    assert await store.get_delivery("d1") == made[0]
    assert await store.get_delivery("d2") == made[1]
    assert await store.get_delivery("nope") is None
    assert await store.get_payload("nope") is None
    # A later batch may refer to a payload stored earlier.
    await store.add_deliveries([], [delivery("d3", "p1")])
    assert (await store.get_delivery("d3")) == delivery("d3", "p1")


async def test_a_batch_naming_an_unknown_payload_writes_nothing(store: Store) -> None:
    with pytest.raises(StoreError, match="payload"):
        await store.add_deliveries(
            [payload("p1")], [delivery("d1", "p1"), delivery("d2", "missing")]
        )
    assert await store.get_payload("p1") is None
    assert await store.get_delivery("d1") is None
    assert await store.claim_due(at(10), limit=10, lease=LEASE) == []


async def test_list_deliveries_filters_orders_and_pages(store: Store) -> None:
    await store.add_deliveries(
        [payload("p1")],
        [
            delivery("d1", webhook="w1", event="order_created", created=0),
            delivery("d2", webhook="w2", event="order_created", created=10),
            delivery("d3", webhook="w1", event="order_updated", created=20),
            delivery("d4", webhook="w1", event="order_created", created=30),
            delivery("d5", webhook="w2", event="order_updated", created=30),
        ],
    )
    await finish(store, "d2", DeliveryStatus.SUCCESS, when=11)
    await finish(store, "d3", DeliveryStatus.FAILED, when=21)

    async def ids(**kw: object) -> list[str]:
        return [d.id for d in await store.list_deliveries(DeliveryQuery(**kw))]  # type: ignore[arg-type]

    assert [d.id for d in await store.list_deliveries()] == ["d1", "d2", "d3", "d4", "d5"]
    assert await ids(webhook_id="w1") == ["d1", "d3", "d4"]
    assert await ids(status=DeliveryStatus.PENDING) == ["d1", "d4", "d5"]
    assert await ids(status=DeliveryStatus.PENDING, webhook_id="w1") == ["d1", "d4"]
    assert await ids(status=DeliveryStatus.PENDING, event="order_updated") == ["d5"]
    assert await ids(status=DeliveryStatus.PENDING, created_after=at(10)) == ["d4", "d5"]
    assert await ids(status=DeliveryStatus.PENDING, created_before=at(30)) == ["d1"]
    assert await ids(status=DeliveryStatus.PENDING, limit=1, offset=1) == ["d4"]
    assert await ids(status="pending", webhook_id="w2") == ["d5"]
    assert await ids(status=DeliveryStatus.SUCCESS) == ["d2"]
    assert await ids(status=DeliveryStatus.FAILED) == ["d3"]
    assert await ids(event="order_updated") == ["d3", "d5"]
    assert await ids(webhook_id="w1", event="order_created") == ["d1", "d4"]
    # created_after is inclusive, created_before exclusive
    assert await ids(created_after=at(10), created_before=at(30)) == ["d2", "d3"]
    assert await ids(created_after=at(30)) == ["d4", "d5"]
    assert await ids(limit=2) == ["d1", "d2"]
    assert await ids(limit=2, offset=2) == ["d3", "d4"]
    assert await ids(limit=2, offset=4) == ["d5"]
    assert await ids(limit=2, offset=6) == []
    assert await ids(webhook_id="nope") == []
    failed = await store.list_deliveries(DeliveryQuery(status=DeliveryStatus.FAILED))
    assert failed[0].attempts == 1 and failed[0].last_error == "receiver answered HTTP 503"


async def test_attempts_round_trip_in_order_with_headers(store: Store) -> None:
    await queue(store, "d1", "d2")
    first = attempt("d1", 1, when=1)
    await store.finish_attempt(
        "d1", first, status=DeliveryStatus.PENDING, next_try_at=at(11), now=at(1)
    )
    second = replace(
        attempt("d1", 2, ok=True, when=12),
        response_status_code=None,
        response_excerpt="",
        request_headers=(),
        response_headers=(),
        duration=1e-6,
    )
    await store.finish_attempt(
        "d1", second, status=DeliveryStatus.SUCCESS, next_try_at=None, now=at(12)
    )
    assert await store.list_attempts("d1") == [first, second]
    assert await store.list_attempts("d2") == []
    assert await store.list_attempts("nope") == []


# -- claiming --------------------------------------------------------------------------------


async def test_claim_takes_due_deliveries_in_order_up_to_the_limit(store: Store) -> None:
    await store.add_deliveries(
        [payload("p1")],
        [
            delivery("late", next_try=50),
            delivery("b", next_try=5),
            delivery("a", next_try=5),
            delivery("first", next_try=1),
            delivery("never-tried", next_try=None, created=2),
        ],
    )
    assert await store.claim_due(at(0.5), limit=10, lease=LEASE) == []
    claimed = await store.claim_due(at(10), limit=3, lease=LEASE)
    assert [d.id for d in claimed] == ["first", "never-tried", "a"]
    assert all(d.lease_until == at(40) for d in claimed)
    assert (await store.get_delivery("a")) == claimed[2]
    rest = await store.claim_due(at(10), limit=10, lease=LEASE)
    assert [d.id for d in rest] == ["b"]
    assert await store.claim_due(at(10), limit=10, lease=LEASE) == []
    assert await store.claim_due(at(10), limit=0, lease=LEASE) == []


async def test_claim_skips_excluded_webhooks_and_leaves_them_due(store: Store) -> None:
    await store.add_deliveries(
        [payload("p1")],
        [
            delivery("slow-1", webhook="slow", next_try=1),
            delivery("slow-2", webhook="slow", next_try=2),
            delivery("fast-1", webhook="fast", next_try=3),
            delivery("other", webhook="other", next_try=4),
        ],
    )
    claimed = await store.claim_due(
        at(10), limit=10, lease=LEASE, exclude_webhooks={"slow", "other"}
    )
    assert [d.id for d in claimed] == ["fast-1"]
    assert await store.next_due() == at(1)  # the skipped ones are still due, untouched
    rest = await store.claim_due(at(10), limit=10, lease=LEASE)
    assert [d.id for d in rest] == ["slow-1", "slow-2", "other"]


async def test_a_batch_claim_hands_out_due_rows_in_due_order_with_their_payloads(
    store: Store,
) -> None:
    bodies = {"p1": bytes(range(256)), "p2": "ünïcode".encode(), "p3": b"{}"}
    await store.add_deliveries(
        [payload(pid, body) for pid, body in bodies.items()],
        [
            delivery("w1-late", "p1", webhook="w1", next_try=9),
            delivery("w1-a", "p1", webhook="w1", next_try=2),
            delivery("w1-b", "p2", webhook="w1", next_try=3),
            delivery("w1-c", "p2", webhook="w1", next_try=4),
            delivery("w2-a", "p2", webhook="w2", next_try=1),
            delivery("w3-a", "p3", webhook="w3", next_try=2),
            delivery("future", "p3", webhook="w2", next_try=60),
        ],
    )
    batch = await store.claim_batch(
        at(10), limit=4, lease=LEASE, exclude_webhooks={"w3"}, per_webhook=2
    )
    # Due order; at most two of w1's; w3 excluded; nothing not yet due.
    assert [d.id for d in batch.deliveries] == ["w2-a", "w1-a", "w1-b"]
    assert all(d.lease_until == at(40) for d in batch.deliveries)
    assert set(batch.payloads) == {"p1", "p2"}
    assert {pid: p.body for pid, p in batch.payloads.items()} == {
        "p1": bodies["p1"],
        "p2": bodies["p2"],
    }
    assert batch.payloads["p1"] == payload("p1", bodies["p1"])
    assert await store.get_delivery("w1-a") == batch.deliveries[1]
    # Leased: the next claim takes what is left, and nothing claimed twice.
    rest = await store.claim_batch(at(10), limit=10, lease=LEASE)
    assert [d.id for d in rest.deliveries] == ["w3-a", "w1-c", "w1-late"]
    assert set(rest.payloads) == {"p1", "p2", "p3"}
    assert (await store.claim_batch(at(10), limit=10, lease=LEASE)).deliveries == []
    # Every lease ends at 40: all six are claimable again then.
    again = await store.claim_batch(at(40), limit=10, lease=LEASE)
    assert {d.id for d in again.deliveries} == {"w2-a", "w1-a", "w1-b", "w3-a", "w1-c", "w1-late"}


async def test_finish_many_writes_every_result_or_nothing(store: Store) -> None:
    await queue(store, "ok", "retry", "bad")
    await store.claim_batch(at(0), limit=10, lease=LEASE)
    results = [
        AttemptResult("ok", attempt("ok", ok=True, when=1), DeliveryStatus.SUCCESS, None, at(1)),
        AttemptResult("retry", attempt("retry", when=2), DeliveryStatus.PENDING, at(12), at(2)),
        AttemptResult("bad", attempt("bad", when=3), DeliveryStatus.FAILED, None, at(3)),
    ]
    ghost = AttemptResult("ghost", attempt("ghost"), DeliveryStatus.SUCCESS, None, at(1))
    with pytest.raises(StoreError):
        await store.finish_many([*results[:2], ghost])
    for did in ("ok", "retry"):
        untouched = await store.get_delivery(did)
        assert untouched is not None and untouched.attempts == 0
        assert untouched.lease_until == at(30)
        assert await store.list_attempts(did) == []
    await store.finish_many(results)
    ok, retry, bad = [await store.get_delivery(d) for d in ("ok", "retry", "bad")]
    assert ok is not None and ok.status is DeliveryStatus.SUCCESS and ok.lease_until is None
    assert ok.updated_at == at(1) and ok.attempts == 1 and ok.last_error is None
    assert retry is not None and retry.status is DeliveryStatus.PENDING
    assert retry.next_try_at == at(12) and retry.lease_until is None
    assert bad is not None and bad.status is DeliveryStatus.FAILED
    assert bad.last_error == "receiver answered HTTP 503"
    for r in results:
        assert await store.list_attempts(r.delivery_id) == [r.attempt]
    assert await store.next_due() == at(12)


async def test_a_finish_written_again_records_nothing_twice(store: Store) -> None:
    # The finisher writes a batch again when the store failed to answer, and a PostgreSQL
    # connection can drop after its COMMIT: the first write may have landed. Written again,
    # with a result that is new, only the new one is recorded.
    await queue(store, "ok", "retry", "new")
    await store.claim_batch(at(0), limit=10, lease=LEASE)
    first = [
        AttemptResult("ok", attempt("ok", ok=True, when=1), DeliveryStatus.SUCCESS, None, at(1)),
        AttemptResult("retry", attempt("retry", when=2), DeliveryStatus.PENDING, at(12), at(2)),
    ]
    await store.finish_many(first)
    new = AttemptResult("new", attempt("new", ok=True, when=3), DeliveryStatus.SUCCESS, None, at(3))
    await store.finish_many(first)
    await store.finish_many([*first, new])
    ok, retry, done = [await store.get_delivery(d) for d in ("ok", "retry", "new")]
    assert ok is not None and ok.status is DeliveryStatus.SUCCESS and ok.attempts == 1
    assert retry is not None and retry.status is DeliveryStatus.PENDING
    assert retry.attempts == 1 and retry.next_try_at == at(12) and retry.updated_at == at(2)
    assert done is not None and done.status is DeliveryStatus.SUCCESS and done.attempts == 1
    for r in [*first, new]:
        assert await store.list_attempts(r.delivery_id) == [r.attempt]


async def test_next_due_weighs_leases_against_later_due_times(store: Store) -> None:
    await store.add_deliveries(
        [payload()], [delivery("early", next_try=0), delivery("later", next_try=10)]
    )
    (first,) = await store.claim_due(at(0), limit=1, lease=LEASE)  # leased until 30
    assert first.id == "early"
    assert await store.next_due() == at(10)  # the later one comes first now
    (second,) = await store.claim_due(at(10), limit=5, lease=LEASE)  # leased until 40
    assert second.id == "later"
    assert await store.next_due() == at(30)
    await store.release(["later"])
    assert await store.next_due() == at(10)
    assert [d.id for d in await store.claim_due(at(29), limit=5, lease=LEASE)] == ["later"]
    assert await store.next_due() == at(30)
    assert [d.id for d in await store.claim_due(at(30), limit=5, lease=LEASE)] == ["early"]


async def test_an_expired_lease_makes_a_delivery_claimable_again(store: Store) -> None:
    await queue(store, "d1")
    (claimed,) = await store.claim_due(at(0), limit=1, lease=LEASE)
    assert await store.next_due() == at(30)
    assert await store.claim_due(at(29), limit=1, lease=LEASE) == []
    (again,) = await store.claim_due(at(30), limit=1, lease=LEASE)
    assert again.id == "d1" and again.lease_until == at(60)
    assert again.attempts == claimed.attempts == 0


async def test_finish_records_the_outcome_and_drops_the_lease(store: Store) -> None:
    await queue(store, "ok", "bad", "retry")
    await store.claim_due(at(0), limit=10, lease=LEASE)

    done = await finish(store, "ok", DeliveryStatus.SUCCESS, when=1)
    assert done.status is DeliveryStatus.SUCCESS and done.is_final
    assert done.attempts == 1 and done.lease_until is None and done.updated_at == at(1)
    assert done.next_try_at is None and done.last_error is None
    assert await store.get_delivery("ok") == done

    failed = await finish(store, "bad", DeliveryStatus.FAILED, when=2)
    assert failed.status is DeliveryStatus.FAILED
    assert failed.last_error == "receiver answered HTTP 503"

    retry = await finish(store, "retry", DeliveryStatus.PENDING, when=3, next_try=13)
    assert retry.status is DeliveryStatus.PENDING
    assert retry.next_try_at == at(13) and retry.lease_until is None and retry.attempts == 1
    assert await store.next_due() == at(13)
    assert await store.claim_due(at(12), limit=10, lease=LEASE) == []
    (claimed,) = await store.claim_due(at(13), limit=10, lease=LEASE)
    assert claimed.id == "retry"
    final = await finish(store, "retry", DeliveryStatus.FAILED, when=14, number=2)
    assert final.attempts == 2
    assert [a.number for a in await store.list_attempts("retry")] == [1, 2]
    assert await store.next_due() is None

    with pytest.raises(StoreError, match="not found"):
        await finish(store, "nope", DeliveryStatus.SUCCESS, when=5)


async def test_pending_without_a_next_try_is_due_at_once(store: Store) -> None:
    await queue(store, "d1")
    await store.claim_due(at(0), limit=1, lease=LEASE)
    await finish(store, "d1", DeliveryStatus.PENDING, when=1, next_try=None)
    (claimed,) = await store.claim_due(at(1), limit=1, lease=LEASE)
    assert claimed.id == "d1"


async def test_release_makes_claimed_deliveries_due_again(store: Store) -> None:
    await queue(store, "d1", "d2", "d3")
    await store.claim_due(at(0), limit=3, lease=LEASE)
    await finish(store, "d3", DeliveryStatus.SUCCESS, when=1)
    await store.release(["d1", "d2", "d3", "unknown"])
    await store.release([])
    assert (await store.get_delivery("d1")) == delivery("d1")
    assert await store.next_due() == at(0)
    claimed = await store.claim_due(at(1), limit=10, lease=LEASE)
    assert [d.id for d in claimed] == ["d1", "d2"]
    assert (await store.get_delivery("d3")) is not None
    assert (await store.get_delivery("d3")).status is DeliveryStatus.SUCCESS  # type: ignore[union-attr]


async def test_release_until_a_time_keeps_deliveries_back_until_then(store: Store) -> None:
    await queue(store, "d1", "d2")
    await store.claim_due(at(0), limit=2, lease=LEASE)
    await store.release(["d1"], until=at(100))
    await store.release(["d2"], until=at(-5))  # in the past: due at once
    assert (await store.get_delivery("d1")) == replace(delivery("d1"), lease_until=at(100))
    assert [d.id for d in await store.claim_due(at(1), limit=10, lease=LEASE)] == ["d2"]
    assert await store.next_due() == at(31)
    await finish(store, "d2", DeliveryStatus.SUCCESS, when=2)
    assert await store.next_due() == at(100)
    assert await store.claim_due(at(99), limit=10, lease=LEASE) == []
    assert [d.id for d in await store.claim_due(at(100), limit=10, lease=LEASE)] == ["d1"]


async def test_next_due_is_the_earliest_pending_time(store: Store) -> None:
    assert await store.next_due() is None
    await store.add_deliveries(
        [payload("p1")],
        [delivery("d1", next_try=40), delivery("d2", next_try=20), delivery("d3", next_try=5)],
    )
    assert await store.next_due() == at(5)
    await store.claim_due(at(5), limit=1, lease=LEASE)  # d3 leased until 35
    assert await store.next_due() == at(20)
    await finish(store, "d3", DeliveryStatus.SUCCESS, when=6)
    await store.claim_due(at(20), limit=1, lease=timedelta(seconds=100))  # d2 until 120
    assert await store.next_due() == at(40)


# -- retention -------------------------------------------------------------------------------


async def _history(store: Store) -> None:
    """p-old: two old deliveries (one success, one failure); p-mix: an old success sharing
    its payload with a pending delivery; p-new: recent success and failure."""
    await store.add_deliveries(
        [payload("p-old"), payload("p-mix"), payload("p-new")],
        [
            delivery("old-ok", "p-old"),
            delivery("old-failed", "p-old"),
            delivery("mix-ok", "p-mix"),
            delivery("mix-pending", "p-mix"),
            delivery("new-ok", "p-new"),
            delivery("new-failed", "p-new"),
        ],
    )
    day = 86400
    await finish(store, "old-ok", DeliveryStatus.SUCCESS, when=1)
    await finish(store, "old-failed", DeliveryStatus.FAILED, when=2)
    await finish(store, "mix-ok", DeliveryStatus.SUCCESS, when=3)
    await finish(store, "new-ok", DeliveryStatus.SUCCESS, when=20 * day)
    await finish(store, "new-failed", DeliveryStatus.FAILED, when=20 * day)


async def test_purge_by_default_drops_successes_and_failures_past_14_days(
    store: Store,
) -> None:
    await _history(store)
    now = at(21 * 86400)
    assert await store.purge(now) == 4
    remaining = sorted(d.id for d in await store.list_deliveries())
    assert remaining == ["mix-pending", "new-failed"]
    assert await store.list_attempts("old-failed") == []
    assert await store.list_attempts("new-failed") != []
    assert await store.get_payload("p-old") is None
    assert await store.get_payload("p-mix") is not None  # still used by a pending delivery
    assert await store.get_payload("p-new") is not None
    assert await store.purge(now) == 0


async def test_purge_keeps_what_retention_asks_for(store: Store) -> None:
    await _history(store)
    day = 86400
    # Keep successes 5 days, failures 30: only the two successes older than 5 days go.
    removed = await store.purge(
        at(21 * day), keep_success=timedelta(days=5), keep_failed=timedelta(days=30)
    )
    assert removed == 2
    remaining = sorted(d.id for d in await store.list_deliveries())
    assert remaining == ["mix-pending", "new-failed", "new-ok", "old-failed"]
    assert await store.get_payload("p-old") is not None  # old-failed still refers to it
    assert await store.list_attempts("old-failed") != []
    # Age counts from the finish, not from the creation.
    assert await store.purge(at(26 * day), keep_success=timedelta(days=5)) == 2
    assert await store.get_delivery("new-ok") is None
    assert await store.get_delivery("old-failed") is None
    assert await store.get_delivery("new-failed") is not None


async def test_purge_never_touches_pending_deliveries(store: Store) -> None:
    await queue(store, "d1", "d2")
    await store.claim_due(at(0), limit=1, lease=LEASE)
    assert await store.purge(at(365 * 86400), keep_success=None, keep_failed=timedelta(0)) == 0
    assert len(await store.list_deliveries()) == 2


# -- lifecycle -------------------------------------------------------------------------------


async def test_open_is_idempotent_and_a_closed_store_refuses_work(store: Store) -> None:
    await store.open()
    await store.put_app(App(id="a1", name="x"))
    await store.aclose()
    await store.aclose()
    with pytest.raises(StoreError, match="after aclose"):
        await store.put_app(App(id="a2", name="y"))
    with pytest.raises(StoreError, match="after aclose"):
        await store.add_deliveries([payload()], [delivery("d1")])


async def test_requeue_makes_a_finished_delivery_due_with_a_fresh_budget(store: Store) -> None:
    await queue(store, "done", "waiting")
    await finish(store, "done", DeliveryStatus.PENDING, when=5, next_try=6)
    await finish(store, "done", DeliveryStatus.FAILED, when=6, number=2)
    assert await store.requeue("waiting", at(10)) is None  # still pending
    assert await store.requeue("unknown", at(10)) is None
    again = await store.requeue("done", at(10))
    assert again is not None
    assert again.status is DeliveryStatus.PENDING
    assert (again.attempts, again.retry_base, again.requeued_at) == (2, 2, at(10))
    assert await store.get_delivery("done") == again
    claimed = await store.claim_due(at(10), limit=10, lease=LEASE)
    assert "done" in [d.id for d in claimed]


async def test_ordered_deliveries_are_claimable_one_at_a_time_in_order(store: Store) -> None:
    ordered = [replace(delivery(i, next_try=0), ordering_key="order-1") for i in ("o1", "o2", "o3")]
    other_key = replace(delivery("k2", next_try=0), ordering_key="order-2")
    await store.add_deliveries([payload("p1")], [*ordered, other_key, delivery("free")])
    claimed = await store.claim_due(at(1), limit=10, lease=LEASE)
    assert sorted(d.id for d in claimed) == ["free", "k2", "o1"]
    assert await store.next_due() == at(31)  # o2 and o3 wait behind o1, not due
    # A retry keeps the place: o2 stays behind o1 until o1 is final.
    await finish(store, "o1", DeliveryStatus.PENDING, when=2, next_try=5)
    assert [d.id for d in await store.claim_due(at(5), limit=10, lease=LEASE)] == ["o1"]
    await finish(store, "o1", DeliveryStatus.SUCCESS, when=6, number=2)
    assert [d.id for d in await store.claim_due(at(6), limit=10, lease=LEASE)] == ["o2"]
    await finish(store, "o2", DeliveryStatus.FAILED, when=7)
    again = await store.claim_due(at(7), limit=10, lease=LEASE)
    assert [d.id for d in again] == ["o3"]
    assert again[0].ordering_key == "order-1"


async def test_a_late_attempt_never_overwrites_a_final_outcome(store: Store) -> None:
    await queue(store, "d1")
    await finish(store, "d1", DeliveryStatus.SUCCESS, when=5)
    # A worker that outlived its lease reports a failure afterwards.
    late = await finish(store, "d1", DeliveryStatus.PENDING, when=6, next_try=20, number=2)
    assert late.status is DeliveryStatus.SUCCESS
    assert (await store.get_delivery("d1")) == late
    assert len(await store.list_attempts("d1")) == 2
    assert await store.next_due() is None
