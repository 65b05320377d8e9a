"""docs/graphql.md runs as written: its Python blocks, in order, print its text blocks."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "graphql.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(kind: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(DOC.read_text()) if lang == kind]


def matches(pattern: str, line: str) -> bool:
    """``...`` in a documented line stands for any text (an ID)."""
    parts = [re.escape(p) for p in pattern.split("...")]
    return re.fullmatch(".*?".join(parts), line) is not None


def test_python_blocks_run_and_print_the_documented_output() -> None:
    code = blocks("python")
    assert len(code) >= 3
    namespace: dict[str, object] = {"__name__": "docs_graphql"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in code:
            exec(compile(block, str(DOC), "exec"), namespace)
    printed = out.getvalue().splitlines()
    expected = [line for block in blocks("text") for line in block.splitlines()]
    assert len(printed) == len(expected), printed
    for want, got in zip(expected, printed, strict=True):
        assert matches(want, got), (want, got)


def test_every_code_block_is_python_or_its_output() -> None:
    assert {lang for lang, _ in BLOCK.findall(DOC.read_text())} == {"python", "text"}
