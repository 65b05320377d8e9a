"""FastAPI and Starlette: a lifespan that runs the kit, and a dependency that hands it out.

::

    kit = WebhookKit(store="postgresql://...", domain="shop.example.com")
    app = FastAPI(lifespan=webhookkit_lifespan(kit))

    @app.post("/orders")
    async def create_order(kit: Kit) -> dict[str, list[str]]:
        async with AsyncSession(engine) as session, session.begin():
            session.add(Order(...))
            ids = await kit.trigger("ORDER_CREATED", payload=..., connection=session)
        return {"deliveries": ids}

With ``connection=`` (an ``AsyncSession``, an ``AsyncConnection`` or an asyncpg connection)
the delivery rows are written in the endpoint's own transaction: they exist if and only if
it commits. ``send=False`` opens the store without sending (separate workers send).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, Final

from fastapi import Depends, Request

from ..dispatcher import WebhookKit
from ..exceptions import ConfigurationError

__all__ = ["STATE_KEY", "Kit", "get_kit", "kit_lifespan", "webhookkit_lifespan"]

#: Where the lifespan puts the kit: ``app.state.webhookkit``.
STATE_KEY: Final = "webhookkit"


@asynccontextmanager
async def kit_lifespan(app: Any, kit: WebhookKit, *, send: bool = True) -> AsyncIterator[None]:
    """Run ``kit`` for the app's lifetime and put it in ``app.state.webhookkit``.

    ``send=True`` starts the scheduler (this process sends, and drains on shutdown);
    ``send=False`` only opens the store, for web processes beside ``webhookkit worker``s.
    Compose it inside a lifespan of your own with ``async with kit_lifespan(app, kit):``.
    """
    setattr(app.state, STATE_KEY, kit)
    try:
        if send:
            async with kit:
                yield
        else:
            await kit.store.open()
            try:
                yield
            finally:
                await kit.aclose()
    finally:
        delattr(app.state, STATE_KEY)


def webhookkit_lifespan(
    kit: WebhookKit, *, send: bool = True
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """``FastAPI(lifespan=webhookkit_lifespan(kit))``: :func:`kit_lifespan` as the app's."""

    def lifespan(app: Any) -> AbstractAsyncContextManager[None]:
        return kit_lifespan(app, kit, send=send)

    return lifespan


def get_kit(request: Request) -> WebhookKit:
    """The dependency: the kit the lifespan started."""
    kit = getattr(request.app.state, STATE_KEY, None)
    if not isinstance(kit, WebhookKit):
        raise ConfigurationError(
            "lifespan: no WebhookKit on app.state; create the app with "
            "FastAPI(lifespan=webhookkit_lifespan(kit))",
            field="lifespan",
        )
    return kit


#: An endpoint parameter annotated ``kit: Kit`` receives the running kit.
Kit = Annotated[WebhookKit, Depends(get_kit)]
