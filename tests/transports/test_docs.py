"""docs/transports.md: the custom transport example runs and prints what the page says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "transports.md"


def _blocks_after(marker: str) -> tuple[str, str]:
    """The Python block after ``marker`` and the plain block after that (its output)."""
    text = DOC.read_text()
    start = text.index(marker)
    code = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert code is not None, "no python block after the marker"
    output = re.search(r"```\n(.*?)```", text[start + code.end() :], re.S)
    assert output is not None, "no output block after the example"
    return code.group(1), output.group(1)


def test_custom_transport_example_runs_and_prints_the_documented_output() -> None:
    code, expected = _blocks_after("<!-- example: custom-transport -->")
    # A fresh interpreter: the example calls asyncio.run itself, as a user's script would.
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected
