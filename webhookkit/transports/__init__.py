"""Transports deliver signed bodies; the router picks one by the target URL's scheme."""

from __future__ import annotations

from .base import OutboundMessage, Timeouts, Transport, TransportResult, TransportRouter
from .http import HTTPTransport

__all__ = [
    "HTTPTransport",
    "OutboundMessage",
    "Timeouts",
    "Transport",
    "TransportResult",
    "TransportRouter",
]
