"""A FastAPI shop: an order and its ORDER_CREATED webhook written in one SQLAlchemy transaction.

Run it (PostgreSQL, asyncpg driver; the web process also sends)::

    SHOP_DATABASE_URL=postgresql://user@host/shop \\
    SHOP_WEBHOOK_URL=https://erp.example.com/hooks \\
    uvicorn orders_api:app --app-dir examples/fastapi_shop

``SHOP_SIGNING_KEY_FILE`` names a PEM key (else a throwaway one); ``SHOP_ALLOW`` lets the SSRF
guard through to a network such as ``127.0.0.1/32`` for local receivers.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Numeric, String
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from webhookkit import HTTPTransport, WebhookKit
from webhookkit.integrations.fastapi import Kit, kit_lifespan

DSN = os.environ.get("SHOP_DATABASE_URL", "postgresql://localhost/shop")


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "shop_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    total: Mapped[Decimal] = mapped_column(Numeric(10, 2))


class OrderIn(BaseModel):
    number: str
    total: Decimal


class PaymentDeclinedError(Exception):
    pass


# SQLAlchemy with the asyncpg driver; the creator takes any libpq URL, unix sockets included.
engine = create_async_engine("postgresql+asyncpg://", async_creator=lambda: asyncpg.connect(DSN))


def make_kit() -> WebhookKit:
    key_file = os.environ.get("SHOP_SIGNING_KEY_FILE")
    allow = [a for a in os.environ.get("SHOP_ALLOW", "").split(",") if a]
    return WebhookKit(
        store=DSN,
        domain="shop.example.com",
        signing_key=Path(key_file).read_bytes() if key_file else None,
        transports=[HTTPTransport(allow_addresses=allow)],
    )


kit = make_kit()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with kit_lifespan(app, kit):
        target = os.environ.get("SHOP_WEBHOOK_URL")
        if target:  # declarative: the same app and webhook however often the shop restarts
            erp = await kit.apps.ensure(identifier="erp", name="ERP", permissions=["MANAGE_ORDERS"])
            await kit.webhooks.ensure(
                erp, identifier="orders", target_url=target, events=["ORDER_CREATED"]
            )
        yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


def order_payload(order: Order) -> dict[str, Any]:
    return {"order": {"number": order.number, "total": str(order.total)}}


@app.post("/orders", status_code=201)
async def create_order(data: OrderIn, kit: Kit) -> dict[str, Any]:
    async with AsyncSession(engine) as session, session.begin():
        order = Order(number=data.number, total=data.total)
        session.add(order)
        await session.flush()
        # The delivery rows join this transaction: they exist if and only if the order does.
        ids = await kit.trigger("ORDER_CREATED", payload=order_payload(order), connection=session)
    return {"order": data.number, "deliveries": ids}


@app.post("/orders/declined", response_model=None)
async def create_order_then_fail(data: OrderIn, kit: Kit) -> JSONResponse:
    try:
        async with AsyncSession(engine) as session, session.begin():
            order = Order(number=data.number, total=data.total)
            session.add(order)
            await session.flush()
            await kit.trigger("ORDER_CREATED", payload=order_payload(order), connection=session)
            raise PaymentDeclinedError(data.number)
    except PaymentDeclinedError:
        # Rolled back: no order, and no webhook is ever sent.
        return JSONResponse({"error": "payment declined"}, status_code=402)


@app.get("/.well-known/jwks.json")
async def jwks(kit: Kit) -> dict[str, list[dict[str, Any]]]:
    return kit.jwks()
