"""Payload building for a 1,000-webhook fan-out: shared executions versus naive per webhook.

Run from the project root: ``python -m benchmarks.bench_payloads``. Uses Saleor's real schema
(``../shared/fixtures/saleor-schema.graphql`` beside the project root, or ``--schema``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graphql import ExecutionResult, GraphQLSchema, build_schema, execute, parse, validate

from webhookkit.apps import App, Webhook
from webhookkit.payloads import PayloadRequest, encode_json
from webhookkit.payloads.graphql import GraphQLPayloads

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCHEMA = ROOT / ".." / "shared" / "fixtures" / "saleor-schema.graphql"
ISSUED = datetime(2026, 1, 1, tzinfo=UTC)

# Ten distinct ORDER_CREATED queries against Saleor's schema, as ten apps might write them.
_FIELDS = [
    "id number status created userEmail",
    "channel { slug name currencyCode }",
    "lines { id productName productSku quantity }",
    "total { gross { amount currency } net { amount currency } }",
    "billingAddress { firstName lastName city postalCode country { code } }",
    "shippingAddress { streetAddress1 city country { code country } }",
    "metadata { key value }",
    "subtotal { gross { amount currency } }",
    "lines { variant { id sku name } unitPrice { gross { amount } } }",
    "shippingMethodName discounts { id name amount { amount } }",
]
QUERIES = [
    "subscription { event { issuedAt version ... on OrderCreated { order { id "
    + fields
    + " } } } }"
    for fields in _FIELDS
]

_ADDRESS = {
    "firstName": "Ada",
    "lastName": "Lovelace",
    "streetAddress1": "1 Analytical Way",
    "city": "London",
    "postalCode": "N1 1AA",
    "country": {"code": "GB", "country": "United Kingdom"},
}
_MONEY = {"amount": 42.5, "currency": "EUR"}
ORDER: dict[str, Any] = {
    "id": "T3JkZXI6MQ==",
    "number": "1001",
    "status": "UNFULFILLED",
    "created": ISSUED,
    "userEmail": "buyer@example.com",
    "channel": {"slug": "default", "name": "Default", "currencyCode": "EUR"},
    "lines": [
        {
            "id": f"line-{i}",
            "productName": f"T-shirt {i}",
            "productSku": f"TSHIRT-{i}",
            "quantity": i + 1,
            "variant": {"id": f"v{i}", "sku": f"TSHIRT-{i}", "name": "M"},
            "unitPrice": {"gross": _MONEY},
        }
        for i in range(5)
    ],
    "total": {"gross": _MONEY, "net": _MONEY},
    "subtotal": {"gross": _MONEY},
    "billingAddress": _ADDRESS,
    "shippingAddress": _ADDRESS,
    "metadata": [{"key": "erp-id", "value": "A-1"}],
    "shippingMethodName": "Courier",
    "discounts": [{"id": "d1", "name": "Spring", "amount": _MONEY}],
}


@dataclass(frozen=True)
class Row:
    approach: str
    parses: int
    validations: int
    executions: int
    seconds: float


def fan_out(webhooks: int) -> list[tuple[Webhook, App]]:
    """``webhooks`` webhooks over 20 apps (two permission sets) and the ten queries."""
    apps = [
        App(
            id=f"app-{i}",
            name=f"app {i}",
            permissions=frozenset({"MANAGE_ORDERS"} | ({"MANAGE_USERS"} if i % 2 else set())),
        )
        for i in range(20)
    ]
    return [
        (
            Webhook(
                id=f"wh-{n}",
                app_id=apps[n % 20].id,
                target_url=f"memory://r/{n}",
                subscription_query=QUERIES[n // 20 % len(QUERIES)],
            ),
            apps[n % 20],
        )
        for n in range(webhooks)
    ]


def naive(schema: GraphQLSchema, targets: Sequence[tuple[Webhook, App]]) -> list[bytes]:
    """What Saleor does: parse, validate and execute every webhook's query on its own."""
    bodies = []
    for webhook, app in targets:
        document = parse(webhook.subscription_query or "")
        if validate(schema, document):
            raise RuntimeError("benchmark query is invalid")
        root = {
            "event": {
                "__typename": "OrderCreated",
                "issuedAt": ISSUED,
                "version": "3.24.0",
                "order": ORDER,
            }
        }
        result = execute(schema, document, root_value=root, context_value=app)
        assert isinstance(result, ExecutionResult) and not result.errors, result
        assert result.data is not None
        bodies.append(encode_json(result.data["event"]))
    return bodies


async def shared(payloads: GraphQLPayloads, targets: Sequence[tuple[Webhook, App]]) -> set[bytes]:
    """webhookkit: one execution per distinct (query, permission set), cached validation."""
    groups = await payloads.build(
        PayloadRequest(
            event=payloads.registry.get("ORDER_CREATED"),
            subject=ORDER,
            payload=None,
            targets=targets,
            issued_at=ISSUED,
        )
    )
    assert sum(len(g.webhooks) for g in groups if g.body is not None) == len(targets)
    return {g.body for g in groups if g.body is not None}


def _counts(payloads: GraphQLPayloads) -> tuple[int, int, int]:
    stats = payloads.stats
    return (stats.parses, stats.validations, stats.executions)


async def measure(schema: GraphQLSchema, webhooks: int, repeat: int) -> list[Row]:
    """Cold trigger, median of ``repeat`` warm triggers, then the naive loop once."""
    targets = fan_out(webhooks)
    payloads = GraphQLPayloads(schema)

    started = time.perf_counter()
    bodies = await shared(payloads, targets)
    cold = time.perf_counter() - started
    parses, validations, executions = _counts(payloads)
    rows = [Row("webhookkit, first trigger (cold cache)", parses, validations, executions, cold)]

    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        await shared(payloads, targets)
        timings.append(time.perf_counter() - started)
    after = _counts(payloads)
    rows.append(
        Row(
            "webhookkit, later triggers (median)",
            (after[0] - parses) // repeat,
            (after[1] - validations) // repeat,
            (after[2] - executions) // repeat,
            statistics.median(timings),
        )
    )

    started = time.perf_counter()
    naive_bodies = naive(schema, targets)
    elapsed = time.perf_counter() - started
    # Both approaches must produce the same bodies, or the comparison means nothing.
    assert set(naive_bodies) == bodies, "naive and shared bodies differ"
    rows.append(Row("naive: parse+validate+execute each", webhooks, webhooks, webhooks, elapsed))
    return rows


def render(rows: Sequence[Row], webhooks: int) -> str:
    lines = [
        f"Payloads: {webhooks} webhooks, {len(QUERIES)} distinct queries, 2 permission sets, "
        "Saleor's schema",
        "",
        f"| {'approach':<38} | parses | validations | executions | time (ms) |",
        f"|{'-' * 40}|--------|-------------|------------|-----------|",
    ]
    for r in rows:
        lines.append(
            f"| {r.approach:<38} | {r.parses:>6} | {r.validations:>11} | {r.executions:>10} "
            f"| {r.seconds * 1000:>9.1f} |"
        )
    warm, naive_row = rows[1], rows[-1]
    lines += [
        "",
        f"speed-up, naive / webhookkit later triggers: {naive_row.seconds / warm.seconds:.0f}x",
        f"speed-up, naive / webhookkit first trigger:  {naive_row.seconds / rows[0].seconds:.0f}x",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--schema", type=Path, default=DEFAULT_SCHEMA, help="SDL file")
    parser.add_argument("--webhooks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5, help="warm triggers to time")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    schema = build_schema(args.schema.read_text("utf-8"))
    print(f"schema built in {time.perf_counter() - started:.2f} s\n")
    rows = asyncio.run(measure(schema, args.webhooks, args.repeat))
    print(render(rows, args.webhooks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
