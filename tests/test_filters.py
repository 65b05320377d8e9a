"""Content filters (webhookkit.filters): the language, its refusals, webhooks carrying a filter
on every store, and the trigger-time helper that splits payload groups."""

from __future__ import annotations

import contextlib
import copy
import json
import pickle
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stores.conftest import make_store
from stores.pgcluster import PostgresCluster

import webhookkit.filters
from webhookkit import InvalidFieldError, WebhookKit
from webhookkit.apps import Webhook
from webhookkit.filters import (
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    MAX_REGEX_LENGTH,
    MAX_REGEX_SUBJECT,
    PayloadFilter,
    compile_filter,
    filter_from_json,
    filter_targets,
)
from webhookkit.payloads import PayloadGroup
from webhookkit.stores import Store

DOC = Path(__file__).resolve().parents[1] / "docs" / "filters.md"

ORDER = {
    "order": {
        "id": "T3JkZXI6MQ==",
        "total": 150.5,
        "currency": "EUR",
        "channel": "web",
        "paid": True,
        "email": "ada@example.com",
        "note": None,
        "tags": ["vip", "first"],
        "lines": [
            {"sku": "AB-1", "quantity": 2},
            {"sku": "CD-2", "quantity": 1},
        ],
    }
}


# -- the language ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"order.currency": "EUR"}, True),
        ({"order.currency": "USD"}, False),
        ({"order": {"currency": "EUR", "channel": "web"}}, True),  # Outpost's nesting
        ({"order": {"currency": "EUR", "channel": "pos"}}, False),
        ({"order.total": {"$gte": 150.5}}, True),
        ({"order.total": {"$gt": 150.5}}, False),
        ({"order.total": {"$gt": 100, "$lt": 200}}, True),
        ({"order.total": {"$lte": 100}}, False),
        ({"order.total": {"$lt": 151}}, True),
        ({"order.total": 150.5}, True),
        ({"order.lines.0.quantity": 2}, True),  # a numeric segment indexes an array
        ({"order.lines.1.sku": "AB-1"}, False),
        ({"order.lines.5.sku": {"$exists": True}}, False),
        ({"order.lines.sku": "CD-2"}, True),  # an array of objects is looked into
        ({"order.lines.quantity": {"$gt": 1}}, True),
        ({"order.lines.quantity": {"$gt": 2}}, False),
        ({"order.tags": "vip"}, True),  # a condition on an array holds for any element
        ({"order.tags": ["vip", "first"]}, True),  # ... or for the whole array
        ({"order.tags": ["first", "vip"]}, False),
        ({"order.tags": {"$in": ["gold", "first"]}}, True),
        ({"order.tags": {"$nin": ["gold", "first"]}}, False),
        ({"order.channel": {"$in": ["web", "pos"]}}, True),
        ({"order.channel": {"$nin": ["web", "pos"]}}, False),
        ({"order.channel": {"$ne": "pos"}}, True),
        ({"order.channel": {"$neq": "web"}}, False),  # Convoy's and Outpost's spelling
        ({"order.missing": {"$ne": "x"}}, True),  # as in MongoDB: a missing field is not "x"
        ({"order.note": None}, True),
        ({"order.note": {"$exists": True}}, True),  # null is present
        ({"order.missing": {"$exists": False}}, True),
        ({"order.missing": {"$exist": True}}, False),  # Convoy's and Outpost's spelling
        ({"order.missing": None}, False),
        ({"order.email": {"$regex": "@example\\.com$"}}, True),
        ({"order.email": {"$regex": "^ADA", "$options": "i"}}, True),
        ({"order.email": {"$regex": "^ADA"}}, False),
        ({"order.email": {"$startsWith": "ada@"}}, True),
        ({"order.email": {"$endsWith": "@example.org"}}, False),
        ({"order.lines.sku": {"$regex": "^CD-"}}, True),
        ({"order.channel": {"$not": {"$in": ["pos", "api"]}}}, True),
        ({"order.channel": {"$not": {"$eq": "web"}}}, False),
        ({"$or": [{"order.channel": "pos"}, {"order.total": {"$gte": 100}}]}, True),
        ({"$or": [{"order.channel": "pos"}, {"order.total": {"$gte": 1000}}]}, False),
        ({"$and": [{"order.channel": "web"}, {"order.paid": True}]}, True),
        ({"$and": [{"order.channel": "web"}, {"order.paid": False}]}, False),
        ({"$not": {"order.channel": "web"}}, False),
        ({"$not": {"order.channel": "pos"}}, True),
        ({"order.id": {"$eq": "T3JkZXI6MQ=="}, "order.paid": True}, True),
        (
            {
                "order.lines": {
                    "$eq": [{"sku": "AB-1", "quantity": 2}, {"sku": "CD-2", "quantity": 1}]
                }
            },
            True,
        ),
        ({"order.lines.0": {"$eq": {"sku": "AB-1"}}}, False),  # objects compare whole
        ({}, True),
    ],
)
def test_operators_on_an_order_payload(document: dict[str, Any], expected: bool) -> None:
    assert compile_filter(document).matches(ORDER) is expected


@pytest.mark.parametrize(
    ("document", "payload", "expected"),
    [
        ({"flag": 1}, {"flag": True}, False),  # true is not 1
        ({"flag": True}, {"flag": 1}, False),
        ({"flag": True}, {"flag": True}, True),
        ({"n": 1}, {"n": 1.0}, True),  # 1 is 1.0 in JSON
        ({"n": {"$gt": 0}}, {"n": True}, False),  # booleans are not numbers
        ({"n": {"$gt": 5}}, {"n": "10"}, False),  # strings and numbers never compare
        ({"s": {"$gt": "2025-01-01"}}, {"s": "2025-06-30T12:00:00Z"}, True),  # ISO times
        ({"s": {"$lt": "2025-01-01"}}, {"s": 20240101}, False),
        ({"s": "1"}, {"s": 1}, False),
        ({"s": None}, {"s": 0}, False),
        ({"a.b": 1}, [{"a": {"b": 1}}], True),  # a root array is looked into as well
        ({"a": {"$regex": "x"}}, {"a": 5}, False),
        ({"a": {"$startsWith": "x"}}, {"a": ["y", "xz"]}, True),
    ],
)
def test_types_never_mix(document: dict[str, Any], payload: Any, expected: bool) -> None:
    assert compile_filter(document).matches(payload) is expected


def test_regex_skips_strings_over_the_subject_cap() -> None:
    rule = compile_filter({"text": {"$regex": "needle"}})
    assert rule.matches({"text": "x" * (MAX_REGEX_SUBJECT - 6) + "needle"})
    assert not rule.matches({"text": "x" * MAX_REGEX_SUBJECT + "needle"})


def test_matches_body_parses_json_and_refuses_the_rest() -> None:
    rule = compile_filter({"order.channel": "web"})
    assert rule.matches_body(json.dumps(ORDER).encode())
    assert not rule.matches_body(b"not json")
    assert not rule.matches_body(b"[" * 100_000 + b"]" * 100_000)  # too deep for json


def test_deep_payloads_only_cost_the_length_of_the_path() -> None:
    deep: Any = "leaf"
    for _ in range(50_000):  # deeper than any recursion could go
        deep = {"a": deep}
    assert compile_filter({"a.a.a": {"$exists": True}}).matches(deep)
    assert not compile_filter({"b": 1}).matches(deep)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "0", "x"]), children, max_size=4)
    ),
    max_leaves=30,
)
SAMPLE_FILTERS = [
    compile_filter(doc)
    for doc in (
        {"a": 1},
        {"a.b": {"$gte": 0}},
        {"a.0.x": {"$in": [None, True, "a"]}},
        {"$or": [{"a": {"$exists": False}}, {"b.x": {"$regex": "^a"}}]},
        {"a": {"$not": {"$lt": 3}}, "b": {"$ne": [1, 2]}},
        {"x": {"b": {"$startsWith": ""}}},
    )
]


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_matching_never_raises_on_any_json(payload: Any) -> None:
    for rule in SAMPLE_FILTERS:
        assert isinstance(rule.matches(payload), bool)


def test_exists_and_not_exists_partition_every_payload() -> None:
    present, absent = (
        compile_filter({"a.b": {"$exists": True}}),
        compile_filter({"a.b": {"$exists": False}}),
    )
    payloads: list[Any] = [{}, {"a": 1}, {"a": {"b": None}}, {"a": [{"b": 1}, 2]}, {"a": []}]
    for payload in payloads:
        assert present.matches(payload) is not absent.matches(payload)


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "place", "problem"),
    [
        ({"a": {"$foo": 1}}, "a > $foo", "unknown operator '$foo'"),
        ({"$nor": []}, "$nor", "unknown operator '$nor'"),
        ({"a": {"$gt": [1]}}, "a > $gt", "a number or a string"),
        ({"a": {"$gte": None}}, "a > $gte", "a number or a string"),
        ({"a": {"$in": "web"}}, "a > $in", "a list"),
        ({"a": {"$exists": 1}}, "a > $exists", "true or false"),
        ({"a": {"$regex": 5}}, "a > $regex", "string pattern"),
        ({"a": {"$regex": "("}}, "a > $regex", "invalid regular expression"),
        ({"a": {"$regex": "(a+)+$"}}, "a > $regex", "repeated group"),
        ({"a": {"$regex": "(x|xy)*z"}}, "a > $regex", "repeated group"),
        ({"a": {"$regex": "((ab)*c)+"}}, "a > $regex", "repeated group"),
        ({"a": {"$regex": "(a)\\1"}}, "a > $regex", "backreferences"),
        ({"a": {"$regex": "x" * (MAX_REGEX_LENGTH + 1)}}, "a > $regex", "at most"),
        ({"a": {"$regex": "x", "$options": "q"}}, "a > $options", "letters from"),
        ({"a": {"$options": "i"}}, "a > $options", "only goes with $regex"),
        ({"a": {"$startsWith": 1}}, "a > $startsWith", "a string"),
        ({"a": {"$not": "x"}}, "a > $not", "object of operators"),
        ({"a": {"$not": {"b": 1}}}, "a > $not", "operators only"),
        ({"a": {"$eq": 1, "b": 2}}, "a", "mixes operators"),
        ({"a": {}}, "a", "ambiguous"),
        ({"$or": []}, "$or", "non-empty list"),
        ({"$or": [1]}, "$or[0]", "filter object"),
        ({"$and": {"a": 1}}, "$and", "non-empty list"),
        ({"$not": {}}, "$not", "non-empty filter"),
        ({"$or": [{"a": {"$bad": 1}}]}, "$or[0] > a > $bad", "unknown operator"),
        ({"a..b": 1}, "a..b", "empty segments"),
        ({".a": 1}, ".a", "empty segments"),
        ({"a.$b": 1}, "a.$b", "may not start with '$'"),
        ({"a": float("nan")}, "a", "not a JSON number"),
        ({"a": {"$gt": float("inf")}}, "a > $gt", "not a JSON number"),
        ({"a": {"$in": [1, object()]}}, "a > $in > [1]", "not a JSON value"),
        ({"a": {"b": {1: 2}}}, "a > b", "must be a string"),
        ({"a": {"$eq": {"b": b"x"}}}, "a > $eq > b", "not a JSON value"),
    ],
)
def test_bad_filters_are_refused_naming_the_place(
    document: dict[Any, Any], place: str, problem: str
) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        compile_filter(document)
    assert caught.value.field == "filter"
    assert f"filter at {place}: " in str(caught.value)
    assert problem in str(caught.value)


def test_a_filter_must_be_an_object() -> None:
    for bad in (["a"], "a", 1, None):
        with pytest.raises(InvalidFieldError, match="must be a JSON object"):
            compile_filter(bad)  # type: ignore[arg-type]


def test_depth_is_capped() -> None:
    def nested(levels: int) -> dict[str, Any]:
        doc: dict[str, Any] = {"leaf": 1}
        for _ in range(levels):
            doc = {"$and": [doc]}
        return doc

    assert compile_filter(nested(MAX_DEPTH - 1)).matches({"leaf": 1})
    with pytest.raises(InvalidFieldError, match=f"deeper than {MAX_DEPTH} levels"):
        compile_filter(nested(MAX_DEPTH + 1))
    literal: Any = 1
    for _ in range(MAX_DEPTH + 1):
        literal = [literal]
    with pytest.raises(InvalidFieldError, match="deeper than"):
        compile_filter({"a": {"$eq": literal}})


def test_size_is_capped() -> None:
    with pytest.raises(InvalidFieldError, match="too large"):
        compile_filter({"a": {"$in": list(range(5000))}})
    with pytest.raises(InvalidFieldError, match=f"at most {MAX_DOCUMENT_BYTES} allowed"):
        compile_filter({"a": {"$in": ["x" * 1000] * 20}})


# -- the value ------------------------------------------------------------------------------


def test_filters_are_values_and_keep_their_document() -> None:
    doc = {"order.total": {"$gte": 100}, "order.channel": "web"}
    one, two = compile_filter(doc), compile_filter(dict(reversed(doc.items())))
    assert one == two and hash(one) == hash(two)
    assert one != compile_filter({"order.total": {"$gte": 101}})
    assert one.document == doc and one.document is not one.document
    assert json.loads(one.to_json()) == doc
    assert compile_filter(one) is one
    assert repr(one) == f"PayloadFilter({one.to_json()})"
    assert filter_from_json(one.to_json()) == one
    assert filter_from_json(one.to_json()) is filter_from_json(one.to_json())  # compiled once
    with pytest.raises(InvalidFieldError, match="stored filter is not JSON"):
        filter_from_json("{")


def test_filters_pickle_and_copy_as_their_document() -> None:
    rule = compile_filter({"order.total": {"$gte": 100}})
    webhook = Webhook(id="w", app_id="a", target_url="https://x.example/", filter=rule)
    for copied in (pickle.loads(pickle.dumps(webhook)), copy.deepcopy(webhook)):
        assert copied == webhook and copied.filter == rule
        assert copied.filter is not None and copied.filter.matches({"order": {"total": 100}})


# -- webhooks with a filter -------------------------------------------------------------------


async def test_webhooks_take_a_filter_at_create_and_update(kit: WebhookKit) -> None:
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    webhook = await kit.webhooks.create(
        app,
        target_url="https://erp.example.com/hook",
        events=["ORDER_CREATED"],
        filter={"order.total": {"$gte": 100}},
    )
    assert webhook.filter == compile_filter({"order.total": {"$gte": 100}})
    assert (await kit.webhooks.get(webhook.id)).filter == webhook.filter
    changed = await kit.webhooks.update(webhook.id, filter={"order.channel": "pos"})
    assert changed.filter is not None and changed.filter.document == {"order.channel": "pos"}
    assert (await kit.webhooks.update(webhook.id, name="renamed")).filter == changed.filter
    assert (await kit.webhooks.update(webhook.id, filter={})).filter is None  # Outpost: {} clears
    assert (await kit.webhooks.update(webhook.id, filter=changed.filter)).filter == changed.filter
    assert (await kit.webhooks.update(webhook.id, filter=None)).filter is None


async def test_a_bad_filter_stores_nothing(kit: WebhookKit) -> None:
    app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
    with pytest.raises(InvalidFieldError) as caught:
        await kit.webhooks.create(
            app,
            target_url="https://erp.example.com/hook",
            events=["ORDER_CREATED"],
            filter={"order.total": {"$between": [1, 2]}},
        )
    assert caught.value.field == "filter"
    assert "order.total > $between" in str(caught.value)
    assert await kit.webhooks.list(app) == []
    webhook = await kit.webhooks.create(
        app, target_url="https://erp.example.com/hook", events=["ORDER_CREATED"]
    )
    with pytest.raises(InvalidFieldError, match="repeated group"):
        await kit.webhooks.update(webhook.id, filter={"email": {"$regex": "(.*a)+"}})
    assert (await kit.webhooks.get(webhook.id)).filter is None


StoreFactory = Callable[[], Store]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, StoreFactory]]:
    """A store kind and a factory of stores on one database (file, PostgreSQL database)."""
    kind: str = request.param
    async with contextlib.AsyncExitStack() as stack:
        dsn = None
        if kind == "postgres":
            cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
            dsn = await stack.enter_async_context(cluster.database())
        yield kind, lambda: make_store(kind, tmp_path, dsn)


async def test_filters_survive_the_store(stores: tuple[str, StoreFactory]) -> None:
    kind, factory = stores
    rule = compile_filter(
        {"order.total": {"$gte": 100}, "order.email": {"$regex": "@example\\.com$"}}
    )
    store = factory()
    await store.open()
    try:
        await store.put_webhook(
            Webhook(id="w1", app_id="a1", target_url="https://x.example/", filter=rule)
        )
        await store.put_webhook(Webhook(id="w2", app_id="a1", target_url="https://x.example/"))
        if kind != "memory":  # read back through a new store: the filter went to the database
            await store.aclose()
            store = factory()
            await store.open()
        found, plain = await store.get_webhook("w1"), await store.get_webhook("w2")
        listed = {w.id: w for w in await store.list_webhooks()}
    finally:
        await store.aclose()
    assert found is not None and found.filter == rule
    assert plain is not None and plain.filter is None
    assert listed["w1"].filter == rule and listed["w2"].filter is None
    assert found.filter.matches({"order": {"total": 120, "email": "ada@example.com"}})
    assert not found.filter.matches({"order": {"total": 120, "email": "ada@example.org"}})


# -- at trigger time ----------------------------------------------------------------------------


def _hook(webhook_id: str, document: dict[str, Any] | None = None) -> Webhook:
    return Webhook(
        id=webhook_id,
        app_id="a",
        target_url="https://x.example/",
        filter=compile_filter(document) if document else None,
    )


def test_filter_targets_keeps_matching_webhooks_and_reports_the_rest() -> None:
    plain, big, pos = (
        _hook("plain"),
        _hook("big", {"total": {"$gte": 100}}),
        _hook("pos", {"channel": "pos"}),
    )
    small = PayloadGroup(b'{"total": 10, "channel": "pos"}', (plain, big, pos))
    large = PayloadGroup(b'{"total": 500, "channel": "web"}', (big, pos))
    empty = PayloadGroup(None, (big,), reason="empty payload")
    groups, skipped = filter_targets([small, large, empty])
    assert [g.webhooks for g in groups] == [(plain, pos), (big,), (big,)]
    assert [g.body for g in groups] == [small.body, large.body, None]
    assert skipped == [big, pos]
    # A group whose webhooks are all filtered out disappears; unfiltered groups stay as is.
    groups, skipped = filter_targets([large, PayloadGroup(b"{}", (plain,))])
    assert [g.webhooks for g in groups] == [(big,), (plain,)]
    assert skipped == [pos]


def test_filter_targets_skips_filtered_webhooks_when_the_body_is_not_json() -> None:
    plain, big = _hook("plain"), _hook("big", {"total": {"$gte": 100}})
    groups, skipped = filter_targets([PayloadGroup(b"<xml/>", (plain, big))])
    assert [g.webhooks for g in groups] == [(plain,)]
    assert skipped == [big]


# -- docs/filters.md ------------------------------------------------------------------------


def test_the_examples_in_docs_filters_md_run_as_written() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks, "docs/filters.md has no python examples"
    for code in blocks:
        result = subprocess.run(
            [sys.executable, "-W", "error", "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{code}\n{result.stderr}"


def test_every_operator_of_the_language_is_documented() -> None:
    text = DOC.read_text()
    source = Path(webhookkit.filters.__file__).read_text()
    for operator in sorted(set(re.findall(r'"(\$\w+)"', source))):
        assert f"`{operator}`" in text, f"{operator} is not in docs/filters.md"


def test_payload_filter_is_exported_where_documented() -> None:
    assert PayloadFilter.__module__ == "webhookkit.filters"
