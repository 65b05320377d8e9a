"""Real local servers for the transport tests: moto's SQS server and Google's Pub/Sub emulator.

Each runs as a child process on a free 127.0.0.1 port, in its own process group so that
stopping it also stops what its launcher script started (the emulator is a Java process).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = [
    "EMULATOR_BINARY",
    "EMULATOR_INSTALL_HINT",
    "LocalServer",
    "ServerUnavailableError",
    "free_port",
    "start_moto",
    "start_pubsub_emulator",
]

EMULATOR_BINARY = Path(
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"
)
EMULATOR_INSTALL_HINT = (
    "Google's Pub/Sub emulator is needed for the Pub/Sub transport tests. Install it with "
    "'apt-get install google-cloud-cli-pubsub-emulator' (Google Cloud CLI apt repository; "
    "it needs Java 17): `dpkg -L google-cloud-cli-pubsub-emulator` must list "
    f"{EMULATOR_BINARY}."
)


class ServerUnavailableError(RuntimeError):
    """A test server could not be started; the message says why and how to fix it."""


def free_port() -> int:
    """A port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalServer:
    """A started child process answering HTTP on ``url``."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        """Stop the process group this server started, then remove its log."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()
        with contextlib.suppress(OSError):
            self.log_path.unlink()


def _start(name: str, argv: list[str], port: int, probe_path: str, timeout: float) -> LocalServer:
    fd, log_name = tempfile.mkstemp(prefix=f"webhookkit-{name}-", suffix=".log")
    log = os.fdopen(fd, "wb")
    process = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    server = LocalServer(name, process, port, Path(log_name), log)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            tail = server.log_tail()
            server.stop()
            raise ServerUnavailableError(f"{name} exited with {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(server.url + probe_path, timeout=1):
                return server
        except urllib.error.HTTPError:
            return server  # it answered, even if with an error status
        except OSError:
            pass
        if time.monotonic() > deadline:
            tail = server.log_tail()
            server.stop()
            raise ServerUnavailableError(f"{name} did not answer within {timeout:g} s:\n{tail}")
        time.sleep(0.1)


def start_moto(timeout: float = 60.0) -> LocalServer:
    """moto's standalone server (``moto_server`` next to this Python) on a free port."""
    binary = Path(sys.executable).parent / "moto_server"
    if not binary.exists():
        raise ServerUnavailableError(
            f"{binary} not found: install the dev dependencies ('pip install \"moto[server]\"')"
        )
    port = free_port()
    argv = [str(binary), "-H", "127.0.0.1", "-p", str(port)]
    return _start("moto", argv, port, "/moto-api/", timeout)


def start_pubsub_emulator(binary: Path | None = None, timeout: float = 60.0) -> LocalServer:
    """Google's Pub/Sub emulator on a free port; raises with the install hint if absent.

    ``binary`` defaults to ``$WEBHOOKKIT_PUBSUB_EMULATOR``, else the Debian package's path.
    """
    if binary is None:
        binary = Path(os.environ.get("WEBHOOKKIT_PUBSUB_EMULATOR") or EMULATOR_BINARY)
    if not binary.exists():
        raise ServerUnavailableError(f"{binary} does not exist. {EMULATOR_INSTALL_HINT}")
    port = free_port()
    argv = [str(binary), "--host=127.0.0.1", f"--port={port}"]
    return _start("pubsub-emulator", argv, port, "/", timeout)
