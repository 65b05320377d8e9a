"""AWS SQS delivery with aioboto3 (extra ``sqs``): Saleor's URL grammar and attributes.

``awssqs://<ACCESS_KEY_ID>:<url-encoded SECRET>@sqs.<region>.amazonaws.com/<account>/<queue>``

The region comes from a four-part host starting with ``sqs``, else it is ``us-east-1``.
Without credentials in the URL, boto's default credential chain applies (environment,
config files, instance roles). The queue URL sent to SQS is ``https://<host><path>``.
Each message carries the body and the String attributes ``SaleorDomain``, ``SaleorApiUrl``,
``EventType`` and ``Signature``; FIFO queues (``.fifo``) get ``MessageGroupId`` = the shop's
domain, or the message's ordering key when one is set, and need content-based deduplication
unless ``dedup_by_delivery`` is on.

SQS counts the body and the attributes against its quota (256 KiB by default here,
``max_message_bytes``); a larger message is a :class:`PayloadTooLargeError`, never retried.
With ``offload=S3Offload(bucket=...)`` bodies over the threshold go to S3 instead and the
queue gets a pointer in the shape of AWS's SQS Extended Client
(``["software.amazon.payloadoffloading.PayloadS3Pointer", {"s3BucketName": ..., "s3Key":
...}]`` with the ``ExtendedPayloadSize`` attribute), which that client resolves on receipt.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import aioboto3
import aiohttp
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import SSLError as BotoSSLError

from .._ids import new_id
from .._secret import REDACTED, Secret, redact_url
from ..exceptions import (
    ConfigurationError,
    ConnectError,
    DeliveryTimeoutError,
    InvalidURLError,
    QueueError,
    TLSError,
    TransportError,
)
from ._limits import SQS_MAX_MESSAGE_BYTES, check_limit, sqs_attributes_size, too_large
from .base import OutboundMessage, Transport, TransportResult

__all__ = [
    "EXTENDED_PAYLOAD_SIZE",
    "POINTER_CLASS",
    "S3Offload",
    "SQSTarget",
    "SQSTransport",
    "parse_sqs_url",
]

#: The pointer class name and size attribute of AWS's SQS Extended Client (Java 2.x and
#: the Python ``amazon-sqs-extended-client``), which resolve such messages on receipt.
POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
EXTENDED_PAYLOAD_SIZE = "ExtendedPayloadSize"
#: SQS's hard ceiling on a queue's MaximumMessageSize (raised by AWS from 256 KiB in 2025).
SQS_CEILING_BYTES = 1_048_576
#: The Extended Client's limit on an offloaded body.
MAX_OFFLOAD_BYTES = 2 * 1024**3
#: Bytes kept for the message attributes when the body is checked at trigger time (domain,
#: API URL, event, signature and a signing profile's headers take far less).
DEFAULT_ATTRIBUTE_RESERVE = 4096
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

DEFAULT_REGION = "us-east-1"
_GRAMMAR = (
    "awssqs://<ACCESS_KEY_ID>:<url-encoded SECRET>@sqs.<region>.amazonaws.com/<account_id>/<queue>"
)
_ACCESS_KEY_RE = re.compile(r"\w{16,128}", re.ASCII)
_REGION_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_ACCOUNT_RE = re.compile(r"\d{12}")
_QUEUE_RE = re.compile(r"[A-Za-z0-9_-]+(?:\.fifo)?")
_MAX_QUEUE_NAME = 80
_PARSE_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class SQSTarget:
    """A parsed ``awssqs://`` URL. Credentials never show in its repr."""

    queue_url: str
    region: str
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: Secret | None = field(default=None, repr=False)

    @property
    def fifo(self) -> bool:
        return self.queue_url.endswith(".fifo")

    @property
    def has_credentials(self) -> bool:
        return self.access_key_id is not None

    def scrub(self, text: str) -> str:
        """``text`` with this target's access key id and secret replaced by ``[secret]``."""
        for value in (
            self.access_key_id,
            self.secret_access_key and self.secret_access_key.reveal(),
        ):
            if value:
                text = text.replace(value, REDACTED)
        return text


def parse_sqs_url(url: str) -> SQSTarget:
    """Parse Saleor's ``awssqs://`` grammar; :class:`InvalidURLError` names what is wrong.

    The URL in messages has its credentials replaced by ``[secret]``.
    """
    shown = redact_url(url)

    def bad(problem: str) -> InvalidURLError:
        return InvalidURLError(
            f"target_url: {problem} in {shown!r} (expected {_GRAMMAR})", field="target_url"
        )

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise bad(f"malformed URL ({exc})") from None
    if parts.scheme.lower() != "awssqs":
        raise bad(f"scheme {parts.scheme!r} is not 'awssqs'")
    host = parts.hostname
    if not host:
        raise bad("no host")
    if parts.query or parts.fragment:
        raise bad("a query or fragment is not part of the grammar")
    access_key_id: str | None = None
    secret: Secret | None = None
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        key_raw, sep, secret_raw = userinfo.partition(":")
        if not sep or not key_raw or not secret_raw:
            raise bad("credentials need both an access key id and a secret, as KEY:SECRET")
        access_key_id, secret_value = unquote(key_raw), unquote(secret_raw)
        if not _ACCESS_KEY_RE.fullmatch(access_key_id):
            raise bad("the access key id must be 16 to 128 letters, digits or underscores")
        if any(ord(c) < 0x21 or ord(c) == 0x7F for c in secret_value):
            raise bad("the secret contains spaces or control characters")
        secret = Secret(secret_value)
    labels = host.split(".")
    region = labels[1] if len(labels) == 4 and labels[0] == "sqs" else DEFAULT_REGION
    if not _REGION_RE.fullmatch(region):
        raise bad(f"region {region!r} is not a valid region name")
    segments = parts.path.split("/")
    if len(segments) != 3 or segments[0]:
        raise bad("the path must be /<account_id>/<queue>")
    account, queue = segments[1], segments[2]
    if not _ACCOUNT_RE.fullmatch(account):
        raise bad(f"account id {account!r} must be 12 digits")
    if not _QUEUE_RE.fullmatch(queue) or len(queue) > _MAX_QUEUE_NAME:
        raise bad(
            f"queue name {queue!r} must be 1 to {_MAX_QUEUE_NAME} letters, digits, '-' or '_' "
            "(with '.fifo' at the end for a FIFO queue)"
        )
    netloc = host if port is None else f"{host}:{port}"
    return SQSTarget(
        queue_url=f"https://{netloc}{parts.path}",
        region=region,
        access_key_id=access_key_id,
        secret_access_key=secret,
    )


@dataclass(frozen=True, slots=True)
class S3Offload:
    """Store bodies over ``threshold`` bytes (body and attributes, as SQS counts) in S3.

    The object key is ``prefix`` + the delivery id, so retries of one delivery rewrite one
    object; ``always=True`` offloads every body. The S3 client uses the queue URL's
    credentials (or the default chain), ``region`` (default: the queue's) and
    ``endpoint_url`` (default: the transport's, so moto or LocalStack serve S3 too).
    Objects are never deleted by webhookkit: give the bucket a lifecycle rule.
    """

    bucket: str
    prefix: str = ""
    threshold: int = SQS_MAX_MESSAGE_BYTES
    always: bool = False
    region: str | None = None
    endpoint_url: str | None = None
    max_object_bytes: int = MAX_OFFLOAD_BYTES

    def __post_init__(self) -> None:
        if not isinstance(self.bucket, str) or not _BUCKET_RE.fullmatch(self.bucket):
            raise ConfigurationError(
                f"offload: bucket {self.bucket!r} is not a valid S3 bucket name "
                "(3-63 lowercase letters, digits, '.' or '-')",
                field="offload",
            )
        if len(self.prefix) > 512:
            raise ConfigurationError("offload: prefix longer than 512 characters", field="offload")
        check_limit(self.threshold, "offload", maximum=SQS_CEILING_BYTES)
        check_limit(self.max_object_bytes, "offload", maximum=5 * 1024**4)


ClientKey = tuple[str, str | None, Secret | None, str, str | None]


class SQSTransport(Transport):
    """Sends messages to SQS queues; one aioboto3 client per (credentials, region, endpoint).

    ``endpoint_url`` overrides the SQS endpoint for every queue (a local server such as moto
    or LocalStack); boto's ``AWS_ENDPOINT_URL_SQS`` variable works too. ``connect_timeout``
    and ``read_timeout`` are the client's socket limits (Saleor: 2 s and 18 s); each send is
    also bounded by the message's total timeout. Boto's own retries are off, the scheduler
    retries. ``dedup_by_delivery`` sends the delivery id as ``MessageDeduplicationId`` on
    FIFO queues, so queues without content-based deduplication work and two deliveries with
    the same body are not merged. ``delivery_id_attribute`` (e.g. ``"DeliveryId"``) adds a
    String attribute of that name with the delivery id, the same on every attempt.

    ``max_message_bytes`` is the queue's MaximumMessageSize (AWS counts the attributes in
    it; default 256 KiB, up to 1 MiB); at trigger time bodies get ``max_body_bytes`` = that
    less ``attribute_reserve``. ``offload`` stores larger bodies in S3 (:class:`S3Offload`).
    """

    schemes = frozenset({"awssqs"})

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        session: aioboto3.Session | None = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 18.0,
        dedup_by_delivery: bool = False,
        delivery_id_attribute: str | None = None,
        max_message_bytes: int = SQS_MAX_MESSAGE_BYTES,
        attribute_reserve: int = DEFAULT_ATTRIBUTE_RESERVE,
        offload: S3Offload | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.dedup_by_delivery = dedup_by_delivery
        self.delivery_id_attribute = _attribute_name(delivery_id_attribute)
        self.max_message_bytes = check_limit(
            max_message_bytes, "max_message_bytes", maximum=SQS_CEILING_BYTES
        )
        if not isinstance(attribute_reserve, int) or not (
            0 <= attribute_reserve < self.max_message_bytes
        ):
            raise ConfigurationError(
                "attribute_reserve: must be >= 0 and below max_message_bytes",
                field="attribute_reserve",
            )
        if offload is not None and not isinstance(offload, S3Offload):
            raise ConfigurationError("offload: must be an S3Offload", field="offload")
        self.offload = offload
        self.max_body_bytes = (
            offload.max_object_bytes
            if offload is not None
            else self.max_message_bytes - attribute_reserve
        )
        self._session = session
        self._config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": 1},
        )
        self._clients: dict[ClientKey, Any] = {}
        self._s3_clients: dict[ClientKey, Any] = {}
        self._stack = contextlib.AsyncExitStack()
        self._lock = asyncio.Lock()

    @property
    def client_count(self) -> int:
        """How many clients are open (one per credentials, region and endpoint)."""
        return len(self._clients)

    def validate_url(self, url: str) -> None:
        parse_sqs_url(url)

    def target(self, url: str) -> SQSTarget:
        """The parsed URL, from a small cache: the hot path parses each URL once."""
        return _parse_cached(url)

    async def client(self, target: SQSTarget) -> Any:
        """The SQS client for ``target``'s credentials and region, created on first use."""
        return await self._client(self._clients, "sqs", target, target.region, self.endpoint_url)

    async def s3_client(self, target: SQSTarget) -> Any:
        """The S3 client for offloading to ``target``'s queue, created on first use."""
        offload = self.offload
        assert offload is not None
        return await self._client(
            self._s3_clients,
            "s3",
            target,
            offload.region or target.region,
            offload.endpoint_url or self.endpoint_url,
        )

    async def _client(
        self,
        clients: dict[ClientKey, Any],
        service: str,
        target: SQSTarget,
        region: str,
        endpoint_url: str | None,
    ) -> Any:
        key: ClientKey = (
            service,
            target.access_key_id,
            target.secret_access_key,
            region,
            endpoint_url,
        )
        client = clients.get(key)
        if client is not None:
            return client
        async with self._lock:
            client = clients.get(key)
            if client is None:
                if self._session is None:
                    self._session = aioboto3.Session()
                credentials: dict[str, str] = {}
                if target.access_key_id is not None and target.secret_access_key is not None:
                    credentials = {
                        "aws_access_key_id": target.access_key_id,
                        "aws_secret_access_key": target.secret_access_key.reveal(),
                    }
                client = await self._stack.enter_async_context(
                    self._session.client(
                        service,
                        region_name=region,
                        endpoint_url=endpoint_url,
                        config=self._config,
                        **credentials,
                    )
                )
                clients[key] = client
        return client

    def attributes(self, message: OutboundMessage) -> dict[str, dict[str, str]]:
        """The message attributes sent with ``message`` (Saleor's, then a profile's)."""
        attributes = {
            "SaleorDomain": {"DataType": "String", "StringValue": message.domain},
            "SaleorApiUrl": {"DataType": "String", "StringValue": message.api_url},
            "EventType": {"DataType": "String", "StringValue": message.event},
        }
        if message.signature:  # SQS refuses empty String attributes
            attributes["Signature"] = {"DataType": "String", "StringValue": message.signature}
        # A signing profile's own headers (Standard Webhooks' webhook-id, -timestamp,
        # -signature) travel as attributes of the same names.
        for name, value in message.signature_headers:
            if value:
                attributes[name] = {"DataType": "String", "StringValue": value}
        if self.delivery_id_attribute and message.delivery_id:
            attributes[self.delivery_id_attribute] = {
                "DataType": "String",
                "StringValue": message.delivery_id,
            }
        return attributes

    def message_size(self, message: OutboundMessage) -> int:
        """What SQS counts for ``message``: the body and the attributes, in bytes."""
        return len(message.body) + sqs_attributes_size(self.attributes(message))

    async def send(self, message: OutboundMessage) -> TransportResult:
        target = self.target(message.url)
        try:
            body = message.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TransportError(
                f"SQS needs a UTF-8 body; the body for {message.target} is not", retryable=False
            ) from exc
        attributes = self.attributes(message)
        size = len(message.body) + sqs_attributes_size(attributes)
        offload = self.offload
        offloading = offload is not None and (offload.always or size > offload.threshold)
        if offloading:
            assert offload is not None
            if len(message.body) > offload.max_object_bytes:
                raise too_large(self, message.url, len(message.body), offload.max_object_bytes)
        elif size > self.max_message_bytes:
            raise too_large(self, message.url, size, self.max_message_bytes)
        request: dict[str, Any] = {
            "QueueUrl": target.queue_url,
            "MessageBody": body,
            "MessageAttributes": attributes,
        }
        if target.fifo:
            request["MessageGroupId"] = message.ordering_key or message.domain
            if self.dedup_by_delivery and message.delivery_id:
                request["MessageDeduplicationId"] = message.delivery_id
        where = message.target
        service = "sqs"
        try:
            async with asyncio.timeout(message.timeouts.total):
                if offloading:
                    service = "s3"
                    request["MessageBody"] = await self._offload(target, message)
                    attributes[EXTENDED_PAYLOAD_SIZE] = {
                        "DataType": "Number",
                        "StringValue": str(len(message.body)),
                    }
                    service = "sqs"
                client = await self.client(target)
                response = await client.send_message(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "")) or None
            text = target.scrub(str(error.get("Message", "")) or str(exc))
            raise QueueError(
                f"{service.upper()} refused the message for {where}: {code or 'error'}: {text}",
                service=service,
                code=code,
            ) from exc
        except (ConnectTimeoutError, ReadTimeoutError, TimeoutError) as exc:
            raise DeliveryTimeoutError(
                f"timed out sending to {where} (budget {message.timeouts.total:g} s)"
            ) from exc
        except BotoSSLError as exc:
            raise TLSError(
                f"TLS failed with {service.upper()} for {where}: {target.scrub(str(exc))}"
            ) from exc
        except (BotoConnectionError, HTTPClientError, aiohttp.ClientError, OSError) as exc:
            raise ConnectError(
                f"cannot connect to {service.upper()} for {where}: {target.scrub(_describe(exc))}"
            ) from exc
        except (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError) as exc:
            raise QueueError(
                f"no usable AWS credentials for {where}: put KEY:SECRET in the URL or configure "
                f"the default credential chain ({type(exc).__name__})",
                service=service,
                code=type(exc).__name__,
            ) from exc
        except BotoCoreError as exc:
            raise QueueError(
                f"{service.upper()} client error for {where}: {target.scrub(_describe(exc))}",
                service=service,
                code=type(exc).__name__,
            ) from exc
        return TransportResult(ok=True, message_id=response.get("MessageId"))

    async def _offload(self, target: SQSTarget, message: OutboundMessage) -> str:
        """Put the body in S3; the Extended Client's pointer to it, as the message body."""
        offload = self.offload
        assert offload is not None
        key = f"{offload.prefix}{message.delivery_id or new_id()}"
        s3 = await self.s3_client(target)
        await s3.put_object(
            Bucket=offload.bucket, Key=key, Body=message.body, ContentType="application/json"
        )
        return json.dumps([POINTER_CLASS, {"s3BucketName": offload.bucket, "s3Key": key}])

    async def aclose(self) -> None:
        self._clients.clear()
        self._s3_clients.clear()
        stack, self._stack = self._stack, contextlib.AsyncExitStack()
        await stack.aclose()

    def __repr__(self) -> str:
        endpoint = redact_url(self.endpoint_url) if self.endpoint_url else None
        return f"SQSTransport(endpoint_url={endpoint!r}, clients={len(self._clients)})"


_ATTRIBUTE_RE = re.compile(r"[A-Za-z0-9_.-]{1,256}")
_RESERVED_ATTRIBUTES = frozenset(
    {"saleordomain", "saleorapiurl", "eventtype", "signature", EXTENDED_PAYLOAD_SIZE.lower()}
)


def _attribute_name(name: str | None) -> str | None:
    """``name`` if SQS takes it as a message attribute name and it is none of ours."""
    if name is None:
        return None
    field = "delivery_id_attribute"
    if (
        not isinstance(name, str)
        or not _ATTRIBUTE_RE.fullmatch(name)
        or name.startswith(".")
        or name.endswith(".")
        or ".." in name
        or name.lower().startswith(("aws.", "amazon."))
    ):
        raise ConfigurationError(
            f"{field}: {name!r} is not an SQS attribute name (letters, digits, '_', '-', '.'; "
            "not starting with 'AWS.' or 'Amazon.')",
            field=field,
        )
    if name.lower() in _RESERVED_ATTRIBUTES or name.lower().startswith("webhook-"):
        raise ConfigurationError(f"{field}: {name!r} is taken by webhookkit", field=field)
    return name


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


_parse_cached = functools.lru_cache(maxsize=_PARSE_CACHE_SIZE)(parse_sqs_url)
