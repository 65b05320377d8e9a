"""Django views: ``@verify_webhook`` for receivers, and the JWKS of this process's kit."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from ...blocking import LoopThread
from ...exceptions import SignatureError
from ...signing.verify import Verifier
from .. import DEFAULT_JWKS_MAX_AGE, NotJSONError, WebhookEvent, failure, verify_request

__all__ = ["jwks_view", "verify_webhook"]

View = TypeVar("View", bound=Callable[..., Any])

#: Sync views verify on this loop (verifiers are async; a JWKS verifier keeps its cache here).
_verify_loop = LoopThread("webhookkit-verify")


def _refusal(exc: SignatureError | NotJSONError) -> HttpResponse:
    status, text = failure(exc)
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


def verify_webhook(verifier: Verifier) -> Callable[[View], View]:
    """Verify each request's signature before the view runs (sync or async views).

    A failure is answered with 401 and a short reason (503 when the JWKS could not be
    fetched, so the sender retries); otherwise the view gets the verified
    :class:`~webhookkit.integrations.WebhookEvent` as ``request.webhook_event``. The view is
    exempt from CSRF checks: the signature is the authentication.
    """

    def decorator(view: View) -> View:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def averified(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                try:
                    event = await verify_request(verifier, request.body, dict(request.headers))
                except (SignatureError, NotJSONError) as exc:
                    return _refusal(exc)
                request.webhook_event = event
                return await view(request, *args, **kwargs)

            return cast(View, csrf_exempt(averified))

        @functools.wraps(view)
        def verified(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            try:
                event: WebhookEvent = _verify_loop.run(
                    verify_request(verifier, request.body, dict(request.headers))
                )
            except (SignatureError, NotJSONError) as exc:
                return _refusal(exc)
            request.webhook_event = event
            return view(request, *args, **kwargs)

        return cast(View, csrf_exempt(verified))

    return decorator


def jwks_view(request: HttpRequest) -> JsonResponse:
    """The JWKS receivers verify JWS signatures with; route it at ``.well-known/jwks.json``."""
    from . import get_kit

    # open(): on a durable store with no key configured, the store keeps the key set.
    response = JsonResponse(get_kit().open().jwks())
    response["Cache-Control"] = f"public, max-age={DEFAULT_JWKS_MAX_AGE}"
    return response
