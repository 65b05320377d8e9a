"""HTTP(S) delivery with aiohttp: one pooled session, Saleor's headers in Saleor's order."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping

import aiohttp

from .._secret import redact_headers
from ..delivery.records import excerpt
from ..exceptions import ConnectError, DeliveryTimeoutError, TransportError
from .base import OutboundMessage, Transport, TransportResult

__all__ = ["DEFAULT_USER_AGENT", "HTTPTransport", "saleor_headers"]

DEFAULT_USER_AGENT = "Saleor/3.24 webhookkit/0.1"
_READ_LIMIT = 4 * 1024 + 4  # enough bytes for 1,025 characters of any UTF-8 text


def saleor_headers(message: OutboundMessage) -> list[tuple[str, str]]:
    """Saleor's headers in Saleor's order, then custom headers, which override on collision."""
    headers: list[tuple[str, str]] = [("Content-Type", "application/json")]
    headers += [("X-Saleor-Event", message.event), ("X-Saleor-Domain", message.domain)]
    if message.signature is not None:
        headers.append(("X-Saleor-Signature", message.signature))
    headers += [("Saleor-Event", message.event), ("Saleor-Domain", message.domain)]
    if message.signature is not None:
        headers.append(("Saleor-Signature", message.signature))
    headers.append(("Saleor-Api-Url", message.api_url))
    headers += message.signature_headers
    position = {name.lower(): i for i, (name, _) in enumerate(headers)}
    for key, value in message.custom_headers:
        if key == "content-type":  # never overridable; validation refuses it anyway
            continue
        if key in position:
            headers[position[key]] = (key, value)
        else:
            position[key] = len(headers)
            headers.append((key, value))
    return headers


class HTTPTransport(Transport):
    """POSTs bodies with aiohttp. Redirects are never followed; 2xx is success."""

    schemes = frozenset({"http", "https"})

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limit: int = 100,
        limit_per_host: int = 10,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=self._limit_per_host, ssl=self._ssl
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self._user_agent},
                auto_decompress=True,
            )
        return self._session

    async def send(self, message: OutboundMessage) -> TransportResult:
        headers = saleor_headers(message)
        timeout = aiohttp.ClientTimeout(
            total=message.timeouts.total, sock_connect=message.timeouts.connect
        )
        try:
            async with self._get_session().post(
                message.url,
                data=message.body,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                raw = await response.content.read(_READ_LIMIT)
                text = raw.decode(response.get_encoding() if raw else "utf-8", errors="replace")
                status = response.status
                return TransportResult(
                    ok=200 <= status < 300,
                    status_code=status,
                    response_excerpt=excerpt(text),
                    request_headers=redact_headers(headers),
                    response_headers=redact_headers(_pairs(response.headers)),
                    retryable=status >= 500,
                )
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise DeliveryTimeoutError(
                f"timed out sending to {message.target} (budget {message.timeouts.total:g} s, "
                f"connect {message.timeouts.connect:g} s)"
            ) from exc
        except aiohttp.InvalidURL as exc:
            raise TransportError(f"invalid URL {message.target}", retryable=False) from exc
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise ConnectError(f"cannot connect to {message.target}: {_describe(exc)}") from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"HTTP error for {message.target}: {_describe(exc)}") from exc

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
            # Let the connector's transports finish closing before the loop goes away.
            await asyncio.sleep(0)
        self._session = None

    def __repr__(self) -> str:
        return f"HTTPTransport(limit={self._limit}, limit_per_host={self._limit_per_host})"


def _pairs(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    return list(headers.items())


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
