"""The exception tree of webhookkit: everything raised on purpose derives from one root.

::

    WebhookKitError
    +-- ConfigurationError (ValueError)   bad input at build time; nothing is stored
    |   +-- UnknownEventError              event name not in the registry (.suggestions)
    |   +-- UnknownPermissionError         permission name not known to the registry
    |   +-- InvalidURLError                target URL malformed or its scheme has no transport
    |   +-- InvalidHeaderError             custom header breaks Saleor's rules
    |   +-- InvalidEventsError             event list breaks a rule (NOTIFY_USER alone, ...)
    |   +-- InvalidFieldError              any other field out of range (name length, ...)
    |   +-- InvalidKeyError                signing key unusable (size, type, PEM)
    |   +-- InvalidQueryError              subscription query refused (.code, .line, .column)
    |   +-- PayloadError                   no payload and no serializer, or not JSON-encodable
    |   +-- NotFoundError                  app / webhook / token id unknown
    |   +-- DuplicateError                 an object with the same identity already exists
    +-- DeliveryError                      one attempt failed: recorded, retried or given up
    |   +-- TransportError (.retryable)
    |   |   +-- ConnectError               could not connect (DNS, refused, TLS)
    |   |   |   +-- TLSError               TLS handshake or certificate verification failed
    |   |   +-- DeliveryTimeoutError       connect or response timeout
    |   |   +-- BlockedAddressError        SSRF guard refused the address (.host); not retried
    |   |   +-- QueueError (.service .code) SQS or Pub/Sub refused or failed the message
    |   |   +-- PayloadTooLargeError       body over the transport's limit (.size .limit)
    |   +-- RejectedError (.status_code)   the receiver answered with a non-2xx status
    +-- SignatureError                     the only thing a verifier raises
    |   +-- MalformedSignatureError        header missing, unparsable, oversized, bad alg/crit
    |   +-- UnknownKeyError                no key or secret for the signature (kid, version)
    |   |   +-- JWKSFetchError             the sender's JWKS could not be fetched (transient)
    |   +-- SignatureMismatchError         well-formed, but the body or key does not match
    |   +-- TimestampError                 the signed timestamp is outside the tolerance
    +-- StoreError                         the store failed or was used after close
    +-- WaitTimeoutError (TimeoutError)    wait_for ran out of time, deliveries still pending

Every message names the field (or header, or event) at fault and says why.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BlockedAddressError",
    "ConfigurationError",
    "ConnectError",
    "DeliveryError",
    "DeliveryTimeoutError",
    "DuplicateError",
    "InvalidEventsError",
    "InvalidFieldError",
    "InvalidHeaderError",
    "InvalidKeyError",
    "InvalidQueryError",
    "InvalidURLError",
    "JWKSFetchError",
    "MalformedSignatureError",
    "NotFoundError",
    "PayloadError",
    "PayloadTooLargeError",
    "QueueError",
    "RejectedError",
    "SignatureError",
    "SignatureMismatchError",
    "StoreError",
    "TLSError",
    "TimestampError",
    "TransportError",
    "UnknownEventError",
    "UnknownKeyError",
    "UnknownPermissionError",
    "WaitTimeoutError",
    "WebhookKitError",
]


class WebhookKitError(Exception):
    """Root of every exception webhookkit raises on purpose."""


class ConfigurationError(WebhookKitError, ValueError):
    """Invalid input when building or changing configuration; never retried.

    ``field`` names the input at fault (``"target_url"``, ``"custom_headers"``...).
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownEventError(ConfigurationError):
    """An event name, value or GraphQL type the registry does not know."""

    def __init__(self, name: str, suggestions: Sequence[str] = (), *, field: str = "event") -> None:
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"{field}: unknown event {name!r}{hint}", field=field)
        self.name = name
        self.suggestions = tuple(suggestions)


class UnknownPermissionError(ConfigurationError):
    """A permission name that is neither Saleor's nor registered by the host."""


class InvalidURLError(ConfigurationError):
    """A target URL that cannot be parsed or whose scheme has no transport."""


class InvalidHeaderError(ConfigurationError):
    """A custom header that breaks Saleor's rules (count, size, characters, allowed keys)."""


class InvalidEventsError(ConfigurationError):
    """An event list that breaks a rule, such as NOTIFY_USER mixed with other events."""


class InvalidFieldError(ConfigurationError):
    """A field outside its allowed range (name too long, empty permission list, ...)."""


class InvalidKeyError(ConfigurationError):
    """A signing key that cannot be loaded or is unfit (too short, wrong type)."""


class InvalidQueryError(ConfigurationError):
    """A subscription query Saleor would refuse; ``code`` is Saleor's ``WebhookErrorCode``.

    Codes: ``SYNTAX`` (parse), ``GRAPHQL_ERROR`` (schema validation), ``MISSING_SUBSCRIPTION``,
    ``INVALID`` (several top fields), ``UNABLE_TO_PARSE`` (no ``event`` field),
    ``MISSING_EVENT`` (no event inferred). ``line``/``column`` are 1-based where graphql-core
    gives a location; ``message`` is the text without the field prefix.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        field: str = "subscription_query",
    ) -> None:
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(f"{field}: {message}{where} [{code}]", field=field)
        self.code = code
        self.message = message
        self.line = line
        self.column = column


class PayloadError(ConfigurationError):
    """No payload could be built: none given, no serializer, or not JSON-encodable."""


class NotFoundError(ConfigurationError):
    """An app, webhook or token id that does not exist."""


class DuplicateError(ConfigurationError):
    """An object with the same identity already exists (a token, an app identifier)."""


class DeliveryError(WebhookKitError):
    """One delivery attempt failed; the scheduler records it and retries or gives up."""

    retryable: bool = False


class TransportError(DeliveryError):
    """The transport could not hand the message over; ``retryable`` says what happens next."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class ConnectError(TransportError):
    """No connection could be made (DNS failure, refused, reset, TLS handshake)."""


class TLSError(ConnectError):
    """The TLS handshake failed: certificate not trusted, wrong host name, client cert refused."""


class DeliveryTimeoutError(TransportError):
    """The connect or the response timeout ran out."""


class BlockedAddressError(TransportError):
    """The SSRF guard refused the target: its address is loopback, private, link-local...

    Never retried: the address will not become acceptable by waiting. ``host`` is the host
    of the URL, ``addresses`` the refused addresses with the reason for each.
    """

    def __init__(self, message: str, *, host: str, addresses: Sequence[str] = ()) -> None:
        super().__init__(message, retryable=False)
        self.host = host
        self.addresses = tuple(addresses)


class QueueError(TransportError):
    """A queue service (``service``: ``"sqs"``, ``"s3"`` for SQS offload, or ``"pubsub"``)
    refused or failed a message.

    ``code`` is the service's error code (``"AWS.SimpleQueueService.NonExistentQueue"``,
    ``"404"``) when it sent one. Saleor retries every queue error, so the default is retryable.
    """

    def __init__(
        self, message: str, *, service: str, code: str | None = None, retryable: bool = True
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.service = service
        self.code = code


class PayloadTooLargeError(TransportError):
    """The body is larger than its transport takes (SQS: 256 KiB with the attributes,
    Pub/Sub: 10 MB, HTTP: the host's ``max_body_bytes``). Never retried: the body will not
    shrink. Raised at trigger time by ``check_body_size`` and by the transports themselves;
    ``size`` and ``limit`` are in bytes.
    """

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message, retryable=False)
        self.size = size
        self.limit = limit


class RejectedError(DeliveryError):
    """The receiver answered with a status that is not 2xx."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"receiver answered HTTP {status_code}")
        self.status_code = status_code
        self.retryable = status_code >= 500


class SignatureError(WebhookKitError):
    """A signature could not be verified; the only exception a verifier raises."""


class MalformedSignatureError(SignatureError):
    """The signature header is missing, unparsable, oversized, or names a refused algorithm."""


class UnknownKeyError(SignatureError):
    """No key or secret fits the signature: unknown ``kid``, or no signature of a known scheme."""


class JWKSFetchError(UnknownKeyError):
    """The sender's JWKS could not be fetched or parsed; worth retrying later."""


class SignatureMismatchError(SignatureError):
    """The signature is well-formed and its key known, but it does not match the body."""


class TimestampError(SignatureError):
    """The signed timestamp lies outside the verifier's tolerance window (replay or clock skew)."""


class StoreError(WebhookKitError):
    """The store failed, or was used after it was closed."""


class WaitTimeoutError(WebhookKitError, TimeoutError):
    """``wait_for`` ran out of time with deliveries still pending (the message says how many,
    and whether anything was sending them)."""
