"""The sync face: BlockingKit from threads without an event loop, on a real SQLite store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLObjectType, GraphQLResolveInfo, build_schema

from webhookkit import WebhookKit
from webhookkit.blocking import BlockingKit
from webhookkit.exceptions import ConfigurationError
from webhookkit.payloads.graphql import GraphQLPayloads

SDL = """
type Query { ok: Boolean }
interface Event { version: String }
type Order { id: ID, number: String, note: String }
type OrderCreated implements Event { version: String, order: Order }
type Subscription { event: Event }
"""
QUERY = "subscription { event { ... on OrderCreated { order { number note } } } }"


class Threads:
    """Names of the threads each resolver ran in."""

    def __init__(self) -> None:
        self.number: list[str] = []
        self.note: list[str] = []


def schema_with(threads: Threads) -> Any:
    schema = build_schema(SDL)
    order = schema.type_map["Order"]
    assert isinstance(order, GraphQLObjectType)

    def number(source: Any, info: GraphQLResolveInfo[Any]) -> str:
        threads.number.append(threading.current_thread().name)
        return str(source["number"])

    async def note(source: Any, info: GraphQLResolveInfo[Any]) -> str:
        threads.note.append(threading.current_thread().name)
        return f"note for {source['number']}"

    order.fields["number"].resolve = number
    order.fields["note"].resolve = note
    return schema


def make_kit(path: Path, schema: Any = None) -> WebhookKit:
    payloads = GraphQLPayloads(schema) if schema is not None else None
    return WebhookKit(store=f"sqlite:///{path}", domain="shop.example.com", payloads=payloads)


@pytest.fixture
def threads() -> Threads:
    return Threads()


@pytest.fixture
def blocking(tmp_path: Path, threads: Threads) -> Iterator[BlockingKit]:
    kit = BlockingKit(make_kit(tmp_path / "wk.db", schema_with(threads)))
    try:
        yield kit
    finally:
        kit.close()


def setup_webhooks(blocking: BlockingKit, query: str | None) -> None:
    kit = blocking.kit
    app = blocking.run(kit.apps.create("shop", permissions=["MANAGE_ORDERS"]))
    blocking.run(
        kit.webhooks.create(
            app,
            target_url="https://erp.example.com/hooks",
            events=["ORDER_CREATED"],
            subscription_query=query,
        )
    )


def test_sync_resolvers_run_in_the_callers_thread(blocking: BlockingKit, threads: Threads) -> None:
    setup_webhooks(blocking, "subscription { event { ... on OrderCreated { order { number } } } }")
    ids = blocking.trigger_sync("ORDER_CREATED", subject={"order": {"number": "42"}})
    assert len(ids) == 1
    assert threads.number == [threading.current_thread().name]
    delivery = blocking.run(blocking.kit.get_delivery(ids[0]))
    assert delivery is not None
    payload = blocking.run(blocking.kit.store.get_payload(delivery.payload_id))
    assert payload is not None
    assert payload.body == b'{"order":{"number":"42"}}'


def test_async_resolvers_finish_on_the_background_loop(
    blocking: BlockingKit, threads: Threads
) -> None:
    setup_webhooks(blocking, QUERY)
    ids = blocking.trigger_sync("ORDER_CREATED", subject={"order": {"number": "7"}})
    assert len(ids) == 1
    assert threads.note == ["webhookkit-blocking"]
    delivery = blocking.run(blocking.kit.get_delivery(ids[0]))
    assert delivery is not None
    payload = blocking.run(blocking.kit.store.get_payload(delivery.payload_id))
    assert payload is not None
    assert payload.body == b'{"order":{"number":"7","note":"note for 7"}}'


def test_many_threads_trigger_at_once(blocking: BlockingKit) -> None:
    setup_webhooks(blocking, None)

    def trigger(n: int) -> list[str]:
        return blocking.trigger_sync("ORDER_CREATED", payload={"n": n})

    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(trigger, range(40)))
    ids = [i for delivery_ids in made for i in delivery_ids]
    assert len(ids) == len(set(ids)) == 40
    stored = blocking.run(blocking.kit.list_deliveries())
    assert sorted(d.id for d in stored) == sorted(ids)


def test_close_stops_the_thread_and_refuses_more(tmp_path: Path) -> None:
    blocking = BlockingKit(make_kit(tmp_path / "wk.db")).open()
    assert any(t.name == "webhookkit-blocking" for t in threading.enumerate())
    setup_webhooks(blocking, None)
    assert len(blocking.trigger_sync("ORDER_CREATED", payload={"n": 1})) == 1
    blocking.close()
    assert not any(t.name == "webhookkit-blocking" for t in threading.enumerate())
    with pytest.raises(ConfigurationError, match="after close"):
        blocking.trigger_sync("ORDER_CREATED", payload={"n": 2})
    blocking.close()  # twice is fine


def test_memory_store_refuses_a_connection(tmp_path: Path) -> None:
    import sqlite3

    with BlockingKit(WebhookKit(domain="shop.example.com")) as blocking:
        setup_webhooks(blocking, None)
        conn = sqlite3.connect(tmp_path / "host.db")
        try:
            with pytest.raises(ConfigurationError, match="PostgreSQL or SQLite") as refused:
                blocking.trigger_sync("ORDER_CREATED", payload={"n": 1}, connection=conn)
        finally:
            conn.close()
        assert refused.value.field == "connection"


def test_send_true_delivers_from_the_background_loop(tmp_path: Path) -> None:
    from aiohttp import web

    from webhookkit import DeliveryStatus, HTTPTransport

    received: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(text="ok")

    async def serve() -> tuple[web.AppRunner, str]:
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/hook"

    kit = WebhookKit(
        store=f"sqlite:///{tmp_path / 'wk.db'}",
        domain="shop.example.com",
        transports=[HTTPTransport(allow_addresses=["127.0.0.1/32"])],
    )
    with BlockingKit(kit, send=True) as blocking:
        runner, url = blocking.run(serve())  # the receiver shares the kit's loop
        app = blocking.run(kit.apps.create("shop", permissions=["MANAGE_ORDERS"]))
        blocking.run(kit.webhooks.create(app, target_url=url, events=["ORDER_CREATED"]))
        assert kit.scheduler.running
        ids = blocking.trigger_sync("ORDER_CREATED", payload={"n": 1})
        [done] = blocking.run(kit.wait_for(ids, timeout=30))
        blocking.run(runner.cleanup())
    assert done.status is DeliveryStatus.SUCCESS
    assert received == [b'{"n":1}']
    assert not kit.scheduler.running


def test_an_sqlite_store_opens_inside_the_hosts_write_transaction(tmp_path: Path) -> None:
    """A store whose schema is current opens without SQLite's write lock, so the first
    trigger may come inside the host's open write transaction."""
    import sqlite3

    from webhookkit.stores import SQLiteStore

    path = tmp_path / "shop.db"
    with BlockingKit(WebhookKit(store=SQLiteStore(path), domain="shop.example.com")) as setup:
        setup_webhooks(setup, None)  # the schema exists; a new process opens it again
    blocking = BlockingKit(WebhookKit(store=SQLiteStore(path, busy_timeout=0.2)))
    host = sqlite3.connect(path)
    try:
        host.execute("CREATE TABLE orders (number TEXT)")
        host.execute("INSERT INTO orders VALUES ('1')")  # the host now holds the write lock
        ids = blocking.trigger_sync("ORDER_CREATED", payload={"n": 1}, connection=host)
        host.rollback()
        assert ids and blocking.run(blocking.kit.get_delivery(ids[0])) is None
        host.execute("INSERT INTO orders VALUES ('2')")
        ids = blocking.trigger_sync("ORDER_CREATED", payload={"n": 2}, connection=host)
        host.commit()
        assert blocking.run(blocking.kit.get_delivery(ids[0])) is not None
    finally:
        host.close()
        blocking.close()


def test_webhooks_another_process_adds_count_at_the_next_trigger(tmp_path: Path) -> None:
    path = tmp_path / "wk.db"
    with BlockingKit(make_kit(path)) as blocking:
        setup_webhooks(blocking, None)
        assert len(blocking.trigger_sync("ORDER_CREATED", payload={"n": 1})) == 1
        # Another process (its own kit on the same file) adds a second webhook.
        with BlockingKit(make_kit(path)) as other:
            setup_webhooks(other, None)
        assert len(blocking.trigger_sync("ORDER_CREATED", payload={"n": 2})) == 2


def test_jwks_publishes_the_store_kept_keys_the_workers_sign_with(tmp_path: Path) -> None:
    import asyncio

    path = tmp_path / "wk.db"

    async def worker_kid() -> str:
        async with WebhookKit(store=f"sqlite:///{path}", domain="shop.example.com") as worker:
            return worker.keys.active.kid

    signing = asyncio.run(worker_kid())  # a worker process, first to start: makes the key
    with BlockingKit(make_kit(path)).open() as blocking:
        published = [k["kid"] for k in blocking.jwks()["keys"]]
    assert published == [signing]


def test_payload_filters_decide_in_sync_triggers_too() -> None:
    kit = WebhookKit(domain="shop.example.com")
    with BlockingKit(kit) as blocking:

        async def setup() -> None:
            app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
            await kit.webhooks.create(
                app,
                target_url="https://erp.example.com/h",
                events=["ORDER_CREATED"],
                secret_key="k",
                filter={"total": {"$gte": 100}},
            )

        blocking.run(setup())
        assert blocking.trigger_sync("ORDER_CREATED", payload={"total": 5}) == []
        assert len(blocking.trigger_sync("ORDER_CREATED", payload={"total": 500})) == 1


def _queued_counter(kit: WebhookKit) -> list[tuple[str, int]]:
    """Every ``queued`` the kit's instrumentation is told of, as (event, count)."""
    seen: list[tuple[str, int]] = []
    instrumentation = kit.hooks.instrumentation
    original = instrumentation.queued

    def queued(event: str, count: int) -> None:
        seen.append((event, count))
        original(event, count)

    instrumentation.queued = queued  # type: ignore[method-assign]
    return seen


def test_a_repeated_idempotency_key_returns_the_first_triggers_deliveries(
    tmp_path: Path,
) -> None:
    from webhookkit import DeliveryQuery

    kit = make_kit(tmp_path / "wk.db")
    queued = _queued_counter(kit)
    with BlockingKit(kit) as blocking:
        setup_webhooks(blocking, None)
        first = blocking.trigger_sync("ORDER_CREATED", payload={"n": 1}, idempotency_key="o-1")
        again = blocking.trigger_sync("ORDER_CREATED", payload={"n": 2}, idempotency_key="o-1")
        other = blocking.trigger_sync("ORDER_CREATED", payload={"n": 3}, idempotency_key="o-2")
        stored = blocking.run(kit.list_deliveries(DeliveryQuery(limit=100)))
    assert len(first) == 1 and again == first and other != first
    assert sorted(d.id for d in stored) == sorted(first + other)
    assert queued == [("order_created", 1), ("order_created", 1)]


def test_a_bad_idempotency_key_is_refused_naming_the_field(tmp_path: Path) -> None:
    from webhookkit import DeliveryQuery
    from webhookkit.exceptions import InvalidFieldError

    with BlockingKit(make_kit(tmp_path / "wk.db")) as blocking:
        setup_webhooks(blocking, None)
        for bad in ("", "x" * 256, "a\x00b", 7):
            with pytest.raises(InvalidFieldError) as caught:
                blocking.trigger_sync("ORDER_CREATED", payload={}, idempotency_key=bad)  # type: ignore[arg-type]
            assert caught.value.field == "idempotency_key"
        assert blocking.run(blocking.kit.list_deliveries(DeliveryQuery())) == []


def test_the_outbox_takes_the_key_in_the_hosts_transaction(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "wk.db"
    with BlockingKit(make_kit(path)) as blocking:
        blocking.open()
        setup_webhooks(blocking, None)
        host = sqlite3.connect(path, isolation_level=None)
        try:
            host.execute("BEGIN IMMEDIATE")
            blocking.trigger_sync("ORDER_CREATED", payload={}, connection=host, idempotency_key="k")
            host.execute("ROLLBACK")  # frees the key with the rows
            host.execute("BEGIN IMMEDIATE")
            kept = blocking.trigger_sync(
                "ORDER_CREATED", payload={}, connection=host, idempotency_key="k"
            )
            host.execute("COMMIT")
        finally:
            host.close()
        assert blocking.trigger_sync("ORDER_CREATED", payload={}, idempotency_key="k") == kept
        [delivery] = blocking.run(blocking.kit.list_deliveries())
    assert [delivery.id] == kept


def test_an_over_limit_body_fails_at_trigger_time_in_sync_triggers_too(tmp_path: Path) -> None:
    from webhookkit import DeliveryStatus, HTTPTransport

    transport = HTTPTransport(allow_addresses=["127.0.0.1/32"], max_body_bytes=64)
    kit = WebhookKit(
        store=f"sqlite:///{tmp_path / 'wk.db'}", domain="shop.example.com", transports=[transport]
    )
    with BlockingKit(kit) as blocking:
        app = blocking.run(kit.apps.create("erp", permissions=["MANAGE_ORDERS"]))
        blocking.run(
            kit.webhooks.create(
                app, target_url="http://127.0.0.1:9/h", events=["ORDER_CREATED"], secret_key="k"
            )
        )
        [too_big] = blocking.trigger_sync("ORDER_CREATED", payload={"note": "x" * 100})
        [fits] = blocking.trigger_sync("ORDER_CREATED", payload={"note": "x"})
        failed = blocking.run(kit.get_delivery(too_big))
        pending = blocking.run(kit.get_delivery(fits))
        [attempt] = blocking.run(kit.list_attempts(too_big))
    assert failed is not None and failed.status is DeliveryStatus.FAILED
    assert attempt.error_kind == "PayloadTooLargeError"
    assert pending is not None and pending.status is DeliveryStatus.PENDING
