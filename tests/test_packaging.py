"""The built wheel, installed into a fresh venv without dev tools, runs the quickstart."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEV_TOOLS = {"pytest", "mypy", "ruff", "hypothesis", "moto", "mkdocs", "trustme"}


def _run(*command: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(c) for c in command],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}},
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", out, ROOT)
    [built] = out.glob("webhookkit-*.whl")
    return built


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    """Wheels of the pinned runtime dependencies, kept in the temp dir between runs (keyed by
    pyproject.toml and constraints.txt), so the fresh venv installs offline in seconds."""
    pins = (ROOT / "pyproject.toml").read_bytes() + (ROOT / "constraints.txt").read_bytes()
    house = (
        Path(tempfile.gettempdir())
        / f"webhookkit-wheelhouse-{hashlib.sha256(pins).hexdigest()[:16]}"
    )
    if not (house / ".complete").exists():
        requirements = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"][
            "dependencies"
        ]
        _run(
            sys.executable, "-m", "pip", "wheel", "--quiet", "-c", ROOT / "constraints.txt",
            "-w", house, *requirements,
        )  # fmt: skip
        (house / ".complete").touch()
    return house


def test_the_wheel_carries_licence_urls_data_and_entry_points(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(info).decode())
        entry_points = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert {"webhookkit/py.typed", "webhookkit/_data/saleor-events.json"} <= names
    assert "webhookkit/cli/__init__.py" in names and "webhookkit/pytest_plugin.py" in names
    assert not any(n.startswith(("tests/", "docs/", "examples/")) for n in names)
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert set(urls) == {"Homepage", "Documentation", "Repository", "Issues"}
    assert all(u.startswith("https://github.com/webhookkit/webhookkit") for u in urls.values())
    assert "webhookkit = webhookkit.cli:main" in entry_points
    assert "webhookkit = webhookkit.pytest_plugin" in entry_points


def test_a_fresh_venv_installs_the_wheel_without_dev_tools_and_runs_the_quickstart(
    wheel: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    # No pip inside either: this interpreter's pip installs into it (``pip --python``).
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--python", python]
    # Runtime dependencies at the pinned versions, nothing else, without reaching an index.
    _run(
        *pip, "install", "--quiet", "--no-index", "--find-links", wheelhouse,
        "-c", ROOT / "constraints.txt", wheel,
    )  # fmt: skip
    installed = {
        line.split("==")[0].split(" @ ")[0].lower()
        for line in _run(*pip, "freeze", "--all").splitlines()
    }
    assert {"webhookkit", "aiohttp", "cryptography", "graphql-core", "tenacity"} <= installed
    assert installed.isdisjoint(DEV_TOOLS)
    where = _run(python, "-c", "import webhookkit; print(webhookkit.__file__)", cwd=tmp_path)
    assert where.startswith(str(venv))  # the installed copy, not this checkout
    assert "listen" in _run(venv / "bin" / "webhookkit", "--help", cwd=tmp_path)
    out = _run(python, ROOT / "examples" / "quickstart.py", cwd=tmp_path)
    assert "all deliveries verified" in out
