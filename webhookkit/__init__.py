"""webhookkit: Saleor-compatible webhooks for asyncio applications.

Hold one :class:`WebhookKit`, create apps and webhooks through it, ``await kit.trigger(...)``,
and its scheduler signs, sends, records and retries every delivery.
"""

from __future__ import annotations

from ._secret import Secret
from .apps import App, AppToken, NewAppToken, Webhook
from .clock import Clock, SystemClock
from .delivery.records import Attempt, AttemptStatus, Delivery, DeliveryStatus, Payload
from .delivery.retry import RetryPolicy
from .dispatcher import WebhookKit
from .events import ANY_EVENTS, EventKind, EventRegistry, EventType
from .exceptions import (
    ConfigurationError,
    ConnectError,
    DeliveryError,
    DeliveryTimeoutError,
    DuplicateError,
    InvalidEventsError,
    InvalidFieldError,
    InvalidHeaderError,
    InvalidKeyError,
    InvalidURLError,
    NotFoundError,
    PayloadError,
    RejectedError,
    SignatureError,
    StoreError,
    TransportError,
    UnknownEventError,
    UnknownPermissionError,
    WebhookKitError,
)
from .payloads import PayloadBuilder, PayloadGroup, PayloadRequest, SerializerPayloads
from .signing import HMACSigner, JWSSigner, RSAKey, verify_hmac, verify_jws
from .stores import DeliveryQuery, MemoryStore, Store
from .transports import HTTPTransport, OutboundMessage, Timeouts, Transport, TransportResult

__version__ = "0.1.0"

__all__ = [
    "ANY_EVENTS",
    "App",
    "AppToken",
    "Attempt",
    "AttemptStatus",
    "Clock",
    "ConfigurationError",
    "ConnectError",
    "Delivery",
    "DeliveryError",
    "DeliveryQuery",
    "DeliveryStatus",
    "DeliveryTimeoutError",
    "DuplicateError",
    "EventKind",
    "EventRegistry",
    "EventType",
    "HMACSigner",
    "HTTPTransport",
    "InvalidEventsError",
    "InvalidFieldError",
    "InvalidHeaderError",
    "InvalidKeyError",
    "InvalidURLError",
    "JWSSigner",
    "MemoryStore",
    "NewAppToken",
    "NotFoundError",
    "OutboundMessage",
    "Payload",
    "PayloadBuilder",
    "PayloadError",
    "PayloadGroup",
    "PayloadRequest",
    "RSAKey",
    "RejectedError",
    "RetryPolicy",
    "Secret",
    "SerializerPayloads",
    "SignatureError",
    "Store",
    "StoreError",
    "SystemClock",
    "Timeouts",
    "Transport",
    "TransportError",
    "TransportResult",
    "UnknownEventError",
    "UnknownPermissionError",
    "Webhook",
    "WebhookKit",
    "WebhookKitError",
    "__version__",
    "verify_hmac",
    "verify_jws",
]
