"""The aiohttp adapter: ``app.add_subapp("/webhooks/", dashboard.aiohttp_app())``."""

from __future__ import annotations

from aiohttp import web

from ._core import Dashboard, DashboardRequest

__all__ = ["aiohttp_app"]


def aiohttp_app(dashboard: Dashboard) -> web.Application:
    """A sub-application with one catch-all route handing requests to ``dashboard``."""

    async def handle(request: web.Request) -> web.StreamResponse:
        tail = request.match_info.get("tail", "")
        root = request.path[: len(request.path) - len(tail)] if tail else request.path
        form: tuple[tuple[str, str], ...] = ()
        if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
            posted = await request.post()
            form = tuple((k, v) for k, v in posted.items() if isinstance(v, str))
        result = await dashboard.handle(
            DashboardRequest(
                method=request.method,
                path="/" + tail,
                query=tuple(request.query.items()),
                form=form,
                cookies=dict(request.cookies),
                headers={k.lower(): v for k, v in request.headers.items()},
                root=root.rstrip("/"),
                secure=request.secure,
                native=request,
            )
        )
        response = web.Response(status=result.status, body=result.body)
        for key, value in result.headers:
            if key.lower() == "content-type":
                response.headers["Content-Type"] = value
            else:
                response.headers.add(key, value)
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
