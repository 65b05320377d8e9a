"""Signing keys and the KeySet: kids, PEM loading, rotation states, no leaked private material."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from webhookkit import InvalidKeyError
from webhookkit.signing import (
    ECKey,
    Ed25519Key,
    KeySet,
    KeyState,
    RSAKey,
    SigningKey,
    generate_key,
    jwk_thumbprint,
    load_key,
)
from webhookkit.testing import FakeClock

# RFC 7638 section 3.1: the example RSA key and its thumbprint.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
    "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
    "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
    "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_thumbprint_matches_rfc7638_example() -> None:
    jwk = {"kty": "RSA", "e": "AQAB", "n": RFC7638_N, "alg": "RS256", "kid": "ignored"}
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_kid_is_the_thumbprint_of_the_published_jwk(alg: str) -> None:
    key = generate_key(alg)
    assert key.alg == alg
    assert key.kid == jwk_thumbprint(key.public_jwk)
    assert key.public_jwk["alg"] == alg
    assert key.public_jwk["use"] == "sig"
    assert key.public_jwk["key_ops"] == ["verify"]


def test_rsa_jwk_has_saleors_member_set_in_saleors_order() -> None:
    jwk = RSAKey.generate().public_jwk
    assert list(jwk) == ["kty", "key_ops", "n", "e", "use", "kid", "alg"]
    assert jwk["e"] == "AQAB"


def test_ec_and_okp_jwks_carry_their_curve_members() -> None:
    ec_jwk = ECKey.generate().public_jwk
    assert (ec_jwk["kty"], ec_jwk["crv"]) == ("EC", "P-256")
    assert {"x", "y"} <= set(ec_jwk)
    okp = Ed25519Key.generate().public_jwk
    assert (okp["kty"], okp["crv"]) == ("OKP", "Ed25519")


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_pem_round_trip_keeps_the_kid(
    alg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_key(alg)
    pem = key.private_pem()
    assert load_key(pem).kid == key.kid
    assert load_key(pem.decode()).kid == key.kid
    path = tmp_path / "key.pem"
    path.write_bytes(pem)
    assert type(key).from_file(path).kid == key.kid
    monkeypatch.setenv("WEBHOOKKIT_TEST_KEY", pem.decode())
    assert type(key).from_env("WEBHOOKKIT_TEST_KEY").kid == key.kid


def test_encrypted_pem_needs_its_password() -> None:
    key = RSAKey.generate()
    pem = key.private_pem(password=b"pw")
    assert b"ENCRYPTED" in pem
    assert RSAKey.from_pem(pem, password=b"pw").kid == key.kid
    with pytest.raises(InvalidKeyError, match="not a usable PEM"):
        RSAKey.from_pem(pem)


def test_load_errors_never_echo_the_input(tmp_path: Path) -> None:
    secret_text = "-----BEGIN PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END PRIVATE KEY-----\n"
    with pytest.raises(InvalidKeyError) as caught:
        load_key(secret_text)
    assert "TOPSECRET" not in str(caught.value)
    assert "TOPSECRET" not in repr(caught.value)
    with pytest.raises(InvalidKeyError, match="cannot read"):
        RSAKey.from_file(tmp_path / "missing.pem")
    with pytest.raises(InvalidKeyError, match="not set"):
        RSAKey.from_env("WEBHOOKKIT_SURELY_UNSET_VARIABLE")


def test_unfit_keys_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(InvalidKeyError, match="1024 bits"):
        RSAKey(small)
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(InvalidKeyError, match="P-256"):
        ECKey(p384)
    pem = p384.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(InvalidKeyError, match="P-256"):
        load_key(pem)
    with pytest.raises(InvalidKeyError, match="expected a RS256 key"):
        RSAKey.from_pem(ECKey.generate().private_pem())
    with pytest.raises(InvalidKeyError, match="alg"):
        generate_key("HS256")


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_private_material_stays_out_of_reprs_and_pickles(alg: str) -> None:
    key = generate_key(alg)
    pem_lines = key.private_pem().decode().splitlines()[1:-1]
    keyset = KeySet([key])
    shown = " ".join([repr(key), str(key), repr(keyset), repr(keyset.get(key.kid))])
    assert key.kid in shown
    assert not any(line in shown for line in pem_lines)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(key)


def test_keyset_rotation_in_three_steps() -> None:
    old = RSAKey.generate()
    keys = KeySet([old])
    assert keys.active is old
    assert [e.state for e in keys] == [KeyState.ACTIVE]

    new = RSAKey.generate()
    keys.add(new)  # step 1
    assert keys.active is old
    assert keys.get(new.kid).state is KeyState.NEXT
    assert [k["kid"] for k in keys.jwks(NOW)["keys"]] == [old.kid, new.kid]

    keys.activate(new.kid, retire_after=timedelta(hours=1), now=NOW)  # step 2
    assert keys.active is new
    retired = keys.get(old.kid)
    assert retired.state is KeyState.RETIRED
    assert retired.retire_at == NOW + timedelta(hours=1)
    assert [k["kid"] for k in keys.jwks(NOW)["keys"]] == [new.kid, old.kid]

    # step 3: past the date the old key leaves the JWKS, then prune() drops it
    assert [k["kid"] for k in keys.jwks(NOW + timedelta(hours=1))["keys"]] == [new.kid]
    assert keys.prune(NOW + timedelta(minutes=30)) == []
    assert keys.prune(NOW + timedelta(hours=2)) == [old.kid]
    assert old.kid not in keys
    assert len(keys) == 1


def test_keyset_rules() -> None:
    a, b = RSAKey.generate(), ECKey.generate()
    keys = KeySet([a, b])  # the first key given is active, later ones wait as next
    assert keys.active is a
    assert keys.get(b.kid).state is KeyState.NEXT
    with pytest.raises(InvalidKeyError, match="already in the set"):
        keys.add(a)
    with pytest.raises(InvalidKeyError, match="active key"):
        keys.retire(a.kid)
    with pytest.raises(InvalidKeyError, match="active key"):
        keys.remove(a.kid)
    with pytest.raises(InvalidKeyError, match="no key with kid"):
        keys.activate("nope")
    keys.retire(b.kid)  # no date: published until removed
    assert b.kid in [k["kid"] for k in keys.jwks(NOW + timedelta(days=999))["keys"]]
    keys.remove(b.kid)
    assert b.kid not in keys
    with pytest.raises(InvalidKeyError, match="no active key"):
        _ = KeySet().active


def test_keyset_of_accepts_what_users_pass() -> None:
    key = ECKey.generate()
    assert KeySet.of(key).active is key
    assert KeySet.of(key.private_pem()).active.kid == key.kid
    assert KeySet.of(key.private_pem().decode()).active.kid == key.kid
    keys = KeySet([key])
    assert KeySet.of(keys) is keys
    generated = KeySet.of(None).active
    assert isinstance(generated, RSAKey)
    assert isinstance(generated, SigningKey)


# -- the clock a KeySet reads, and bad inputs ------------------------------------------------


async def test_rotation_steps_follow_the_given_clock() -> None:
    clock = FakeClock()
    keys = KeySet([generate_key("EdDSA")], clock=clock)
    old = keys.active.kid
    new = generate_key("EdDSA")
    keys.add(new)
    keys.activate(new.kid, retire_after=timedelta(minutes=10))
    assert keys.get(old).retire_at == clock.now() + timedelta(minutes=10)
    await clock.advance(599)
    assert [k["kid"] for k in keys.jwks()["keys"]] == [new.kid, old]
    assert keys.prune() == []
    await clock.advance(1)
    assert [k["kid"] for k in keys.jwks()["keys"]] == [new.kid]
    assert keys.prune() == [old]
    # an explicit ``now`` still wins over the clock
    assert KeySet.of(keys, clock=clock) is keys
    assert keys.jwks(now=clock.now() - timedelta(days=1))["keys"][0]["kid"] == new.kid


@pytest.mark.parametrize(
    "pem",
    [
        "",
        "not a pem",
        "-----BEGIN PRIVATE KEY-----\n\udcff\n-----END PRIVATE KEY-----\n",
        b"\xff\xfe",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        42,
        None,
    ],
)
def test_garbage_pem_is_an_invalid_key_error(pem: Any) -> None:
    with pytest.raises(InvalidKeyError, match="key:") as caught:
        load_key(pem)
    assert caught.value.field == "key"


def test_a_password_must_be_bytes() -> None:
    pem = generate_key("EdDSA").private_pem(password=b"pw")
    assert load_key(pem, password=b"pw").alg == "EdDSA"
    with pytest.raises(InvalidKeyError, match="password"):
        load_key(pem, password="pw")  # type: ignore[arg-type]


@pytest.mark.parametrize("alg", [["RS256"], None, "rs256", 256])
def test_unknown_algorithms_are_invalid_key_errors(alg: Any) -> None:
    with pytest.raises(InvalidKeyError, match="alg"):
        generate_key(alg)


def test_key_set_operations_refuse_bad_arguments() -> None:
    keys = KeySet.generate("EdDSA")
    active = keys.active.kid
    for bad_kid in (["x"], 42, None, "missing", "\udcff"):
        with pytest.raises(InvalidKeyError, match="keys: no key"):
            keys.get(bad_kid)  # type: ignore[arg-type]
        with pytest.raises(InvalidKeyError):
            keys.activate(bad_kid)  # type: ignore[arg-type]
        assert bad_kid not in keys
    with pytest.raises(InvalidKeyError, match="keys"):
        KeySet([42])  # type: ignore[list-item]
    with pytest.raises(InvalidKeyError, match="keys"):
        KeySet(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError, match="keys"):
        keys.add("not a key")  # type: ignore[arg-type]
    new = generate_key("EdDSA")
    keys.add(new)
    with pytest.raises(InvalidKeyError, match="retire_after"):
        keys.activate(new.kid, retire_after=60)  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError, match="retire_after"):
        keys.activate(new.kid, retire_after=timedelta.max)
    with pytest.raises(InvalidKeyError, match="now"):
        keys.activate(new.kid, now=datetime(2026, 1, 1))
    with pytest.raises(InvalidKeyError, match="now"):
        keys.prune("today")  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError, match="until"):
        keys.retire(new.kid, until=datetime(2026, 1, 1))
    assert keys.active.kid == active  # nothing changed by the refusals
    assert keys.get(new.kid).state is KeyState.NEXT
