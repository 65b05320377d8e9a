"""The README's two commands and its code example are what new users run first."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text("utf-8")


def test_readme_names_exactly_the_two_setup_commands_ci_runs() -> None:
    setup = README.split("## Set up", 1)[1].split("##", 1)[0]
    [block] = re.findall(r"```sh\n(.*?)```", setup, re.S)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make quickstart", "make test"]
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    assert [
        line for line in ci.splitlines() if line and not line.startswith(("#", "set", "cd"))
    ] == ["make test"]


def test_the_first_example_delivers_when_pasted_as_is(tmp_path: Path) -> None:
    [code] = re.findall(r"```python\n(.*?)```", README.split("## A first delivery", 1)[1], re.S)
    assert len(code.strip().splitlines()) <= 25
    script = tmp_path / "example.py"
    script.write_text(code, "utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["order_created", "success", "1"]


def test_links_are_absolute_so_they_work_on_a_package_index() -> None:
    targets = re.findall(r"\]\(([^)]+)\)", README)
    assert targets
    relative = [t for t in targets if not t.startswith(("https://", "#"))]
    assert relative == []
    assert all(
        t.startswith("https://github.com/webhookkit/webhookkit/") for t in targets if "://" in t
    )
    for target in targets:  # each points at a file that exists in this repository
        if "/blob/main/" in target or "/tree/main/" in target:
            path = target.split("/main/", 1)[1]
            assert (ROOT / path).exists(), target
