"""Fixtures for the engine tests: a signing key file, a fast counting receiver on 127.0.0.1
and a supervisor for worker subprocesses (PostgreSQL comes from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.procs import CountingReceiver, Workers, start_counting_receiver
from webhookkit.signing import generate_key

__all__ = ["counting_receiver", "key_file", "workers"]


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """An EdDSA private key (cheap to sign with) shared by the test and its workers."""
    path = tmp_path / "signing-key.pem"
    path.write_bytes(generate_key("EdDSA").private_pem())
    return path


@pytest.fixture
async def counting_receiver() -> AsyncIterator[CountingReceiver]:
    receiver, cleanup = await start_counting_receiver()
    try:
        yield receiver
    finally:
        await cleanup()


@pytest.fixture
async def workers(tmp_path: Path, key_file: Path) -> AsyncIterator[Workers]:
    """Starts ``python -m webhookkit worker`` processes; any left running are killed."""
    supervisor = Workers(tmp_path, key_file)
    try:
        yield supervisor
    finally:
        await supervisor.aclose()
