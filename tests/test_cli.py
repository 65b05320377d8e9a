"""``python -m webhookkit``: the catalogue, keys, a JWKS, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from webhookkit.signing import jwk_thumbprint


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "webhookkit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_events_lists_the_catalogue_as_json() -> None:
    result = run("events", "--json", "--kind", "sync")
    assert result.returncode == 0, result.stderr
    events = json.loads(result.stdout)
    assert len(events) == 23
    assert {"name": "CHECKOUT_CALCULATE_TAXES", "value": "checkout_calculate_taxes"}.items() <= (
        next(e for e in events if e["name"] == "CHECKOUT_CALCULATE_TAXES").items()
    )


def test_a_generated_key_gives_a_jwks_with_its_thumbprint(tmp_path: Path) -> None:
    key = run("keys")
    assert key.returncode == 0, key.stderr
    assert key.stdout.startswith("-----BEGIN PRIVATE KEY-----")
    pem = tmp_path / "key.pem"
    pem.write_text(key.stdout)
    jwks = run("jwks", "--signing-key-file", str(pem))
    assert jwks.returncode == 0, jwks.stderr
    [jwk] = json.loads(jwks.stdout)["keys"]
    assert jwk["alg"] == "RS256" and jwk["kid"] == jwk_thumbprint(jwk)
    assert "PRIVATE" not in jwks.stdout and '"d"' not in jwks.stdout


def test_bad_input_is_a_short_error_not_a_traceback(tmp_path: Path) -> None:
    missing = run("jwks", "--signing-key-env", "WEBHOOKKIT_TEST_NO_SUCH_VAR")
    assert missing.returncode == 2
    assert "WEBHOOKKIT_TEST_NO_SUCH_VAR" in missing.stderr
    assert "Traceback" not in missing.stderr
    garbage = tmp_path / "bad.pem"
    garbage.write_text("not a key")
    bad = run("jwks", "--signing-key-file", str(garbage))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    store = run("worker", "--store", "mysql://db/x")
    assert store.returncode == 2 and "store" in store.stderr
