"""Work done once per distinct thing, counted: executions, validations, JWS signatures; and
query bodies delivered to real loopback receivers."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from conftest import Receiver

from webhookkit import App, DeliveryStatus, HTTPTransport, WebhookKit, verify_hmac, verify_jws
from webhookkit.payloads.graphql import GraphQLPayloads
from webhookkit.testing import MemoryTransport

from .conftest import ORDER, KitFactory

WEBHOOKS = 1000
APPS_PER_PERMISSION_SET = 10

# Ten distinct texts. The last two differ from the first two by whitespace only, so their
# bodies are equal: 20 executions give 16 distinct bodies (8 shapes x 2 permission sets).
SHAPES = [
    "subscription { event { ... on OrderCreated { order { id userEmail "
    f"n{i}: number }} }} }} }}"
    for i in range(8)
]
QUERIES = [*SHAPES, SHAPES[0].replace(" ", "  "), SHAPES[1].replace("{ ", "{\n")]


async def test_1000_webhooks_10_queries_2_permission_sets(make_kit: KitFactory) -> None:
    transport = MemoryTransport()
    contexts: list[App] = []

    def context(app: App) -> App:
        contexts.append(app)
        return app

    kit: WebhookKit = make_kit(transports=[transport], context_factory=context)
    payloads = kit.payloads
    assert isinstance(payloads, GraphQLPayloads)
    await kit.start()
    apps = [
        await kit.apps.create(f"plain-{i}", permissions=["MANAGE_ORDERS"])
        for i in range(APPS_PER_PERMISSION_SET)
    ] + [
        await kit.apps.create(f"staff-{i}", permissions=["MANAGE_ORDERS", "MANAGE_USERS"])
        for i in range(APPS_PER_PERMISSION_SET)
    ]
    for n in range(WEBHOOKS):
        await kit.webhooks.create(
            apps[n % len(apps)],
            target_url=f"memory://receiver/{n}",
            subscription_query=QUERIES[n // len(apps) % len(QUERIES)],
        )
    assert len(set(QUERIES)) == 10
    assert payloads.stats.validations == 10  # once per distinct text, at creation

    ids = await kit.trigger("ORDER_CREATED", subject=ORDER)
    assert len(ids) == WEBHOOKS
    done = await kit.wait_for(ids, timeout=60)
    assert all(d.status is DeliveryStatus.SUCCESS for d in done)
    assert payloads.stats.executions == 20
    assert len(contexts) == 20
    assert payloads.stats.validations == 10 and payloads.stats.parses == 10

    distinct_bodies = {m.body for m in transport.sent}
    assert len(transport.sent) == WEBHOOKS
    assert len(distinct_bodies) == 16
    assert kit.stats.jws_signatures == len(distinct_bodies)
    # Every webhook got the body its own query and permissions produce.
    emails = Counter(json.loads(m.body)["order"]["userEmail"] for m in transport.sent)
    assert emails == {None: WEBHOOKS // 2, "buyer@example.com": WEBHOOKS // 2}

    # A second trigger: no re-validation, 20 more executions, 16 more signatures.
    hits = payloads.stats.cache_hits
    await kit.wait_for(await kit.trigger("ORDER_CREATED", subject=ORDER), timeout=60)
    assert payloads.stats.validations == 10
    assert payloads.stats.cache_hits == hits + 10
    assert payloads.stats.executions == 40
    assert kit.stats.jws_signatures == 32


async def test_query_bodies_reach_loopback_receivers_signed(
    make_kit: KitFactory, receiver: Receiver
) -> None:
    kit: WebhookKit = make_kit(transports=[HTTPTransport(allow_addresses=["127.0.0.1/32"])])
    await kit.start()
    erp = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    crm = await kit.apps.create("crm", permissions=["MANAGE_ORDERS", "MANAGE_USERS"])
    query = "subscription { event { issuedAt ... on OrderCreated { order { id userEmail } } } }"
    filterable = 'subscription { orderCreated(channels: ["default"]) { order { number } } }'
    await kit.webhooks.create(erp, target_url=receiver.url + "/erp", subscription_query=query)
    await kit.webhooks.create(
        crm, target_url=receiver.url + "/crm", subscription_query=query, secret_key="s3cret"
    )
    await kit.webhooks.create(
        erp, target_url=receiver.url + "/filtered", subscription_query=filterable
    )
    ids = await kit.trigger("ORDER_CREATED", subject=ORDER)
    done = await kit.wait_for(ids, timeout=20)
    assert [d.status for d in done] == [DeliveryStatus.SUCCESS] * 3

    [to_erp] = receiver.for_path("/erp")
    [to_crm] = receiver.for_path("/crm")
    [filtered] = receiver.for_path("/filtered")
    assert to_erp.body == await kit.dry_run(query, subject=ORDER, app=erp)
    assert json.loads(to_erp.body) == {
        "issuedAt": "2026-01-01T00:00:00+00:00",
        "order": {"id": "T3JkZXI6MQ==", "userEmail": None},
    }
    assert json.loads(to_crm.body)["order"]["userEmail"] == "buyer@example.com"
    assert filtered.body == b'{"data":{"orderCreated":{"order":{"number":1001}}}}'
    assert to_erp.header("Saleor-Event") == "order_created"
    signatures: dict[str, Any] = {
        "erp": to_erp.header("Saleor-Signature"),
        "crm": to_crm.header("Saleor-Signature"),
    }
    verify_jws(to_erp.body, signatures["erp"], kit.jwks())
    verify_hmac(to_crm.body, signatures["crm"], "s3cret")


async def test_start_validates_stored_queries_so_the_first_trigger_does_not(
    make_kit: KitFactory,
) -> None:
    first: WebhookKit = make_kit(transports=[MemoryTransport()])
    await first.start()
    app = await first.apps.create("plain", permissions=["MANAGE_ORDERS"])
    for n, query in enumerate(QUERIES):
        await first.webhooks.create(app, target_url=f"memory://r/{n}", subscription_query=query)
    # A restarted process: a new kit (empty document cache) on the same store.
    again: WebhookKit = make_kit(transports=[MemoryTransport()], store=first.store)
    payloads = again.payloads
    assert isinstance(payloads, GraphQLPayloads)
    assert payloads.stats.validations == 0
    await again.start()
    assert payloads.stats.validations == len(set(QUERIES))
    await again.trigger("ORDER_CREATED", subject=ORDER)
    assert payloads.stats.validations == len(set(QUERIES))  # none on the trigger's path
