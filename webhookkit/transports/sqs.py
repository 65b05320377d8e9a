"""AWS SQS delivery with aioboto3 (extra ``sqs``): Saleor's URL grammar and attributes.

``awssqs://<ACCESS_KEY_ID>:<url-encoded SECRET>@sqs.<region>.amazonaws.com/<account>/<queue>``

The region comes from a four-part host starting with ``sqs``, else it is ``us-east-1``.
Without credentials in the URL, boto's default credential chain applies (environment,
config files, instance roles). The queue URL sent to SQS is ``https://<host><path>``.
Each message carries the body and the String attributes ``SaleorDomain``, ``SaleorApiUrl``,
``EventType`` and ``Signature``; FIFO queues (``.fifo``) get ``MessageGroupId`` = the shop's
domain, or the message's ordering key when one is set, and need content-based deduplication
unless ``dedup_by_delivery`` is on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
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

from .._secret import REDACTED, Secret, redact_url
from ..exceptions import (
    ConnectError,
    DeliveryTimeoutError,
    InvalidURLError,
    QueueError,
    TLSError,
    TransportError,
)
from .base import OutboundMessage, Transport, TransportResult

__all__ = ["SQSTarget", "SQSTransport", "parse_sqs_url"]

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


ClientKey = tuple[str | None, Secret | None, str, str | None]


class SQSTransport(Transport):
    """Sends messages to SQS queues; one aioboto3 client per (credentials, region, endpoint).

    ``endpoint_url`` overrides the SQS endpoint for every queue (a local server such as moto
    or LocalStack); boto's ``AWS_ENDPOINT_URL_SQS`` variable works too. ``connect_timeout``
    and ``read_timeout`` are the client's socket limits (Saleor: 2 s and 18 s); each send is
    also bounded by the message's total timeout. Boto's own retries are off, the scheduler
    retries. ``dedup_by_delivery`` sends the delivery id as ``MessageDeduplicationId`` on
    FIFO queues, so queues without content-based deduplication work and two deliveries with
    the same body are not merged.
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
    ) -> None:
        self.endpoint_url = endpoint_url
        self.dedup_by_delivery = dedup_by_delivery
        self._session = session
        self._config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": 1},
        )
        self._clients: dict[ClientKey, Any] = {}
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
        """The client for ``target``'s credentials and region, created on first use."""
        key: ClientKey = (
            target.access_key_id,
            target.secret_access_key,
            target.region,
            self.endpoint_url,
        )
        client = self._clients.get(key)
        if client is not None:
            return client
        async with self._lock:
            client = self._clients.get(key)
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
                        "sqs",
                        region_name=target.region,
                        endpoint_url=self.endpoint_url,
                        config=self._config,
                        **credentials,
                    )
                )
                self._clients[key] = client
        return client

    async def send(self, message: OutboundMessage) -> TransportResult:
        target = self.target(message.url)
        try:
            body = message.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TransportError(
                f"SQS needs a UTF-8 body; the body for {message.target} is not", retryable=False
            ) from exc
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
        try:
            async with asyncio.timeout(message.timeouts.total):
                client = await self.client(target)
                response = await client.send_message(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "")) or None
            text = target.scrub(str(error.get("Message", "")) or str(exc))
            raise QueueError(
                f"SQS refused the message for {where}: {code or 'error'}: {text}",
                service="sqs",
                code=code,
            ) from exc
        except (ConnectTimeoutError, ReadTimeoutError, TimeoutError) as exc:
            raise DeliveryTimeoutError(
                f"timed out sending to {where} (budget {message.timeouts.total:g} s)"
            ) from exc
        except BotoSSLError as exc:
            raise TLSError(f"TLS failed with SQS for {where}: {target.scrub(str(exc))}") from exc
        except (BotoConnectionError, HTTPClientError, aiohttp.ClientError, OSError) as exc:
            raise ConnectError(
                f"cannot connect to SQS for {where}: {target.scrub(_describe(exc))}"
            ) from exc
        except (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError) as exc:
            raise QueueError(
                f"no usable AWS credentials for {where}: put KEY:SECRET in the URL or configure "
                f"the default credential chain ({type(exc).__name__})",
                service="sqs",
                code=type(exc).__name__,
            ) from exc
        except BotoCoreError as exc:
            raise QueueError(
                f"SQS client error for {where}: {target.scrub(_describe(exc))}",
                service="sqs",
                code=type(exc).__name__,
            ) from exc
        return TransportResult(ok=True, message_id=response.get("MessageId"))

    async def aclose(self) -> None:
        self._clients.clear()
        stack, self._stack = self._stack, contextlib.AsyncExitStack()
        await stack.aclose()

    def __repr__(self) -> str:
        endpoint = redact_url(self.endpoint_url) if self.endpoint_url else None
        return f"SQSTransport(endpoint_url={endpoint!r}, clients={len(self._clients)})"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


_parse_cached = functools.lru_cache(maxsize=_PARSE_CACHE_SIZE)(parse_sqs_url)
