"""Saving an order and queueing ORDER_CREATED in one transaction, and a receiver view.

(The example has no CSRF middleware; a real shop keeps it and exempts only API views.)
"""

import json
import os

from django.db import transaction
from django.http import HttpRequest, JsonResponse

from orders.models import Order
from webhookkit.integrations import django as webhooks
from webhookkit.integrations.django.views import verify_webhook
from webhookkit.signing import HMACVerifier


class PaymentDeclinedError(Exception):
    pass


def order_payload(order: Order) -> dict[str, object]:
    return {"order": {"number": order.number, "total": str(order.total)}}


def create_order(request: HttpRequest) -> JsonResponse:
    data = json.loads(request.body)
    with transaction.atomic():
        order = Order.objects.create(number=data["number"], total=data["total"])
        # The delivery rows join this transaction: they exist if and only if the order does.
        ids = webhooks.trigger("ORDER_CREATED", payload=order_payload(order))
    return JsonResponse({"order": order.number, "deliveries": ids}, status=201)


def create_order_then_fail(request: HttpRequest) -> JsonResponse:
    data = json.loads(request.body)
    try:
        with transaction.atomic():
            order = Order.objects.create(number=data["number"], total=data["total"])
            webhooks.trigger("ORDER_CREATED", payload=order_payload(order))
            raise PaymentDeclinedError(order.number)
    except PaymentDeclinedError:
        # Rolled back: no order, and no webhook is ever sent.
        return JsonResponse({"error": "payment declined"}, status=402)


# Receiving webhooks from another shop: HMAC-signed with a shared secret.
@verify_webhook(HMACVerifier(os.environ.get("SHOP_HOOK_SECRET", "example-hook-secret")))
def order_created_hook(request: HttpRequest) -> JsonResponse:
    event = request.webhook_event
    return JsonResponse({"event": event.event, "order": event.payload["order"]["number"]})
