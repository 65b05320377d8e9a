"""Every ```python block of README.md and docs/*.md runs as written, each in its own
interpreter. A block defining ``test_`` functions runs under pytest (pytest-asyncio in auto
mode, as docs/testing.md says). Only ``<!-- not-run: reason -->`` right above a block exempts
it; those are counted and printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .blocks import Block, all_blocks

BLOCKS = all_blocks()
PYTHON = [b for b in BLOCKS if b.lang == "python"]
RUNNABLE = [b for b in PYTHON if b.not_run is None]
EXEMPT = [b for b in PYTHON if b.not_run is not None]
TIMEOUT = 90


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKKIT_")}


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    if "def test_" in block.code:
        script = tmp_path / "test_block.py"
        script.write_text(block.code, "utf-8")
        command = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
            str(script),
        ]  # fmt: skip
    else:
        script = tmp_path / "block.py"
        script.write_text(block.code, "utf-8")
        command = [sys.executable, str(script)]
    done = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=_env(),
    )
    assert done.returncode == 0, (
        f"{block.id} failed as written:\n{block.code}\n--- stdout\n{done.stdout}"
        f"\n--- stderr\n{done.stderr}"
    )


def test_blocks_were_found_and_exemptions_say_why(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(PYTHON) >= 25
    for block in EXEMPT:
        assert block.not_run, f"{block.id}: <!-- not-run: --> needs a reason"
    with capsys.disabled():
        print(f"\n{len(RUNNABLE)} python blocks run, {len(EXEMPT)} marked not-run:")
        for block in EXEMPT:
            print(f"  {block.id}: {block.not_run}")


def test_not_run_markers_sit_on_python_blocks() -> None:
    """A marker above a ```py or ```pycon block would exempt nothing: say so."""
    misplaced = [b.id for b in BLOCKS if b.not_run is not None and b.lang != "python"]
    assert misplaced == []
