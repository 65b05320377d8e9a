"""Run the ``webhookkit`` command in a subprocess, blocking or from a running event loop."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass

COMMAND = [sys.executable, "-m", "webhookkit"]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def env_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    """For commands that need nothing from this process's event loop."""
    done = subprocess.run(
        [*COMMAND, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env if env is not None else env_without("WEBHOOKKIT_STORE"),
    )
    return Result(done.returncode, done.stdout, done.stderr)


async def arun(*args: str, stdin: str | None = None) -> Result:
    """For commands that talk to a receiver served by the test's own event loop."""
    proc = await asyncio.create_subprocess_exec(
        *COMMAND,
        *args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env_without("WEBHOOKKIT_STORE"),
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), 60)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def one_line_error(result: Result) -> str:
    """The error a user sees: exactly one line, no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]
