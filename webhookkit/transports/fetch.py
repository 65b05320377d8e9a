"""Requests other than deliveries: a plain GET for a JWKS, and arbitrary requests through an
:class:`~webhookkit.transports.http.HTTPTransport`'s guarded session (app installation).

Only ``transports`` opens sockets; other packages take one of these functions.
"""

from __future__ import annotations

from collections.abc import Iterable

import aiohttp

from .._secret import redact_url
from ..exceptions import ConnectError, DeliveryTimeoutError, TransportError
from .base import Timeouts
from .http import HTTPResponse, HTTPTransport, read_up_to

__all__ = ["HTTPResponse", "guarded_request", "http_get"]


async def http_get(
    url: str,
    *,
    timeout: float,
    limit: int,
    session: aiohttp.ClientSession | None = None,
) -> bytes:
    """The body of a ``200`` answer to ``GET url``, at most ``limit`` bytes.

    Redirects are not followed. Raises :class:`TransportError` (``ConnectError``,
    ``DeliveryTimeoutError``) for a non-200 status, a larger body, or a failed connection.
    ``session`` lends an aiohttp session; without one a short-lived one is opened.
    """
    target = redact_url(url)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    try:
        if session is not None:
            return await _get(session, url, target, client_timeout, limit)
        async with aiohttp.ClientSession(trust_env=False) as own:
            return await _get(own, url, target, client_timeout, limit)
    except TransportError:
        raise
    except TimeoutError:
        raise DeliveryTimeoutError(f"GET {target}: timed out after {timeout:g} s") from None
    except (aiohttp.ClientConnectionError, OSError) as exc:
        raise ConnectError(f"GET {target}: cannot connect ({type(exc).__name__})") from None
    except (aiohttp.ClientError, ValueError) as exc:
        raise TransportError(f"GET {target}: failed ({type(exc).__name__})") from None


async def _get(
    session: aiohttp.ClientSession,
    url: str,
    target: str,
    timeout: aiohttp.ClientTimeout,
    limit: int,
) -> bytes:
    async with session.get(url, timeout=timeout, allow_redirects=False) as response:
        if response.status != 200:
            raise TransportError(
                f"GET {target}: answered HTTP {response.status}",
                retryable=response.status >= 500,
            )
        data = await read_up_to(response.content, limit + 1)
        if len(data) > limit:
            raise TransportError(f"GET {target}: larger than {limit} bytes", retryable=False)
        return data


async def guarded_request(
    transport: HTTPTransport,
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Iterable[tuple[str, str]] = (),
    timeouts: Timeouts | None = None,
    limit: int = 1_048_576,
) -> HTTPResponse:
    """``method url`` through ``transport``'s SSRF-guarded, TLS-verifying session, redirects
    not followed; the whole answer (any status) up to ``limit`` bytes.

    See :meth:`HTTPTransport.request`; raises :class:`TransportError` subclasses
    (``BlockedAddressError`` for a refused address).
    """
    return await transport.request(
        method, url, body=body, headers=headers, timeouts=timeouts, limit=limit
    )
