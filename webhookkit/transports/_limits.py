"""Body size limits per transport, checked at trigger time and again by the transports.

Each transport says how large a body it takes in ``Transport.max_body_bytes`` (None: no
limit): SQS 256 KiB counting the message attributes as AWS does (less a reserve for them),
Pub/Sub 10 MB, HTTP whatever the host sets. :func:`check_body_size` turns an over-limit body
into :class:`~webhookkit.exceptions.PayloadTooLargeError`, a final failure, never retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from .._secret import redact_url
from ..exceptions import ConfigurationError, PayloadTooLargeError

if TYPE_CHECKING:
    from .base import Transport

__all__ = [
    "PUBSUB_MAX_MESSAGE_BYTES",
    "SQS_MAX_MESSAGE_BYTES",
    "check_body_size",
    "check_limit",
    "sqs_attributes_size",
    "too_large",
]

#: SQS's message size quota, body and attributes together (AWS's 256 KiB).
SQS_MAX_MESSAGE_BYTES: Final = 262_144
#: Pub/Sub's limit on a message's data (Google's 10 MB; attributes have their own limits).
PUBSUB_MAX_MESSAGE_BYTES: Final = 10_000_000


def check_body_size(transport: Transport, url: str, body: bytes) -> None:
    """Raise :class:`PayloadTooLargeError` if ``body`` is over ``transport.max_body_bytes``.

    Call it at trigger time for each delivery's body and record the error as the delivery's
    final failure: a body over the limit can never be delivered by retrying.
    """
    limit = transport.max_body_bytes
    if limit is not None and len(body) > limit:
        raise too_large(transport, url, len(body), limit)


def too_large(transport: Transport, url: str, size: int, limit: int) -> PayloadTooLargeError:
    """The error for a body of ``size`` bytes over ``limit``, naming the target (redacted)."""
    name = type(transport).__name__
    hint = ""
    if name == "SQSTransport":
        hint = "; SQSTransport(offload=S3Offload(bucket=...)) stores large bodies in S3"
    return PayloadTooLargeError(
        f"body of {size} bytes for {redact_url(url)} is over the {limit}-byte limit of "
        f"{name}{hint}",
        size=size,
        limit=limit,
    )


def check_limit(value: int, field: str, *, maximum: int | None = None) -> int:
    """A limit given to a transport: a positive int, up to ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{field}: must be a positive number of bytes", field=field)
    if maximum is not None and value > maximum:
        raise ConfigurationError(f"{field}: at most {maximum} bytes", field=field)
    return value


def sqs_attributes_size(attributes: Mapping[str, Mapping[str, str]]) -> int:
    """What SQS counts for message attributes: each name, data type and value, in UTF-8."""
    return sum(
        len(name.encode("utf-8"))
        + len(attribute.get("DataType", "").encode("utf-8"))
        + len(attribute.get("StringValue", "").encode("utf-8"))
        for name, attribute in attributes.items()
    )
