"""An embeddable dashboard for a :class:`~webhookkit.WebhookKit`: apps, tokens, webhooks,
the delivery log and endpoint health, as server-rendered HTML the host mounts in its own
web application (``pip install 'webhookkit[dashboard]'``)::

    dashboard = Dashboard(kit, authorize=permissions_of_the_logged_in_user)
    fastapi_app.mount("/webhooks", dashboard.asgi_app())            # ASGI
    aiohttp_app.add_subapp("/webhooks/", dashboard.aiohttp_app())   # aiohttp

See docs/dashboard.md.
"""

from __future__ import annotations

from ._core import (
    MANAGE,
    OBSERVE,
    Authorize,
    Dashboard,
    DashboardRequest,
    DashboardResponse,
    ObjectLoader,
    Route,
)

__all__ = [
    "MANAGE",
    "OBSERVE",
    "Authorize",
    "Dashboard",
    "DashboardRequest",
    "DashboardResponse",
    "ObjectLoader",
    "Route",
]
