"""Saleor's rules for apps, tokens and webhooks: each rule, each typed error, nothing stored."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Receiver

from webhookkit import (
    ANY_EVENTS,
    DuplicateError,
    InvalidEventsError,
    InvalidFieldError,
    InvalidHeaderError,
    InvalidURLError,
    NotFoundError,
    UnknownEventError,
    UnknownPermissionError,
    WebhookKit,
)
from webhookkit.apps import (
    hash_token,
    validate_api_url,
    validate_custom_headers,
    validate_domain,
    validate_name,
)


async def make_app(kit: WebhookKit, **kwargs: Any) -> str:
    app = await kit.apps.create("shop-sync", permissions=["MANAGE_ORDERS"], **kwargs)
    return app.id


# -- apps ---------------------------------------------------------------------------------


async def test_app_create_update_delete_round_trip(kit: WebhookKit) -> None:
    app = await kit.apps.create("ERP", permissions=["manage_orders"], identifier="erp.app")
    assert app.permissions == frozenset({"MANAGE_ORDERS"})
    assert await kit.apps.get(app.id) == app
    updated = await kit.apps.update(app.id, is_active=False, permissions=["MANAGE_PRODUCTS"])
    assert not updated.is_active
    assert updated.permissions == frozenset({"MANAGE_PRODUCTS"})
    assert updated.name == "ERP"
    await kit.apps.delete(app.id)
    with pytest.raises(NotFoundError, match="app"):
        await kit.apps.get(app.id)


async def test_unknown_permission_is_rejected_and_nothing_stored(kit: WebhookKit) -> None:
    with pytest.raises(UnknownPermissionError, match="MANAGE_EVERYTHING"):
        await kit.apps.create("x", permissions=["MANAGE_EVERYTHING"])
    assert await kit.apps.list() == []


@pytest.mark.parametrize("name", ["", "   ", "n" * 256])
async def test_bad_app_names_are_rejected(kit: WebhookKit, name: str) -> None:
    with pytest.raises(InvalidFieldError, match="name"):
        await kit.apps.create(name)
    assert await kit.apps.list() == []


async def test_deleting_an_app_deletes_its_webhooks_and_tokens(
    kit: WebhookKit, receiver: Receiver
) -> None:
    app_id = await make_app(kit)
    webhook = await kit.webhooks.create(app_id, target_url=receiver.url, events=["ORDER_CREATED"])
    token = await kit.apps.create_token(app_id)
    await kit.apps.delete(app_id)
    with pytest.raises(NotFoundError):
        await kit.webhooks.get(webhook.id)
    assert await kit.apps.authenticate(token.raw) is None


# -- tokens -------------------------------------------------------------------------------


async def test_tokens_are_returned_once_and_only_hashed_in_store(kit: WebhookKit) -> None:
    app_id = await make_app(kit)
    first = await kit.apps.create_token(app_id, name="ci")
    second = await kit.apps.create_token(app_id, name="deploy")
    raw = first.raw.reveal()
    assert len(raw) >= 32
    assert raw != second.raw.reveal()
    stored = await kit.apps.list_tokens(app_id)
    assert {t.id for t in stored} == {first.token.id, second.token.id}
    for token in stored:
        assert raw not in repr(token)
        assert token.token_hash != raw
        assert token.last_4 in (raw[-4:], second.raw.reveal()[-4:])
    app = await kit.apps.authenticate(raw)
    assert app is not None and app.id == app_id


async def test_revoked_token_no_longer_authenticates(kit: WebhookKit) -> None:
    app_id = await make_app(kit)
    new = await kit.apps.create_token(app_id)
    await kit.apps.revoke_token(new.token.id)
    assert await kit.apps.authenticate(new.raw) is None
    with pytest.raises(NotFoundError, match="token"):
        await kit.apps.revoke_token(new.token.id)


async def test_inactive_app_token_does_not_authenticate(kit: WebhookKit) -> None:
    app_id = await make_app(kit)
    new = await kit.apps.create_token(app_id)
    await kit.apps.update(app_id, is_active=False)
    assert await kit.apps.authenticate(new.raw) is None


async def test_duplicate_imported_token_is_rejected(kit: WebhookKit) -> None:
    first = await make_app(kit)
    second = await make_app(kit)
    await kit.apps.create_token(first, token="imported-token-0123456789")
    with pytest.raises(DuplicateError, match="already in use"):
        await kit.apps.create_token(second, token="imported-token-0123456789")
    assert await kit.apps.list_tokens(second) == []


async def test_short_imported_token_and_missing_app_are_rejected(kit: WebhookKit) -> None:
    app_id = await make_app(kit)
    with pytest.raises(InvalidFieldError, match="token"):
        await kit.apps.create_token(app_id, token="short")
    with pytest.raises(NotFoundError, match="app"):
        await kit.apps.create_token("no-such-app")


# -- webhooks -----------------------------------------------------------------------------


async def test_webhook_for_a_missing_app_is_rejected(kit: WebhookKit) -> None:
    with pytest.raises(NotFoundError, match="app: no app with id 'missing'"):
        await kit.webhooks.create("missing", target_url="https://x.example/", events=[])
    assert await kit.webhooks.list() == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "non-empty"),
        ("not a url", "whitespace"),
        ("example.com/hook", "no scheme"),
        ("ftp://example.com/hook", "no transport for scheme 'ftp'"),
        ("https:///path-only", "no host"),
        ("https://example.com:99999/", "malformed"),
        ("https://example.com/\x00", "control"),
        ("https://example.com/" + "a" * 3000, "at most 2048"),
    ],
)
async def test_bad_target_urls_are_rejected(kit: WebhookKit, url: str, message: str) -> None:
    app_id = await make_app(kit)
    with pytest.raises(InvalidURLError, match=message) as info:
        await kit.webhooks.create(app_id, target_url=url, events=["ORDER_CREATED"])
    assert info.value.field == "target_url"
    assert await kit.webhooks.list() == []


async def test_unknown_event_is_rejected_with_suggestions(kit: WebhookKit) -> None:
    app_id = await make_app(kit)
    with pytest.raises(UnknownEventError, match="ORDER_CREATED") as info:
        await kit.webhooks.create(app_id, target_url="https://x.example/", events=["ORDER_CREATD"])
    assert info.value.field == "events"
    assert await kit.webhooks.list() == []


async def test_notify_user_must_be_alone(kit: WebhookKit) -> None:
    app_id = await make_app(kit)
    with pytest.raises(InvalidEventsError, match="NOTIFY_USER must be the only event"):
        await kit.webhooks.create(
            app_id, target_url="https://x.example/", events=["NOTIFY_USER", "ORDER_CREATED"]
        )
    assert await kit.webhooks.list() == []
    alone = await kit.webhooks.create(
        app_id, target_url="https://x.example/", events=["NOTIFY_USER"]
    )
    assert alone.events == frozenset({"notify_user"})
    with pytest.raises(InvalidEventsError):
        await kit.webhooks.update(alone.id, events=["notify_user", ANY_EVENTS])
    assert (await kit.webhooks.get(alone.id)).events == frozenset({"notify_user"})


async def test_events_as_a_single_string_is_rejected(kit: WebhookKit) -> None:
    app_id = await make_app(kit)
    with pytest.raises(InvalidEventsError, match="single string"):
        await kit.webhooks.create(app_id, target_url="https://x.example/", events="ORDER_CREATED")


async def test_query_without_schema_is_rejected(kit: WebhookKit) -> None:
    app_id = await make_app(kit)
    with pytest.raises(InvalidFieldError, match="subscription_query"):
        await kit.webhooks.create(app_id, target_url="https://x.example/", subscription_query=" ")
    assert await kit.webhooks.list() == []


async def test_webhook_update_and_delete(kit: WebhookKit) -> None:
    app_id = await make_app(kit)
    webhook = await kit.webhooks.create(
        app_id, target_url="https://x.example/a", events=["ORDER_CREATED"], name="orders"
    )
    updated = await kit.webhooks.update(
        webhook.id,
        target_url="https://x.example/b",
        is_active=False,
        custom_headers={"X-Tenant": "7"},
    )
    assert updated.target_url == "https://x.example/b"
    assert not updated.is_active
    assert updated.custom_headers == (("x-tenant", "7"),)
    assert updated.name == "orders"
    with pytest.raises(InvalidURLError):
        await kit.webhooks.update(webhook.id, target_url="gopher://x")
    assert (await kit.webhooks.get(webhook.id)).target_url == "https://x.example/b"
    await kit.webhooks.delete(webhook.id)
    with pytest.raises(NotFoundError):
        await kit.webhooks.delete(webhook.id)


async def test_secret_key_limits(kit: WebhookKit) -> None:
    app_id = await make_app(kit)
    for bad in ("", "k" * 256):
        with pytest.raises(InvalidFieldError, match="secret_key"):
            await kit.webhooks.create(
                app_id, target_url="https://x.example/", events=[], secret_key=bad
            )
    assert await kit.webhooks.list() == []


async def test_bad_signing_profile_is_rejected(kit: WebhookKit) -> None:
    app_id = await make_app(kit)
    with pytest.raises(InvalidFieldError, match="signing_profile"):
        await kit.webhooks.create(
            app_id, target_url="https://x.example/", events=[], signing_profile="pgp"
        )


# -- custom headers -----------------------------------------------------------------------


def test_custom_headers_are_lowercased() -> None:
    headers = validate_custom_headers(
        {"X-Api-Key": "abc", "Authorization": "Bearer t", "BrokerProperties": '{"Label":"x"}'}
    )
    assert headers == (
        ("x-api-key", "abc"),
        ("authorization", "Bearer t"),
        ("brokerproperties", '{"Label":"x"}'),
    )
    assert validate_custom_headers({"authorization-extra": "v", "X-Tab": "a\tb c"}) == (
        ("authorization-extra", "v"),
        ("x-tab", "a\tb c"),
    )


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({f"X-H{i}": "v" for i in range(6)}, "6 headers given, at most 5"),
        ({"Content-Type": "text/plain"}, "must start with 'X-' or 'Authorization'"),
        ({"Saleor-Event": "x"}, "must start with 'X-'"),
        ({"X-Bad Key": "v"}, "without ':' or spaces"),
        ({"X-Bad:Key": "v"}, "without ':' or spaces"),
        ({"X-Ünicode": "v"}, "printable ASCII"),
        ({"X-Key": "line\nbreak"}, "value must be printable ASCII"),
        ({"X-Key": "caf\u00e9"}, "value must be printable ASCII"),
        ({"X-Key": "v" * 992}, "at most 998"),
        ([("X-Key", "a"), ("x-key", "b")], "duplicate key"),
    ],
)
def test_bad_custom_headers_are_rejected(headers: Any, message: str) -> None:
    with pytest.raises(InvalidHeaderError, match=message) as info:
        validate_custom_headers(headers)
    assert info.value.field == "custom_headers"


def test_header_size_limit_is_inclusive_at_998() -> None:
    # key 5 + value 991 + 2 (": ") = 998: allowed; one more character is not.
    assert validate_custom_headers({"X-Key": "v" * 991})
    with pytest.raises(InvalidHeaderError):
        validate_custom_headers({"X-Key": "v" * 992})


async def test_bad_headers_store_nothing(kit: WebhookKit) -> None:
    app_id = await make_app(kit)
    with pytest.raises(InvalidHeaderError):
        await kit.webhooks.create(
            app_id, target_url="https://x.example/", events=[], custom_headers={"Host": "evil"}
        )
    assert await kit.webhooks.list() == []


# -- text no store keeps, and values of the wrong type ---------------------------------------


@pytest.mark.parametrize("bad", ["caf\udce9", "a\x00b", "\ud800", "esc\x1b"])
async def test_names_with_unstorable_characters_are_refused(kit: WebhookKit, bad: str) -> None:
    with pytest.raises(InvalidFieldError, match="name:") as caught:
        await kit.apps.create(bad, permissions=["MANAGE_ORDERS"])
    assert caught.value.field == "name"
    app_id = await make_app(kit)
    with pytest.raises(InvalidFieldError, match="name:"):
        await kit.webhooks.create(
            app_id, target_url="https://x.example/", events=["ORDER_CREATED"], name=bad
        )
    assert [a.id for a in await kit.apps.list()] == [app_id]
    assert await kit.webhooks.list() == []


def test_tabs_and_newlines_in_names_are_kept() -> None:
    assert validate_name("two\tparts\nand a line\r") == "two\tparts\nand a line\r"


@pytest.mark.parametrize(
    "url", ["https://x.example/\udcff", "https://x\x00.example/", "https://x.example/\x7f"]
)
async def test_urls_with_unstorable_characters_are_refused(kit: WebhookKit, url: str) -> None:
    app_id = await make_app(kit)
    with pytest.raises(InvalidURLError, match="target_url"):
        await kit.webhooks.create(app_id, target_url=url, events=["ORDER_CREATED"])


@pytest.mark.parametrize(
    "headers", [["x"], ["ab"], [("x-a", "1", "2")], "x-a: 1", b"x-a", 42, [42], [("x-a",)]]
)
async def test_custom_headers_that_are_no_pairs_are_refused(kit: WebhookKit, headers: Any) -> None:
    app_id = await make_app(kit)
    with pytest.raises(InvalidHeaderError, match="custom_headers") as caught:
        await kit.webhooks.create(
            app_id,
            target_url="https://x.example/",
            events=["ORDER_CREATED"],
            custom_headers=headers,
        )
    assert caught.value.field == "custom_headers"


@pytest.mark.parametrize(
    "secret",
    [b"bytes-secret", 42, 4.2, {"k": "v"}, [b"whsec_x"], [42], [["nested"]], "a\x00b", "\udcff"],
)
async def test_secret_keys_of_the_wrong_type_or_text_are_refused(
    kit: WebhookKit, secret: Any
) -> None:
    app_id = await make_app(kit)
    with pytest.raises(InvalidFieldError, match="secret_key") as caught:
        await kit.webhooks.create(
            app_id, target_url="https://x.example/", events=["ORDER_CREATED"], secret_key=secret
        )
    assert caught.value.field == "secret_key"
    assert "\udcff" not in str(caught.value) and "bytes-secret" not in str(caught.value)


@pytest.mark.parametrize("profile", [["saleor"], None, 1, "SALEOR "])
async def test_unknown_signing_profiles_are_refused(kit: WebhookKit, profile: Any) -> None:
    app_id = await make_app(kit)
    with pytest.raises(InvalidFieldError, match="signing_profile"):
        await kit.webhooks.create(
            app_id,
            target_url="https://x.example/",
            events=["ORDER_CREATED"],
            signing_profile=profile,
        )


@pytest.mark.parametrize("events", [42, b"ORDER_CREATED", None])
async def test_events_that_are_no_list_are_refused(kit: WebhookKit, events: Any) -> None:
    app_id = await make_app(kit)
    with pytest.raises(InvalidEventsError, match="events"):
        await kit.webhooks.create(app_id, target_url="https://x.example/", events=events)


def test_hash_token_never_raises_for_a_string() -> None:
    assert len(hash_token("tok\udcff")) == 64
    assert hash_token("tok\udcff") != hash_token("tok\ufffd")


# -- the shop's domain and API URL ----------------------------------------------------------


@pytest.mark.parametrize(
    "domain",
    ["shop.example.com", "localhost:8000", "127.0.0.1", "[::1]:8000", "xn--bcher-kva.example"],
)
def test_good_domains(domain: str) -> None:
    assert validate_domain(domain) == domain


@pytest.mark.parametrize(
    "domain",
    [
        "",
        "shop\x00.example.com",
        "shop .example.com",
        "shop.example.com\r\n",
        "https://shop.example.com",
        "shop.example.com/graphql",
        "user@shop.example.com",
        "shop.example.com:99999",
        "shop\udcff.example",
        "a" * 254,
        None,
        42,
    ],
)
def test_bad_domains(domain: Any) -> None:
    with pytest.raises(InvalidFieldError, match="domain") as caught:
        validate_domain(domain)
    assert caught.value.field == "domain"


@pytest.mark.parametrize(
    "url",
    ["https://shop.example.com/graphql/", "http://127.0.0.1:8000/graphql/", "https://[::1]/g/"],
)
def test_good_api_urls(url: str) -> None:
    assert validate_api_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "https://shop.example.com/graphql/\r\nX-Injected: 1",
        "https://shop.example.com/\n",
        "https://shop.example.com/a b",
        "https://shop\x00.example.com/",
        "ftp://shop.example.com/",
        "/graphql/",
        "shop.example.com/graphql/",
        "https:///graphql/",
        "https://shop.example.com:notaport/",
        "https://shop\udcff.example/",
        None,
        b"https://shop.example.com/",
    ],
)
def test_bad_api_urls(url: Any) -> None:
    with pytest.raises(InvalidURLError, match="api_url") as caught:
        validate_api_url(url)
    assert caught.value.field == "api_url"


# -- the managers: ids, flags, permissions, tokens, timeouts --------------------------------


async def test_a_webhook_needs_events_or_a_query(kit: WebhookKit) -> None:
    app_id = await make_app(kit)
    with pytest.raises(InvalidEventsError, match="events: give events") as caught:
        await kit.webhooks.create(app_id, target_url="https://x.example/")
    assert caught.value.field == "events"
    webhook = await kit.webhooks.create(
        app_id, target_url="https://x.example/", events=["ORDER_CREATED"]
    )
    with pytest.raises(InvalidEventsError, match="events"):
        await kit.webhooks.update(webhook.id, events=[])
    assert (await kit.webhooks.get(webhook.id)).events == frozenset({"order_created"})


@pytest.mark.parametrize("flag", ["false", 0, 1, None, "yes"])
async def test_flags_must_be_booleans(kit: WebhookKit, flag: Any) -> None:
    with pytest.raises(InvalidFieldError, match="is_active"):
        await kit.apps.create("erp", is_active=flag)
    app_id = await make_app(kit)
    common: dict[str, Any] = {"target_url": "https://x.example/", "events": ["ORDER_CREATED"]}
    with pytest.raises(InvalidFieldError, match="is_active"):
        await kit.webhooks.create(app_id, is_active=flag, **common)
    with pytest.raises(InvalidFieldError, match="ordered"):
        await kit.webhooks.create(app_id, ordered=flag, **common)
    assert await kit.webhooks.list() == []


@pytest.mark.parametrize("bad", [42, None, "", "id\x00", "id\udcff", ["a"]])
async def test_ids_that_no_store_can_look_up_are_typed_errors(kit: WebhookKit, bad: Any) -> None:
    with pytest.raises(InvalidFieldError, match="app"):
        await kit.apps.get(bad)
    with pytest.raises(InvalidFieldError, match="webhook"):
        await kit.webhooks.get(bad)
    with pytest.raises(InvalidFieldError, match="webhook"):
        await kit.webhooks.delete(bad)
    with pytest.raises(InvalidFieldError, match="token"):
        await kit.apps.revoke_token(bad)
    if bad is not None:
        with pytest.raises(InvalidFieldError, match="app"):
            await kit.webhooks.create(
                bad, target_url="https://x.example/", events=["ORDER_CREATED"]
            )


@pytest.mark.parametrize(
    "permissions", [[42], [None], ["MANAGE_ORDERS", b"MANAGE_USERS"], 42, b"MANAGE", {"a": 1}]
)
async def test_permissions_must_be_names(kit: WebhookKit, permissions: Any) -> None:
    with pytest.raises(InvalidFieldError, match="permissions"):
        await kit.apps.create("erp", permissions=permissions)
    assert await kit.apps.list() == []


async def test_permission_names_with_surrogates_are_refused(kit: WebhookKit) -> None:
    with pytest.raises(InvalidFieldError, match="permissions"):
        await kit.apps.create("erp", permissions=["MANAGE_\udcffORDERS"])


@pytest.mark.parametrize("name", [42, None, "", "   ", b"erp"])
async def test_app_names_must_be_non_empty_text(kit: WebhookKit, name: Any) -> None:
    with pytest.raises(InvalidFieldError, match="name"):
        await kit.apps.create(name)
    app_id = await make_app(kit)
    with pytest.raises(InvalidFieldError, match="name"):
        await kit.apps.update(app_id, name=name)


@pytest.mark.parametrize(
    "token", [42, b"0123456789abcdef0", "short", "0123456789abcdef\udcff", "0123456789 abcdef"]
)
async def test_imported_tokens_must_be_printable_text(kit: WebhookKit, token: Any) -> None:
    app_id = await make_app(kit)
    with pytest.raises(InvalidFieldError, match="token") as caught:
        await kit.apps.create_token(app_id, token=token)
    assert "0123456789" not in str(caught.value)
    assert await kit.apps.list_tokens(app_id) == []


@pytest.mark.parametrize("raw", [42, None, "", "tok\udcff"])
async def test_authenticate_answers_none_for_any_bad_token(kit: WebhookKit, raw: Any) -> None:
    assert await kit.apps.authenticate(raw) is None


@pytest.mark.parametrize("timeouts", [5, 5.0, (2, 20), {"connect": 2}, "20s"])
async def test_timeouts_must_be_a_timeouts_object(kit: WebhookKit, timeouts: Any) -> None:
    app_id = await make_app(kit)
    with pytest.raises(InvalidFieldError, match="timeouts"):
        await kit.webhooks.create(
            app_id, target_url="https://x.example/", events=["ORDER_CREATED"], timeouts=timeouts
        )
