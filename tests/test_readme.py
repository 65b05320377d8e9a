"""The README's two commands and its code example are what new users run first."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

from conftest import Receiver

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


async def test_the_fifteen_line_example_delivers(receiver: Receiver) -> None:
    [code] = re.findall(r"```python\n(.*?)```", README.split("## Fifteen lines", 1)[1], re.S)
    assert len(code.strip().splitlines()) <= 15
    # Point it at a loopback receiver (and let the SSRF guard allow loopback); nothing else
    # in the example changes.
    code = code.replace("https://erp.example.com/webhooks", receiver.url + "/webhooks")
    code = code.replace(
        'WebhookKit(domain="shop.example.com")',
        'WebhookKit(domain="shop.example.com", allow_addresses=["127.0.0.1/32"])',
    )
    assert receiver.url in code and "allow_addresses" in code
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out.decode().split() == ["order_created", "success", "1"]
    [request] = receiver.received
    assert request.path == "/webhooks"
    assert request.body == b'{"order":{"id":"42"}}'
