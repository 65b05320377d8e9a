"""Transports deliver signed bodies; the router picks one by the target URL's scheme.

The SQS and Pub/Sub transports live in :mod:`webhookkit.transports.sqs` and
:mod:`webhookkit.transports.pubsub`, imported only when used (they need the ``sqs`` and
``pubsub`` extras).
"""

from __future__ import annotations

from ._extras import missing_extra_hint
from ._ssrf import AddressPolicy, GuardedResolver
from .base import OutboundMessage, Timeouts, Transport, TransportResult, TransportRouter
from .http import HTTPTransport

__all__ = [
    "AddressPolicy",
    "GuardedResolver",
    "HTTPTransport",
    "OutboundMessage",
    "Timeouts",
    "Transport",
    "TransportResult",
    "TransportRouter",
    "missing_extra_hint",
]
