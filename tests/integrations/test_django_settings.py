"""``settings.WEBHOOKKIT`` checks, and the kit built from them (no Django project needed
when the store is given by URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from webhookkit.exceptions import ConfigurationError
from webhookkit.integrations.django import load_settings
from webhookkit.integrations.django._settings import build_kit
from webhookkit.signing import generate_key


def settings(**overrides: Any) -> dict[str, Any]:
    return {"store": "memory://", "domain": "shop.example.com", **overrides}


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (settings(stroe="memory://"), "WEBHOOKKIT", "unknown key(s) ['stroe']"),
        ({"store": "memory://"}, "WEBHOOKKIT.domain", "required"),
        (settings(domain=""), "WEBHOOKKIT.domain", "required"),
        (
            settings(signing_key_file="k.pem", signing_key_env="KEY"),
            "WEBHOOKKIT.signing_key_file",
            "not both",
        ),
        (settings(allow_addresses="127.0.0.1/32"), "WEBHOOKKIT.allow_addresses", "a list"),
        ([("domain", "x")], "WEBHOOKKIT", "must be a dict"),
    ],
)
def test_bad_settings_name_the_key(raw: Any, field: str, words: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings(raw)
    assert refused.value.field == field
    assert words in str(refused.value)


def test_signing_key_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_key("EdDSA")
    path = tmp_path / "key.pem"
    path.write_bytes(key.private_pem())
    from_file = build_kit(load_settings(settings(signing_key_file=str(path))))
    assert from_file.keys.active.kid == key.kid
    monkeypatch.setenv("SHOP_KEY", key.private_pem().decode())
    from_env = build_kit(load_settings(settings(signing_key_env="SHOP_KEY")))
    assert from_env.keys.active.kid == key.kid
    monkeypatch.delenv("SHOP_KEY")
    with pytest.raises(ConfigurationError, match=r"\$SHOP_KEY is not set") as refused:
        build_kit(load_settings(settings(signing_key_env="SHOP_KEY")))
    assert refused.value.field == "WEBHOOKKIT.signing_key_env"
    with pytest.raises(ConfigurationError, match="cannot read it") as refused:
        build_kit(load_settings(settings(signing_key_file=str(tmp_path / "missing.pem"))))
    assert refused.value.field == "WEBHOOKKIT.signing_key_file"


def test_a_password_in_the_store_url_stays_out_of_the_repr() -> None:
    config = load_settings(settings(store="postgresql://shop:hunter2@db/shop"))
    assert "hunter2" not in repr(config)
    assert config.store_alias is None


def test_schema_is_imported_by_dotted_path() -> None:
    with pytest.raises(ConfigurationError, match="cannot import") as refused:
        build_kit(load_settings(settings(schema="no_such_module.schema")))
    assert refused.value.field == "WEBHOOKKIT.schema"
