"""The signing benchmark still runs and still shows one JWS per distinct payload."""

from __future__ import annotations

import pytest

from benchmarks import bench_signing


def test_benchmark_runs_and_counts_one_jws_per_payload(capsys: pytest.CaptureFixture[str]) -> None:
    bench_signing.main(["--seconds", "0.01", "--payloads", "3", "--webhooks", "4"])
    out = capsys.readouterr().out
    assert "shared (webhookkit)    |         12 |            3 |" in out
    assert "kit.stats.jws_signatures = 1" in out
    for profile in ("HMAC (secret key)", "JWS RS256", "JWS ES256", "JWS EdDSA", "v1a Ed25519"):
        assert profile in out
