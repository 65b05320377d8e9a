"""The HTTP transport under uvloop (``webhookkit[speed]``): uvloop's transports are not
``asyncio.Transport`` subclasses, and a send through them once failed on that."""

from __future__ import annotations

import gzip

import pytest
from aiohttp import web

from transports.helpers import outbound
from webhookkit.transports import HTTPTransport

uvloop = pytest.importorskip("uvloop", reason="uvloop is the optional 'speed' extra")


async def _exchange() -> tuple[list[bytes], list[int], list[str], set[object]]:
    seen: list[bytes] = []
    peers: set[object] = set()

    async def hook(request: web.Request) -> web.Response:
        seen.append(await request.read())
        assert request.transport is not None
        peers.add(request.transport.get_extra_info("peername"))
        # A compressed answer: the client decodes what it asked for with Accept-Encoding.
        return web.Response(
            body=gzip.compress(b"thanks " + str(len(seen)).encode()),
            headers={"Content-Encoding": "gzip"},
        )

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    transport = HTTPTransport(allow_addresses=["127.0.0.1/32"])
    try:
        results = [
            await transport.send(outbound(f"http://127.0.0.1:{port}/hook", body=b'{"n":%d}' % n))
            for n in range(3)
        ]
    finally:
        await transport.aclose()
        await runner.cleanup()
    return (
        seen,
        [r.status_code or 0 for r in results],
        [r.response_excerpt for r in results],
        peers,
    )


def test_sends_and_reuses_its_connection_under_uvloop() -> None:
    seen, statuses, excerpts, peers = uvloop.run(_exchange())
    assert seen == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert statuses == [200, 200, 200]
    assert excerpts == ["thanks 1", "thanks 2", "thanks 3"]
    assert len(peers) == 1  # three sequential sends, one kept-alive connection
