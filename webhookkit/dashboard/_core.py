"""The framework-free core: request and response values, sessions, CSRF, routing, rendering.

Adapters (:mod:`.asgi`, :mod:`.aiohttp`) turn their framework's request into a
:class:`DashboardRequest`, call :meth:`Dashboard.handle` and write the
:class:`DashboardResponse` back; nothing else here knows which framework runs it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ..exceptions import ConfigurationError, NotFoundError, WebhookKitError

if TYPE_CHECKING:
    from aiohttp import web

    from ..dispatcher import WebhookKit
    from .asgi import ASGIDashboard

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

#: Permission levels of routes: MANAGE needs MANAGE_APPS; OBSERVE (read-only delivery log
#: and health) accepts MANAGE_APPS or one of the dashboard's ``observe_permissions``.
MANAGE: Final = "manage"
OBSERVE: Final = "observe"
MANAGE_APPS: Final = "MANAGE_APPS"

CSRF_FIELD: Final = "csrf_token"
_SESSION_RE = re.compile(r"^[0-9a-f]{64}$")
_MAX_FLASH_SESSIONS = 10_000

#: Every page: scripts and styles from our own /static only, no framing, forms to self.
SECURITY_HEADERS: Final = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
)


@dataclass(frozen=True, slots=True)
class DashboardRequest:
    """What a handler may see of a request, whatever framework received it.

    ``path`` is below the mount point and starts with ``/``; ``root`` is the mount point
    (``/webhooks``) used to build links; ``headers`` have lowercased names; ``native`` is
    the framework's own request (aiohttp ``web.Request`` or the ASGI ``scope``), for the
    host's authorisation callable.
    """

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    form: tuple[tuple[str, str], ...] = ()
    cookies: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    root: str = ""
    secure: bool = False
    native: Any = None

    def arg(self, name: str, default: str = "") -> str:
        """The first query parameter ``name`` (stripped), else ``default``."""
        return next((v.strip() for k, v in self.query if k == name), default)

    def value(self, name: str, default: str = "") -> str:
        """The first form field ``name`` (as sent), else ``default``."""
        return next((v for k, v in self.form if k == name), default)

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.form if k == name]


@dataclass(slots=True)
class DashboardResponse:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


Authorize = Callable[[DashboardRequest], Collection[str] | Awaitable[Collection[str]]]
ObjectLoader = Callable[[str], Any]
Handler = Callable[["Context"], Awaitable[DashboardResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    """One entry of the route table; ``pattern`` uses ``{name}`` for a path segment."""

    method: str
    pattern: str
    handler: Handler
    level: str = MANAGE

    def match(self, path: str) -> dict[str, str] | None:
        found = _compile(self.pattern).fullmatch(path)
        return None if found is None else found.groupdict()

    def example(self, value: str = "x") -> str:
        """The pattern with every parameter filled by ``value`` (tests enumerate routes)."""
        return re.sub(r"\{(\w+)\}", value, self.pattern)


@functools.lru_cache(maxsize=128)
def _compile(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\{\w+\})", pattern)
    return re.compile(
        "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
    )


@dataclass(frozen=True, slots=True)
class Flash:
    kind: str  # "ok", "error" or "token"
    text: str


@dataclass(slots=True)
class Context:
    """One request on its way through a handler."""

    dashboard: Dashboard
    request: DashboardRequest
    params: dict[str, str]
    session: str
    permissions: frozenset[str]
    new_session: bool = False

    @property
    def kit(self) -> WebhookKit:
        return self.dashboard.kit

    @property
    def csrf_token(self) -> str:
        return self.dashboard.csrf_token(self.session)

    @property
    def can_manage(self) -> bool:
        return MANAGE_APPS in self.permissions

    def url(self, path: str, **query: str) -> str:
        """A link below the mount point; empty query values are left out."""
        base = self.request.root + path
        items = {k: v for k, v in query.items() if v}
        return base + ("?" + urlencode(items) if items else "")

    def flash(self, kind: str, text: str) -> None:
        self.dashboard.add_flash(self.session, Flash(kind, text))

    def redirect(self, path: str, **query: str) -> DashboardResponse:
        """303 See Other: a POST answered this way is not sent again by a reload."""
        return DashboardResponse(303, headers=[("Location", self.url(path, **query))])

    def render(self, template: str, status: int = 200, **values: Any) -> DashboardResponse:
        # The script's background refreshes leave messages (a new token!) for the page.
        refresh = self.request.headers.get("x-requested-with") == "fetch"
        html = self.dashboard.env.get_template(template).render(
            ctx=self,
            csrf_field=CSRF_FIELD,
            flashes=[] if refresh else self.dashboard.pop_flashes(self.session),
            **values,
        )
        return DashboardResponse(
            status,
            html.encode("utf-8"),
            [("Content-Type", "text/html; charset=utf-8")],
        )


def _format_time(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


class Dashboard:
    """The embeddable dashboard of a :class:`~webhookkit.WebhookKit`.

    ``authorize(request)`` (sync or async) returns the permission names of whoever sent the
    request, from the host's own session or login; every route needs ``MANAGE_APPS``, except
    the read-only delivery log, delivery pages and health, which also accept any of
    ``observe_permissions``. ``object_loader(object_id)`` (sync or async) returns the
    subject a dry run renders the subscription query for. ``secret`` keys the CSRF tokens
    (random per process when None: give every process of the host the same one).
    """

    def __init__(
        self,
        kit: WebhookKit,
        *,
        authorize: Authorize,
        object_loader: ObjectLoader | None = None,
        secret: bytes | str | None = None,
        observe_permissions: Collection[str] = ("MANAGE_OBSERVABILITY",),
        page_size: int = 50,
        title: str = "Webhooks",
        cookie_name: str = "webhookkit_dashboard",
    ) -> None:
        if not callable(authorize):
            raise ConfigurationError("authorize: must be a callable", field="authorize")
        if page_size < 1 or page_size > 1000:
            raise ConfigurationError("page_size: must be between 1 and 1000", field="page_size")
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
        if secret is not None and len(secret) < 16:
            raise ConfigurationError("secret: needs at least 16 bytes", field="secret")
        self.kit = kit
        self.authorize = authorize
        self.object_loader = object_loader
        self.observe_permissions = frozenset(observe_permissions)
        self.page_size = page_size
        self.title = title
        self.cookie_name = cookie_name
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._flashes: OrderedDict[str, list[Flash]] = OrderedDict()
        self.env = Environment(
            loader=PackageLoader("webhookkit.dashboard", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["time"] = _format_time
        self.env.globals["title"] = title
        from ._pages import ROUTES

        self.routes: tuple[Route, ...] = ROUTES

    def __repr__(self) -> str:
        return f"Dashboard(kit={self.kit!r}, routes={len(self.routes)})"

    def asgi_app(self) -> ASGIDashboard:
        """The dashboard as an ASGI application (Starlette/FastAPI ``app.mount``)."""
        from .asgi import ASGIDashboard

        return ASGIDashboard(self)

    def aiohttp_app(self) -> web.Application:
        """The dashboard as an aiohttp sub-application (``app.add_subapp``)."""
        from .aiohttp import aiohttp_app

        return aiohttp_app(self)

    # -- sessions, CSRF and flashes -----------------------------------------------------------
    def csrf_token(self, session: str) -> str:
        """The form token bound to ``session``: HMAC-SHA256 under the dashboard's secret."""
        return hmac.new(self._secret, b"csrf:" + session.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, session: str | None, token: str) -> bool:
        if not session or not token:
            return False
        return hmac.compare_digest(self.csrf_token(session), token)

    def add_flash(self, session: str, flash: Flash) -> None:
        self._flashes.setdefault(session, []).append(flash)
        self._flashes.move_to_end(session)
        while len(self._flashes) > _MAX_FLASH_SESSIONS:
            self._flashes.popitem(last=False)

    def pop_flashes(self, session: str) -> list[Flash]:
        """Messages for the session's next page; a token flash is thereby shown once."""
        return self._flashes.pop(session, [])

    # -- the request pipeline ---------------------------------------------------------------
    async def _permissions(self, request: DashboardRequest) -> frozenset[str]:
        result = self.authorize(request)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, str):
            raise ConfigurationError(
                "authorize: must return a collection of permission names, not a string",
                field="authorize",
            )
        return frozenset(str(p) for p in (result or ()))

    def allowed(self, level: str, permissions: frozenset[str]) -> bool:
        if MANAGE_APPS in permissions:
            return True
        return level == OBSERVE and bool(permissions & self.observe_permissions)

    async def handle(self, request: DashboardRequest) -> DashboardResponse:
        """Authorise, route, check CSRF on POST, run the handler; add cookies and headers."""
        cookie = request.cookies.get(self.cookie_name, "")
        session = cookie if _SESSION_RE.match(cookie) else None
        ctx = Context(
            dashboard=self,
            request=request,
            params={},
            session=session or secrets.token_hex(32),
            permissions=await self._permissions(request),
            new_session=session is None,
        )
        response = await self._dispatch(ctx, session)
        if request.method == "HEAD":
            response.body = b""
        response.headers += SECURITY_HEADERS
        if ctx.new_session:
            cookie_path = request.root or "/"
            attributes = f"Path={cookie_path}; HttpOnly; SameSite=Strict"
            if request.secure:
                attributes += "; Secure"
            response.headers.append(
                ("Set-Cookie", f"{self.cookie_name}={ctx.session}; {attributes}")
            )
        return response

    async def _dispatch(self, ctx: Context, session: str | None) -> DashboardResponse:
        request = ctx.request
        if not ctx.permissions & (self.observe_permissions | {MANAGE_APPS}):
            return _plain(403, "Forbidden: this dashboard needs the MANAGE_APPS permission.")
        methods: list[str] = []
        for route in self.routes:
            params = route.match(request.path)
            if params is None:
                continue
            if route.method != request.method and not (
                route.method == "GET" and request.method == "HEAD"
            ):
                methods.append(route.method)
                continue
            if not self.allowed(route.level, ctx.permissions):
                return _plain(403, "Forbidden: this action needs the MANAGE_APPS permission.")
            if request.method == "POST" and not self.check_csrf(session, request.value(CSRF_FIELD)):
                return _plain(
                    403,
                    "Forbidden: the form's CSRF token is missing or does not match this "
                    "browser's session. Reload the page and submit the form again.",
                )
            ctx.params = params
            try:
                return await route.handler(ctx)
            except NotFoundError as exc:
                return ctx.render("error.html", 404, heading="Not found", message=str(exc))
            except WebhookKitError as exc:
                # A bad id or field in the URL: the kit's message names the field.
                return ctx.render("error.html", 400, heading="Bad request", message=str(exc))
        if methods:
            response = _plain(405, "Method not allowed.")
            response.headers.append(("Allow", ", ".join(sorted(set(methods)))))
            return response
        return ctx.render(
            "error.html", 404, heading="Not found", message=f"No page at {request.path!r}."
        )


def _plain(status: int, text: str) -> DashboardResponse:
    return DashboardResponse(status, text.encode(), [("Content-Type", "text/plain; charset=utf-8")])
