"""Google Cloud Pub/Sub delivery with gcloud-aio-pubsub (extra ``pubsub``).

``gcpubsub://<any host>/projects/<project>/topics/<topic>``: the host is ignored (Saleor's
rule). The message data is the body; the attributes are ``saleorDomain``, ``saleorApiUrl``,
``eventType`` and ``signature``. Credentials come from the environment
(``GOOGLE_APPLICATION_CREDENTIALS``); ``PUBSUB_EMULATOR_HOST`` points the publisher at the
emulator instead, as in Google's own clients.

A body over 10 MB (Google's limit on a message's data, ``max_message_bytes``) is a
:class:`~webhookkit.exceptions.PayloadTooLargeError`, never retried.
"""

from __future__ import annotations

import asyncio
import functools
import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from gcloud.aio.pubsub import PublisherClient, PubsubMessage

from .._sanitize import excerpt
from .._secret import redact_url
from ..exceptions import (
    ConfigurationError,
    ConnectError,
    DeliveryTimeoutError,
    InvalidURLError,
    QueueError,
)
from ._limits import PUBSUB_MAX_MESSAGE_BYTES, check_limit, too_large
from .base import OutboundMessage, Transport, TransportResult

__all__ = ["PubSubTarget", "PubSubTransport", "parse_pubsub_url"]

_GRAMMAR = "gcpubsub://<host>/projects/<project>/topics/<topic>"
_PATH_RE = re.compile(r"/projects/([^/]+)/topics/([^/]+)")
# Google's rules: project ids are lowercase letters, digits and hyphens (a domain-scoped id
# adds "example.com:"); topic names are 3-255 characters and start with a letter.
_PROJECT_RE = re.compile(r"(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]")
_TOPIC_RE = re.compile(r"[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}")
_PARSE_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class PubSubTarget:
    """A parsed ``gcpubsub://`` URL."""

    project: str
    topic: str

    @property
    def topic_path(self) -> str:
        return f"projects/{self.project}/topics/{self.topic}"


def parse_pubsub_url(url: str) -> PubSubTarget:
    """Parse ``gcpubsub://host/projects/P/topics/T``; :class:`InvalidURLError` says what's wrong."""
    shown = redact_url(url)

    def bad(problem: str) -> InvalidURLError:
        return InvalidURLError(
            f"target_url: {problem} in {shown!r} (expected {_GRAMMAR})", field="target_url"
        )

    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise bad(f"malformed URL ({exc})") from None
    if parts.scheme.lower() != "gcpubsub":
        raise bad(f"scheme {parts.scheme!r} is not 'gcpubsub'")
    if "@" in parts.netloc:
        raise bad("credentials do not belong in the URL (use GOOGLE_APPLICATION_CREDENTIALS)")
    if parts.query or parts.fragment:
        raise bad("a query or fragment is not part of the grammar")
    match = _PATH_RE.fullmatch(parts.path)
    if match is None:
        raise bad("the path must be /projects/<project>/topics/<topic>")
    project, topic = match.groups()
    if not _PROJECT_RE.fullmatch(project):
        raise bad(f"project id {project!r} must be 6-30 lowercase letters, digits or hyphens")
    if not _TOPIC_RE.fullmatch(topic) or topic.lower().startswith("goog"):
        raise bad(
            f"topic {topic!r} must be 3-255 characters from letters, digits and '-_.~+%', "
            "start with a letter and not with 'goog'"
        )
    return PubSubTarget(project=project, topic=topic)


class PubSubTransport(Transport):
    """Publishes messages to Pub/Sub topics through one reused publisher client.

    ``api_root`` overrides the API address (``http://127.0.0.1:8085/v1`` for an emulator);
    otherwise ``PUBSUB_EMULATOR_HOST`` is honoured, else Google's endpoint with credentials
    from ``service_file`` or ``GOOGLE_APPLICATION_CREDENTIALS``. Each publish is bounded by
    the message's total timeout. The message's ``ordering_key``, when set, becomes the
    Pub/Sub ordering key (the subscription must enable message ordering to honour it).
    ``max_message_bytes`` caps the body (the message's data), 10 MB as Google does.
    ``delivery_id_attribute`` (e.g. ``"deliveryId"``) adds an attribute of that name with the
    delivery id, the same on every attempt.
    """

    schemes = frozenset({"gcpubsub"})

    def __init__(
        self,
        *,
        api_root: str | None = None,
        service_file: str | None = None,
        max_message_bytes: int = PUBSUB_MAX_MESSAGE_BYTES,
        delivery_id_attribute: str | None = None,
    ) -> None:
        self.api_root = api_root
        self.delivery_id_attribute = _attribute_name(delivery_id_attribute)
        self.max_body_bytes = check_limit(
            max_message_bytes, "max_message_bytes", maximum=PUBSUB_MAX_MESSAGE_BYTES
        )
        self._service_file = service_file
        self._client: PublisherClient | None = None

    def validate_url(self, url: str) -> None:
        parse_pubsub_url(url)

    def target(self, url: str) -> PubSubTarget:
        """The parsed URL, from a small cache: the hot path parses each URL once."""
        return _parse_cached(url)

    def publisher(self) -> PublisherClient:
        """The publisher, created on first use (it reads PUBSUB_EMULATOR_HOST then)."""
        if self._client is None:
            self._client = PublisherClient(api_root=self.api_root, service_file=self._service_file)
        return self._client

    async def send(self, message: OutboundMessage) -> TransportResult:
        target = self.target(message.url)
        limit = self.max_body_bytes
        if limit is not None and len(message.body) > limit:
            raise too_large(self, message.url, len(message.body), limit)
        attributes = {
            "saleorDomain": message.domain,
            "saleorApiUrl": message.api_url,
            "eventType": message.event,
        }
        if message.signature is not None:
            attributes["signature"] = message.signature
        # A signing profile's own headers (Standard Webhooks) travel as attributes too.
        attributes.update(message.signature_headers)
        if self.delivery_id_attribute and message.delivery_id:
            attributes[self.delivery_id_attribute] = message.delivery_id
        pubsub_message = PubsubMessage(
            message.body, ordering_key=message.ordering_key or "", **attributes
        )
        where = message.target
        budget = message.timeouts.total
        try:
            async with asyncio.timeout(budget):
                response: dict[str, Any] = await self.publisher().publish(
                    target.topic_path, [pubsub_message], timeout=math.ceil(budget)
                )
        except aiohttp.ClientResponseError as exc:
            raise QueueError(
                f"Pub/Sub refused the message for {where}: HTTP {exc.status}: "
                f"{excerpt(exc.message, 300)}",
                service="pubsub",
                code=str(exc.status),
            ) from exc
        except TimeoutError as exc:
            raise DeliveryTimeoutError(
                f"timed out publishing to {where} (budget {budget:g} s)"
            ) from exc
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise ConnectError(f"cannot connect to Pub/Sub for {where}: {_describe(exc)}") from exc
        except Exception as exc:
            # gcloud-aio-auth raises plain Exception/ValueError for credential problems;
            # Saleor retries every Pub/Sub error, so they are all queue errors here.
            raise QueueError(
                f"Pub/Sub error for {where}: {_describe(exc)}", service="pubsub"
            ) from exc
        ids = response.get("messageIds") or [None]
        return TransportResult(ok=True, message_id=ids[0])

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
            await asyncio.sleep(0)  # let the session's connections finish closing

    def __repr__(self) -> str:
        return f"PubSubTransport(api_root={self.api_root!r})"


_RESERVED_ATTRIBUTES = frozenset({"saleordomain", "saleorapiurl", "eventtype", "signature"})


def _attribute_name(name: str | None) -> str | None:
    """``name`` if Pub/Sub takes it as an attribute key and it is none of ours."""
    if name is None:
        return None
    field = "delivery_id_attribute"
    if (
        not isinstance(name, str)
        or not name
        or len(name.encode("utf-8")) > 256
        or name.lower().startswith("goog")
        or any(c.isspace() or ord(c) < 0x20 for c in name)
    ):
        raise ConfigurationError(
            f"{field}: {name!r} is not a Pub/Sub attribute key (1-256 bytes, not 'goog...')",
            field=field,
        )
    if name.lower() in _RESERVED_ATTRIBUTES or name.lower().startswith("webhook-"):
        raise ConfigurationError(f"{field}: {name!r} is taken by webhookkit", field=field)
    return name


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


_parse_cached = functools.lru_cache(maxsize=_PARSE_CACHE_SIZE)(parse_pubsub_url)
