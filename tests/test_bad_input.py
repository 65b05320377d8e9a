"""Generated bad input over the public API, on the memory, SQLite and PostgreSQL stores.

Every call either succeeds or raises a :class:`WebhookKitError` subclass whose message names
the field at fault; it never raises anything else, never freezes the event loop (each call
runs under ``asyncio.timeout(5)``), and after a refusal the store holds exactly what it held
before (apps, tokens, webhooks, deliveries). Inputs mix valid values with wrong types, NUL
and other control characters, lone surrogates, huge and negative numbers, nested and
recursive structures.

The kits live on one event loop in a background thread for the whole module (hypothesis
examples are plain functions); :func:`make_kit` is the only place that builds one.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stores.pgcluster import PostgresCluster

from webhookkit import HTTPTransport, RetryPolicy, Timeouts, WebhookKit
from webhookkit.delivery.isolation import IsolationConfig
from webhookkit.exceptions import ConfigurationError, SignatureError, WebhookKitError
from webhookkit.signing import (
    HMACVerifier,
    JWKSVerifier,
    JWSSigner,
    KeySet,
    StandardWebhooksVerifier,
    Verifier,
    generate_key,
    load_key,
    new_secret,
)
from webhookkit.stores import DeliveryQuery, Store, open_store
from webhookkit.stores.base import Retention
from webhookkit.testing import FakeClock

T = TypeVar("T")
KINDS = ("memory", "sqlite", "postgres")
CASE_TIMEOUT = 5.0
#: Nothing listens there: accepted triggers fail fast and FakeClock never retries them.
TARGET = "http://127.0.0.1:9/hook"

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def make_kit(store: Store) -> WebhookKit:
    """The one place this file builds a kit."""
    return WebhookKit(
        domain="shop.example.com",
        store=store,
        clock=FakeClock(),
        transports=[HTTPTransport(allow_addresses=["127.0.0.1/32"])],
    )


# -- the world: three started kits on a loop of their own --------------------------------------


@dataclass
class Base:
    """An app and a webhook each case may update or trigger for."""

    app_id: str
    webhook_id: str


@dataclass
class World:
    loop: asyncio.AbstractEventLoop
    kits: dict[str, WebhookKit] = field(default_factory=dict)
    base: dict[str, Base] = field(default_factory=dict)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)


@pytest.fixture(scope="module")
def world(pg_cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="bad-input-loop", daemon=True)
    thread.start()
    state = World(loop)
    stack = contextlib.AsyncExitStack()
    tmp: Path = tmp_path_factory.mktemp("bad-input")

    async def setup() -> None:
        for kind in KINDS:
            if kind == "memory":
                store = open_store("memory://")
            elif kind == "sqlite":
                store = open_store(f"sqlite:///{tmp}/bad.db")
            else:
                store = open_store(await stack.enter_async_context(pg_cluster.database()))
            stack.push_async_callback(store.aclose)  # the kit does not close a store it was lent
            kit = await stack.enter_async_context(make_kit(store))
            app = await kit.apps.create("base", permissions=["MANAGE_ORDERS"])
            webhook = await kit.webhooks.create(
                app, target_url=TARGET, events=["ORDER_CREATED"], name="base"
            )
            state.kits[kind] = kit
            state.base[kind] = Base(app.id, webhook.id)

    try:
        state.run(setup())
        yield state
    finally:
        state.run(stack.aclose())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


async def snapshot(kit: WebhookKit) -> tuple[Any, ...]:
    """Everything the store holds, in a comparable form."""
    apps = sorted(
        (a.id, a.name, a.is_active, sorted(a.permissions), a.identifier)
        for a in await kit.apps.list()
    )
    tokens = sorted([t.id for a in await kit.apps.list() for t in await kit.apps.list_tokens(a.id)])
    webhooks = sorted(
        (
            w.id,
            w.app_id,
            w.name,
            w.target_url,
            w.is_active,
            sorted(w.events),
            w.subscription_query,
            w.secret_key.reveal() if w.secret_key else None,
            w.custom_headers,
            w.signing_profile,
            w.timeouts,
            w.ordered,
        )
        for w in await kit.webhooks.list()
    )
    # Ids only: deliveries of earlier accepted triggers are being attempted in the background,
    # so their status and attempt count move on their own; a refusal must add or drop none.
    deliveries = sorted(d.id for d in await kit.list_deliveries(DeliveryQuery(limit=10_000)))
    return apps, tokens, webhooks, deliveries


def check_refusal(exc: WebhookKitError) -> None:
    """The message names the field at fault (configuration) or says what is wrong."""
    text = str(exc)
    assert text, f"{type(exc).__name__} without a message"
    if isinstance(exc, ConfigurationError):
        assert exc.field, f"{type(exc).__name__} without a field: {text}"
        assert exc.field in text, f"field {exc.field!r} not named in {text!r}"


Action = Callable[[WebhookKit, Base], Awaitable[Any]]


def on_every_store(
    world: World,
    action: Action,
    undo: Callable[[WebhookKit, Any], Awaitable[None]] | None = None,
) -> None:
    """Run ``action`` on each store's kit: accepted, or refused with the store unchanged."""

    async def one(kind: str) -> None:
        kit, base = world.kits[kind], world.base[kind]
        before = await snapshot(kit)
        refusal: WebhookKitError | None = None
        try:
            async with asyncio.timeout(CASE_TIMEOUT):
                result = await action(kit, base)
        except WebhookKitError as exc:
            refusal = exc
        if refusal is None:
            if undo is not None:
                await undo(kit, result)
            return
        check_refusal(refusal)
        after = await snapshot(kit)
        assert after == before, f"{kind}: the store changed after {refusal!r}"

    for kind in KINDS:
        world.run(one(kind))


# -- strategies -------------------------------------------------------------------------------

NASTY_CHARS = ["\x00", "\udcff", "\ud800", "\x1b", "\x7f", "\r", "\n", "\t", "\u2028", "\ufeff"]
nasty_text = st.text(st.one_of(st.characters(), st.sampled_from(NASTY_CHARS)), max_size=20)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    nasty_text,
    st.binary(max_size=12),
)
anything = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.tuples(scalars, scalars),
    st.dictionaries(nasty_text, scalars, max_size=3),
)
names = st.one_of(st.sampled_from(["erp", "", "  ", "x" * 256]), nasty_text, anything)
permissions = st.one_of(
    st.lists(
        st.one_of(st.sampled_from(["MANAGE_ORDERS", "manage_users", "NOPE"]), nasty_text),
        max_size=3,
    ),
    anything,
)
flags = st.one_of(st.booleans(), anything)
urls = st.one_of(
    st.sampled_from(
        [
            TARGET,
            "https://hooks.example.com/a",
            "ftp://x.example/",
            "http://",
            "http://[::1",
            "http://x.example:99999/",
            "awssqs://",
            "https://x.example/\r\nX: 1",
        ]
    ),
    nasty_text.map(lambda t: f"https://x.example/{t}"),
    nasty_text.map(lambda t: f"http://{t}/"),
    anything,
)
events = st.one_of(
    st.lists(
        st.one_of(
            st.sampled_from(["ORDER_CREATED", "order_updated", "ANY_EVENTS", "NOTIFY_USER"]),
            nasty_text,
            st.integers(),
        ),
        max_size=3,
    ),
    anything,
)
headers = st.one_of(
    st.none(),
    st.dictionaries(
        st.one_of(st.sampled_from(["X-Key", "Authorization", "Content-Type"]), nasty_text),
        st.one_of(st.just("v"), nasty_text),
        max_size=6,
    ),
    st.lists(st.one_of(st.tuples(nasty_text, nasty_text), nasty_text, anything), max_size=3),
    anything,
)
secrets = st.one_of(
    st.none(),
    st.sampled_from(["k", "with space", "whsec_" + "A" * 43, "x" * 300]),
    st.lists(st.one_of(nasty_text, st.binary(max_size=4), st.integers()), max_size=3),
    anything,
)
queries = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "subscription { event { ... on OrderCreated { order { id } } } }",
            "subscription {",
            "{ x }",
            "subscription { event { ... on Nope { x } } }",
            "subscription { event { ...on OrderCreated { order { id } } } } " + "#" * 10,
            "subscription " + "{ a " * 200 + "}" * 200,
        ]
    ),
    nasty_text,
    anything,
)
profiles = st.one_of(st.sampled_from(["saleor", "standard-webhooks", "SALEOR"]), anything)
timeouts = st.one_of(
    st.none(),
    st.builds(
        lambda c, t: (c, t),
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(allow_nan=True, allow_infinity=True),
    ),
    anything,
)

WEBHOOK_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "target_url": urls,
    "events": events,
    "custom_headers": headers,
    "secret_key": secrets,
    "subscription_query": queries,
    "signing_profile": profiles,
    "timeouts": timeouts,
    "name": names,
    "is_active": flags,
    "ordered": flags,
}


def webhook_fields(required: bool) -> st.SearchStrategy[dict[str, Any]]:
    optional = st.fixed_dictionaries(
        {}, optional={k: v for k, v in WEBHOOK_FIELDS.items() if k != "target_url" or not required}
    )
    if not required:
        return optional
    return st.builds(lambda url, rest: {"target_url": url, **rest}, urls, optional)


def as_timeouts(value: Any) -> Any:
    """Turn a drawn (connect, total) pair into a Timeouts attempt, refusals included."""
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, float) for v in value):
        return Timeouts(connect=value[0], total=value[1])
    return value


async def _delete_app(kit: WebhookKit, app: Any) -> None:
    await kit.apps.delete(getattr(app, "id"))  # noqa: B009 - the result is typed object


async def _delete_webhook(kit: WebhookKit, webhook: Any) -> None:
    await kit.webhooks.delete(getattr(webhook, "id"))  # noqa: B009


# -- apps ---------------------------------------------------------------------------------------


@SETTINGS
@given(name=names, perms=permissions, identifier=st.one_of(st.none(), names), active=flags)
def test_app_create(world: World, name: Any, perms: Any, identifier: Any, active: Any) -> None:
    async def action(kit: WebhookKit, base: Base) -> object:
        return await kit.apps.create(
            name, permissions=perms, identifier=identifier, is_active=active
        )

    on_every_store(world, action, _delete_app)


@SETTINGS
@given(
    changes=st.fixed_dictionaries(
        {},
        optional={
            "name": names,
            "permissions": permissions,
            "identifier": st.one_of(st.none(), names),
            "is_active": flags,
        },
    ),
    app_id=st.one_of(st.none(), nasty_text, anything),
)
def test_app_update(world: World, changes: dict[str, Any], app_id: Any) -> None:
    async def action(kit: WebhookKit, base: Base) -> object:
        target = base.app_id if app_id is None else app_id
        return await kit.apps.update(target, **changes)

    async def restore(kit: WebhookKit, app: Any) -> None:
        base_app = next(a for a in await kit.apps.list() if a.name == app.name)
        await kit.apps.update(
            base_app.id, name="base", permissions=["MANAGE_ORDERS"], is_active=True
        )

    on_every_store(world, action, restore)


@SETTINGS
@given(name=names, token=st.one_of(st.none(), nasty_text, anything, st.just("t" * 20)))
def test_app_tokens(world: World, name: Any, token: Any) -> None:
    async def action(kit: WebhookKit, base: Base) -> object:
        return await kit.apps.create_token(base.app_id, name=name, token=token)

    async def revoke(kit: WebhookKit, created: Any) -> None:
        await kit.apps.revoke_token(created.token.id)

    on_every_store(world, action, revoke)


# -- webhooks -----------------------------------------------------------------------------------


@SETTINGS
@given(fields=webhook_fields(required=True), app=st.one_of(st.none(), nasty_text, anything))
def test_webhook_create(world: World, fields: dict[str, Any], app: Any) -> None:
    async def action(kit: WebhookKit, base: Base) -> object:
        given = {k: as_timeouts(v) if k == "timeouts" else v for k, v in fields.items()}
        return await kit.webhooks.create(base.app_id if app is None else app, **given)

    on_every_store(world, action, _delete_webhook)


@SETTINGS
@given(fields=webhook_fields(required=False))
def test_webhook_update(world: World, fields: dict[str, Any]) -> None:
    async def action(kit: WebhookKit, base: Base) -> object:
        given = {k: as_timeouts(v) if k == "timeouts" else v for k, v in fields.items()}
        return await kit.webhooks.update(base.webhook_id, **given)

    async def restore(kit: WebhookKit, webhook: Any) -> None:
        await kit.webhooks.update(
            webhook.id,
            target_url=TARGET,
            events=["ORDER_CREATED"],
            subscription_query=None,
            custom_headers=None,
            secret_key=None,
            signing_profile="saleor",
            timeouts=None,
            name="base",
            is_active=True,
            ordered=False,
        )

    on_every_store(world, action, restore)


# -- trigger payloads ---------------------------------------------------------------------------


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def looped() -> Any:
    value: list[Any] = []
    value.append(value)
    return {"self": value}


json_like = st.recursive(
    st.one_of(scalars, st.floats()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(nasty_text, inner, max_size=3)
    ),
    max_leaves=10,
)
payloads = st.one_of(
    json_like,
    st.integers(min_value=1, max_value=200_000).map(nested),
    st.builds(looped),
    st.sampled_from([object(), {1, 2}, complex(1, 2), float("nan"), b"\xff", b"{}", "[", "\udcff"]),
    st.dictionaries(
        st.one_of(st.integers(), st.none(), st.tuples(st.integers())), scalars, max_size=2
    ),
)


@settings(SETTINGS, max_examples=40)
@given(payload=payloads, event=st.one_of(st.just("ORDER_CREATED"), nasty_text, anything))
def test_trigger_payloads(world: World, payload: Any, event: Any) -> None:
    async def action(kit: WebhookKit, base: Base) -> object:
        return await kit.trigger(event, payload=payload)

    on_every_store(world, action)


# -- keys and verifiers (no store involved) -----------------------------------------------------


def run_quick(world: World, call: Callable[[], Any]) -> None:
    """``call`` (sync or async) under the case timeout: accepted, or a WebhookKitError."""

    async def go() -> None:
        async with asyncio.timeout(CASE_TIMEOUT):
            try:
                result = call()
                if asyncio.iscoroutine(result):
                    await result
            except WebhookKitError as exc:
                check_refusal(exc)

    world.run(go())


PEM = generate_key("EdDSA").private_pem().decode()


@SETTINGS
@given(
    pem=st.one_of(
        anything,
        nasty_text.map(lambda t: f"-----BEGIN PRIVATE KEY-----\n{t}\n-----END PRIVATE KEY-----\n"),
        st.integers(min_value=0, max_value=len(PEM)).map(lambda n: PEM[:n]),
    ),
    password=st.one_of(st.none(), anything),
)
def test_load_key(world: World, pem: Any, password: Any) -> None:
    run_quick(world, lambda: load_key(pem, password=password))


@SETTINGS
@given(
    kid=st.one_of(nasty_text, anything),
    retire_after=st.one_of(st.just(timedelta(minutes=5)), anything),
    now=st.one_of(st.none(), st.datetimes(), st.datetimes(timezones=st.just(UTC)), anything),
    op=st.sampled_from(["get", "activate", "retire", "remove", "prune", "jwks", "add"]),
)
def test_key_set_operations(world: World, kid: Any, retire_after: Any, now: Any, op: str) -> None:
    keys = KeySet.generate("EdDSA")

    def call() -> object:
        if op == "get":
            return keys.get(kid)
        if op == "activate":
            keys.activate(kid, retire_after=retire_after, now=now)
        elif op == "retire":
            keys.retire(kid, until=now)
        elif op == "remove":
            keys.remove(kid)
        elif op == "prune":
            return keys.prune(now)
        elif op == "jwks":
            return keys.jwks(now)
        else:
            return keys.add(kid)
        return None

    run_quick(world, call)
    keys.active  # noqa: B018 - the set still has its signing key


SIGNER = JWSSigner(KeySet.generate("EdDSA"))
VERIFIERS: list[Verifier] = [
    HMACVerifier("secret"),
    JWKSVerifier(jwks=SIGNER.jwks()),
    StandardWebhooksVerifier(new_secret()),
]
header_names = st.sampled_from(
    [
        "Saleor-Signature",
        "X-Saleor-Signature",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    ]
)
header_maps = st.one_of(
    st.dictionaries(st.one_of(header_names, nasty_text, scalars), anything, max_size=4),
    st.dictionaries(header_names, nasty_text, max_size=5),
    anything,
)


@settings(SETTINGS, max_examples=60)
@given(body=st.one_of(st.binary(max_size=64), anything), headers=header_maps)
def test_verifiers_raise_only_signature_errors(world: World, body: Any, headers: Any) -> None:
    async def go() -> None:
        for verifier in VERIFIERS:
            async with asyncio.timeout(CASE_TIMEOUT):
                with contextlib.suppress(SignatureError):
                    await verifier.verify(body, headers)

    world.run(go())


# -- store URLs, queries and options -------------------------------------------------------------

store_urls = st.one_of(
    st.sampled_from(
        [
            "postgresql://[::1",
            "postgresql://h:0/db",
            "postgresql://h/db?x",
            "sqlite://",
            "sqlite:///",
            "memory://x",
            "redis://h",
        ]
    ),
    nasty_text.map(lambda t: f"postgresql://{t}/db"),
    nasty_text.map(lambda t: f"postgresql://h:{t}/db"),
    nasty_text.map(lambda t: f"sqlite:///{t}"),
    anything,
)


@SETTINGS
@given(url=store_urls)
def test_store_urls(world: World, url: Any) -> None:
    run_quick(world, lambda: open_store(url))


@settings(SETTINGS, max_examples=40)
@given(
    query=st.fixed_dictionaries(
        {},
        optional={
            "webhook_id": st.one_of(st.none(), nasty_text, anything),
            "status": st.one_of(
                st.sampled_from(["pending", "failed", "success", "bogus"]), anything
            ),
            "event": st.one_of(st.none(), nasty_text, anything),
            "created_after": st.one_of(
                st.none(), st.datetimes(), st.datetimes(timezones=st.just(UTC)), anything
            ),
            "created_before": st.one_of(st.none(), st.datetimes(timezones=st.just(UTC)), anything),
            "limit": st.one_of(st.integers(min_value=-5, max_value=20_000), anything),
            "offset": st.one_of(st.integers(min_value=-5, max_value=2**64), anything),
        },
    )
)
def test_delivery_queries(world: World, query: dict[str, Any]) -> None:
    async def action(kit: WebhookKit, base: Base) -> object:
        return await kit.list_deliveries(DeliveryQuery(**query))

    on_every_store(world, action)


spans = st.one_of(
    st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=400 * 366)),
    st.just(timedelta.max),
    anything,
)


@SETTINGS
@given(
    retention=st.fixed_dictionaries(
        {},
        optional={
            "keep_success": st.one_of(st.none(), spans),
            "keep_failed": spans,
            "interval": spans,
        },
    ),
    timeouts_args=st.fixed_dictionaries({}, optional={"connect": anything, "total": anything}),
    isolation=st.fixed_dictionaries(
        {},
        optional={
            "per_endpoint": st.one_of(st.integers(min_value=-3, max_value=10**6), anything),
            "failure_threshold": st.one_of(st.integers(min_value=-3, max_value=10**6), anything),
            "cooldown": spans,
        },
    ),
    retry=st.fixed_dictionaries(
        {},
        optional={
            "retry_statuses": st.one_of(
                st.lists(st.integers(min_value=-1, max_value=700)), anything
            ),
            "honor_retry_after": flags,
            "max_retry_after": st.one_of(st.floats(allow_nan=True, allow_infinity=True), anything),
            "deactivate_on_gone": flags,
            "max_age": st.one_of(st.none(), spans),
        },
    ),
    attempts=st.one_of(st.integers(min_value=-3, max_value=2000), anything),
)
def test_option_objects(
    world: World,
    retention: dict[str, Any],
    timeouts_args: dict[str, Any],
    isolation: dict[str, Any],
    retry: dict[str, Any],
    attempts: Any,
) -> None:
    for build in (
        lambda: Retention(**retention),
        lambda: Timeouts(**timeouts_args),
        lambda: IsolationConfig(**isolation),
        lambda: RetryPolicy(**retry),
        lambda: RetryPolicy.saleor(attempts),
        lambda: RetryPolicy.status_aware(attempts),
    ):
        run_quick(world, build)


def test_a_valid_call_still_works_after_all_the_refusals(world: World) -> None:
    """The kits are usable after every generated case: a valid webhook is created."""

    async def action(kit: WebhookKit, base: Base) -> object:
        webhook = await kit.webhooks.create(
            base.app_id, target_url="https://hooks.example.com/ok", events=["ORDER_UPDATED"]
        )
        assert (await kit.webhooks.get(webhook.id)).target_url.endswith("/ok")
        return webhook

    on_every_store(world, action, _delete_webhook)
