"""A raw asyncio HTTP/1.1 receiver in its own process: keep-alive, ``200 ok``, counts POSTs.

It parses only what it must (the header block and ``Content-Length``), so it costs a fraction
of what any client costs and cannot be the bottleneck (its CPU use is reported beside every
run). ``GET /_stats`` answers ``{"count": POSTs so far, "cpu": CPU seconds so far}``, so any
process can read it over HTTP. With ``delay`` every answer waits that long (a slow endpoint).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Receiver", "ReceiverStats", "read_stats"]

ROOT = Path(__file__).resolve().parents[1]
_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class _State:
    count = 0


def _cpu_seconds() -> float:
    """utime + stime of this process from /proc (no psutil)."""
    with open(f"/proc/{os.getpid()}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class _Protocol(asyncio.Protocol):
    def __init__(self, state: _State, delay: float) -> None:
        self._state = state
        self._delay = delay
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def _answer(self, response: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(response)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        while True:  # requests may arrive pipelined or split across reads
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else None])
            total = end + 4 + length
            if len(buf) < total:
                return
            del buf[:total]
            if head.startswith(b"get /_stats"):
                body = json.dumps({"count": self._state.count, "cpu": _cpu_seconds()}).encode()
                self._answer(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + b"Content-Length: %d\r\n\r\n" % len(body)
                    + body
                )
                continue
            self._state.count += 1
            if self._delay:
                asyncio.get_running_loop().call_later(self._delay, self._answer, _OK)
            else:
                self._answer(_OK)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


def serve(delay: float) -> None:
    """Run the receiver; print its port on stdout; stop when stdin closes."""

    async def main() -> None:
        state = _State()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Protocol(state, delay), "127.0.0.1", 0, backlog=2048
        )
        print(server.sockets[0].getsockname()[1], flush=True)
        stop = asyncio.Event()
        loop.add_reader(sys.stdin.fileno(), stop.set)  # the parent closing our stdin stops us
        await stop.wait()
        server.close()

    asyncio.run(main())


@dataclass(frozen=True)
class ReceiverStats:
    count: int
    cpu: float
    at: float

    def cpu_percent(self, since: ReceiverStats) -> float:
        """Share of one core the receiver used between ``since`` and this reading."""
        wall = self.at - since.at
        return 100.0 * (self.cpu - since.cpu) / wall if wall > 0 else 0.0


def read_stats(url: str) -> ReceiverStats:
    """``GET /_stats`` of the receiver at ``url`` (http://127.0.0.1:PORT) over a plain socket."""
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /_stats HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    values = json.loads(data.split(b"\r\n\r\n", 1)[1])
    return ReceiverStats(int(values["count"]), float(values["cpu"]), time.monotonic())


class Receiver:
    """The receiver process; ``url`` is its base URL (``http://127.0.0.1:PORT``)."""

    def __init__(self, delay: float = 0.0) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._receiver", str(delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError("the receiver process did not start")
        self.pid = self._process.pid
        self.url = f"http://127.0.0.1:{line}"

    def stats(self) -> ReceiverStats:
        return read_stats(self.url)

    def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    serve(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)
