"""Every example runs as a test, as a user would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_delivers_and_verifies_everything() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "all deliveries verified" in out
    rows = [line for line in out.splitlines() if line.startswith("order_")]
    assert len(rows) == 6
    assert all(line.rstrip().endswith("yes") for line in rows)
    assert any(" 2  JWS RS256" in line for line in rows)  # the retried one
    assert '"status": 503' in out


@pytest.mark.parametrize(
    "path",
    sorted(p for p in EXAMPLES.glob("*.py") if p.name != "quickstart.py"),
    ids=lambda p: p.name,
)
def test_example_runs(path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=90, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
