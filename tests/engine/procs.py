"""Helpers for the engine tests: a fast counting receiver, worker subprocesses, bounded waits."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aiohttp import web

__all__ = [
    "ROOT",
    "CountingReceiver",
    "WebProcess",
    "Worker",
    "Workers",
    "start_counting_receiver",
    "start_web",
    "wait_until",
]

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CountingReceiver:
    """Counts requests by the number ``n`` in their JSON body; answers 200 at once.

    A request without a signature header or without ``n`` gets 400, so a worker that sends
    something else fails its delivery instead of being counted. ``delay`` holds each answer
    after counting, so a killed sender leaves requests that arrived but were never answered.
    """

    url: str = ""
    counts: Counter[int] = field(default_factory=Counter)
    requests: int = 0
    delay: float = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            number = int(json.loads(body)["n"])
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400, text="no n")
        if not request.headers.get("Saleor-Signature"):
            return web.Response(status=400, text="unsigned")
        self.counts[number] += 1
        self.requests += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=200)

    @property
    def distinct(self) -> int:
        return len(self.counts)

    @property
    def duplicates(self) -> int:
        """Requests beyond the first for each number."""
        return self.requests - len(self.counts)


async def start_counting_receiver() -> tuple[CountingReceiver, Callable[[], Awaitable[None]]]:
    """A :class:`CountingReceiver` on a free 127.0.0.1 port and the coroutine that stops it."""
    receiver = CountingReceiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    return receiver, runner.cleanup


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
) -> None:
    """Poll ``condition`` until it is true; after ``timeout`` seconds fail saying ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


def _open_log(path: Path) -> IO[bytes]:
    return path.open("wb")


def _read_log(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class Worker:
    """One ``python -m webhookkit worker`` process; its stdout and stderr go to ``log``."""

    name: str
    process: asyncio.subprocess.Process
    log: Path

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    def log_tail(self, chars: int = 3000) -> str:
        return _read_log(self.log)[-chars:]


class Workers:
    """Starts worker processes with the test's signing key (None: no key, so they sign with
    the key set kept in the store); kills what is left at the end."""

    def __init__(self, directory: Path, key_file: Path | None) -> None:
        self._dir = directory
        self._key_file = key_file
        self.started: list[Worker] = []

    async def start(
        self,
        store_url: str,
        *,
        concurrency: int,
        lease: float,
        poll: float,
        name: str = "worker",
        domain: str = "shop.example.com",
    ) -> Worker:
        """Start a worker and wait (bounded) until it prints ``worker ready``."""
        log = self._dir / f"{name}-{len(self.started)}.log"
        argv = [
            sys.executable,
            "-m",
            "webhookkit",
            "worker",
            "--store",
            store_url,
            "--domain",
            domain,
            "--concurrency",
            str(concurrency),
            "--lease",
            str(lease),
            "--poll",
            str(poll),
            "--allow",
            "127.0.0.1/32",
        ]
        if self._key_file is not None:
            argv += ["--signing-key-file", str(self._key_file)]
        out = _open_log(log)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        finally:
            out.close()  # the child has its own descriptor
        worker = Worker(name, process, log)
        self.started.append(worker)
        await wait_until(
            lambda: "worker ready" in _read_log(log) or not worker.running,
            timeout=60,
            what=f"{name} to start",
        )
        if not worker.running:
            raise AssertionError(f"{name} exited with {process.returncode}:\n{worker.log_tail()}")
        return worker

    async def kill(self, worker: Worker) -> int:
        """``kill -9``: no handler runs, no lease is handed back."""
        os.kill(worker.process.pid, signal.SIGKILL)
        return await asyncio.wait_for(worker.process.wait(), 30)

    async def terminate(self, worker: Worker, timeout: float = 60) -> int:
        """SIGTERM, the clean stop: in-flight sends finish, unsent leases are handed back."""
        worker.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(worker.process.wait(), timeout)

    async def aclose(self) -> None:
        for worker in self.started:
            if worker.running:
                worker.process.kill()
                await worker.process.wait()


# -- a web process: serves the kit's JWKS, queues deliveries, rotates keys on request --------

_THIS_FILE = Path(__file__).resolve()


@dataclass
class WebProcess:
    """``python tests/engine/procs.py web``: a kit on the store with no key given, serving
    ``kit.jwks()`` at ``/.well-known/jwks.json``. It sends nothing itself (workers do)."""

    process: asyncio.subprocess.Process
    log: Path
    url: str = ""

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/.well-known/jwks.json"

    async def call(self, path: str, body: dict[str, object] | None = None) -> Any:
        """POST ``body`` to the process's control route ``path``; its JSON answer."""
        import aiohttp

        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.url}{path}", json=body or {}) as response,
        ):
            text = await response.text()
            assert response.status == 200, f"{path}: {response.status} {text}"
            return json.loads(text)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def start_web(directory: Path, store_url: str, target_url: str) -> WebProcess:
    """Start the web process (its webhook posts ORDER_CREATED to ``target_url``) and wait,
    bounded, until it serves."""
    log = directory / "web.log"
    out = _open_log(log)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(_THIS_FILE),
            "web",
            store_url,
            target_url,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)},
        )
    finally:
        out.close()
    web_process = WebProcess(process, log)

    def ready() -> bool:
        for line in _read_log(log).splitlines():
            if line.startswith("web ready "):
                web_process.url = f"http://127.0.0.1:{line.split()[2]}"
                return True
        return process.returncode is not None

    await wait_until(ready, timeout=60, what="the web process to start")
    if not web_process.url:
        raise AssertionError(f"web process exited:\n{_read_log(log)[-3000:]}")
    return web_process


async def _serve_web(store_url: str, target_url: str) -> None:
    from webhookkit import WebhookKit
    from webhookkit.integrations.aiohttp import add_jwks_route

    async with WebhookKit(domain="shop.example.com", store=store_url) as kit:
        # This process queues deliveries and serves the JWKS; the workers sign and send.
        await kit.scheduler.stop()
        app = await kit.apps.ensure(identifier="erp", name="ERP", permissions=["MANAGE_ORDERS"])
        await kit.webhooks.ensure(
            app, identifier="orders", target_url=target_url, events=["ORDER_CREATED"]
        )

        async def trigger(request: web.Request) -> web.Response:
            body = await request.json()
            ids: list[str] = []
            for n in range(int(body["first"]), int(body["first"]) + int(body["count"])):
                ids += await kit.trigger("ORDER_CREATED", payload={"n": n})
            return web.json_response({"ids": ids})

        async def add_key(request: web.Request) -> web.Response:
            added = await kit.keys.add()
            return web.json_response({"kid": added.kid})

        async def activate(request: web.Request) -> web.Response:
            kid = (await request.json())["kid"]
            await kit.keys.activate(kid)
            return web.json_response({"active": kit.keys.active.kid})

        server = web.Application()
        add_jwks_route(server, kit)
        server.router.add_post("/trigger", trigger)
        server.router.add_post("/keys/add", add_key)
        server.router.add_post("/keys/activate", activate)
        runner = web.AppRunner(server, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        print(f"web ready {runner.addresses[0][1]}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()


if __name__ == "__main__" and sys.argv[1:2] == ["web"]:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_serve_web(sys.argv[2], sys.argv[3]))
