"""Verifiers for receivers: HMAC, JWS against the sender's JWKS, and Standard Webhooks.

Every verifier has ``async verify(body, headers)`` that returns None or raises a
:class:`~webhookkit.exceptions.SignatureError` subclass saying why: malformed header, unknown
key, mismatch, or timestamp out of range. Nothing else escapes, whatever the input.
Header names are matched without regard to case.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature

from .._secret import Secret
from ..exceptions import (
    InvalidKeyError,
    JWKSFetchError,
    MalformedSignatureError,
    SignatureMismatchError,
    TimestampError,
    UnknownKeyError,
)
from ._checks import body_bytes, header_text
from .hmac import hmac_key_bytes, verify_hmac
from .jws import MAX_SIGNATURE_LENGTH, PublicKeys, parse_detached_jws
from .keys import ALGORITHMS
from .standard import (
    HEADER_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    StandardSecret,
    parse_secrets,
    signed_content,
)

__all__ = [
    "HMACVerifier",
    "JWKSFetch",
    "JWKSVerifier",
    "StandardWebhooksVerifier",
    "Verifier",
    "header_value",
    "jwks_url_for",
]

if TYPE_CHECKING:  # signing does no I/O: the session is only handed to transports.fetch
    import aiohttp

log = logging.getLogger("webhookkit.signing")

SALEOR_SIGNATURE_HEADERS = ("Saleor-Signature", "X-Saleor-Signature")
MAX_JWKS_BYTES = 256 * 1024


@runtime_checkable
class Verifier(Protocol):
    """Checks one request; raises only :class:`SignatureError` subclasses."""

    async def verify(self, body: bytes, headers: Mapping[str, str], /) -> None: ...


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """``headers[name]`` regardless of case (plain dicts too); None when absent.

    ``headers`` that are no mapping raise :class:`MalformedSignatureError`.
    """
    if not isinstance(headers, Mapping):
        raise MalformedSignatureError(
            f"headers: expected a mapping of header names to values, got {type(headers).__name__}"
        )
    try:
        value = headers.get(name)
        if value is not None:
            return value
        lower = name.lower()
        for key, item in headers.items():
            if isinstance(key, str) and key.lower() == lower:
                return item
    except Exception:  # a hostile Mapping must not leak another exception type
        raise MalformedSignatureError("headers: the mapping could not be read") from None
    return None


def _signature_header(headers: Mapping[str, str]) -> str:
    for name in SALEOR_SIGNATURE_HEADERS:
        value = header_value(headers, name)
        if value is not None:
            return header_text(name, value).strip()
    raise MalformedSignatureError("Saleor-Signature header is missing")


class HMACVerifier:
    """Saleor's HMAC: ``Saleor-Signature`` = hex HMAC-SHA256 of the body with a secret key.

    Several secrets may be given while one is being replaced; any of them is accepted.
    """

    def __init__(self, secret: str | Secret | Sequence[str | Secret]) -> None:
        if isinstance(secret, str | Secret):
            items: list[object] = [secret]
        elif isinstance(secret, Iterable) and not isinstance(secret, bytes | bytearray):
            items = list(secret)
        else:
            raise InvalidKeyError("secret: expected a string or a list of strings", field="secret")
        secrets: list[Secret] = []
        for item in items:
            if not isinstance(item, str | Secret) or not item:
                raise InvalidKeyError(
                    "secret: at least one non-empty secret needed", field="secret"
                )
            secrets.append(Secret(item) if isinstance(item, str) else item)
            hmac_key_bytes(item)  # refuses secrets that are no encodable text
        if not secrets:
            raise InvalidKeyError("secret: at least one non-empty secret needed", field="secret")
        self._secrets = secrets

    def check(self, body: bytes, headers: Mapping[str, str]) -> None:
        """The synchronous check (no I/O)."""
        signature = _signature_header(headers)
        verify_hmac(body_bytes(body), signature, self._secrets)

    async def verify(self, body: bytes, headers: Mapping[str, str], /) -> None:
        self.check(body, headers)

    def __repr__(self) -> str:
        return f"HMACVerifier(secrets=[secret] x {len(self._secrets)})"


def jwks_url_for(api_url: str) -> str:
    """The JWKS URL of a Saleor API URL, as the app SDK derives it: origin + well-known path."""
    parts = urlsplit(api_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise InvalidKeyError(f"api_url: {api_url!r} is not an http(s) URL", field="api_url")
    return f"{parts.scheme}://{parts.netloc}/.well-known/jwks.json"


#: Fetches the JWKS document at a URL: returns its bytes or raises (any exception counts as a
#: failed fetch). :func:`webhookkit.transports.fetch.http_get` is the default.
JWKSFetch = Callable[[str], Awaitable[bytes]]


class JWKSVerifier:
    """Saleor's default: a detached JWS in ``Saleor-Signature``, checked against the sender's
    JWKS.

    The JWKS is fetched on first use and cached for ``cache_ttl`` seconds. A signature whose
    ``kid`` is unknown (or that no cached key fits) triggers a refetch, so a sender's new key is
    picked up at the next delivery, even after a rotation that skipped publishing first.
    Refetches are at most one per ``refetch_interval`` seconds (1 s) and never concurrent, so
    forged kids cannot make the verifier hammer the sender. If a refresh fails while older keys
    are cached, the older keys keep being used.

    Take the JWKS URL from configuration (or :func:`jwks_url_for` of the API URL you
    registered), never from the request's own ``Saleor-Api-Url`` header. ``jwks`` gives a
    static document instead (no fetching). ``fetch`` replaces the download (default: an
    aiohttp GET via :func:`webhookkit.transports.fetch.http_get`, limited to 256 KiB and
    ``timeout`` seconds, on ``session`` when one is lent).
    """

    def __init__(
        self,
        jwks_url: str | None = None,
        *,
        jwks: Mapping[str, Any] | str | bytes | None = None,
        fetch: JWKSFetch | None = None,
        session: aiohttp.ClientSession | None = None,
        refetch_interval: float = 1.0,
        cache_ttl: float = 300.0,
        timeout: float = 10.0,
        algorithms: Sequence[str] = ALGORITHMS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if (jwks_url is None) == (jwks is None):
            raise InvalidKeyError("jwks: give exactly one of jwks_url and jwks", field="jwks")
        if jwks_url is not None:
            parts = urlsplit(jwks_url) if isinstance(jwks_url, str) else None
            if parts is None or parts.scheme not in {"http", "https"} or not parts.netloc:
                raise InvalidKeyError(f"jwks_url: {jwks_url!r} is not an http(s) URL", field="jwks")
        for name, value in (
            ("refetch_interval", refetch_interval),
            ("cache_ttl", cache_ttl),
            ("timeout", timeout),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 <= value < float("inf")
            ):
                raise InvalidKeyError(f"{name}: must be a finite number >= 0", field=name)
        if timeout <= 0:
            raise InvalidKeyError("timeout: must be > 0", field="timeout")
        self.jwks_url = jwks_url
        self._fetch_document = fetch
        self._session = session
        self._refetch_interval = float(refetch_interval)
        self._cache_ttl = float(cache_ttl)
        self._timeout = float(timeout)
        if isinstance(algorithms, str) or not all(a in ALGORITHMS for a in algorithms):
            raise InvalidKeyError(
                f"algorithms: a list drawn from {list(ALGORITHMS)}", field="algorithms"
            )
        if fetch is not None and not callable(fetch):
            raise InvalidKeyError("fetch: must be an async function of the URL", field="fetch")
        self._algorithms = tuple(algorithms)
        self._monotonic = monotonic
        self._keys: PublicKeys | None = PublicKeys.from_jwks(jwks) if jwks is not None else None
        self._fetched_at: float | None = None
        self._expires_at = float("inf")
        self._last_error: str | None = None
        self._lock = asyncio.Lock()
        #: How many times the JWKS was fetched (successfully or not).
        self.fetches = 0

    @classmethod
    def for_saleor(cls, api_url: str, **options: Any) -> JWKSVerifier:
        """A verifier for the Saleor instance at ``api_url`` (``https://shop/graphql/``)."""
        return cls(jwks_url_for(api_url), **options)

    async def _download(self, url: str) -> bytes:
        if self._fetch_document is not None:
            return await self._fetch_document(url)
        from ..transports.fetch import http_get  # the one place that opens sockets

        return await http_get(
            url, timeout=self._timeout, limit=MAX_JWKS_BYTES, session=self._session
        )

    async def _fetch(self) -> PublicKeys:
        assert self.jwks_url is not None
        self.fetches += 1
        self._fetched_at = self._monotonic()
        try:
            data = await self._download(self.jwks_url)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a fetch function may raise anything; verifiers must not
            raise JWKSFetchError(f"JWKS: fetching {self.jwks_url} failed: {exc}") from None
        if not isinstance(data, bytes | bytearray | str):
            raise JWKSFetchError(f"JWKS: fetching {self.jwks_url} gave no bytes")
        if len(data) > MAX_JWKS_BYTES:
            raise JWKSFetchError(f"JWKS: larger than {MAX_JWKS_BYTES} bytes")
        try:
            keys = PublicKeys.from_jwks(bytes(data) if isinstance(data, bytearray) else data)
        except InvalidKeyError as exc:
            raise JWKSFetchError(f"JWKS: {self.jwks_url} is unusable: {exc}") from None
        self._expires_at = self._monotonic() + max(self._cache_ttl, self._refetch_interval)
        for kid, reason in keys.refused.items():
            log.warning("JWKS %s: key %s refused: %s", self.jwks_url, kid, reason)
        return keys

    async def _refresh(self, *, seen: PublicKeys | None) -> PublicKeys:
        """Fetch unless another task already replaced ``seen`` while we waited for the lock.

        Only one fetch runs at a time. A failure is remembered: until ``refetch_interval`` has
        passed, requests get the cached keys (or the same error) instead of another fetch, so a
        sender that is down is not hammered by every incoming request.
        """
        async with self._lock:
            if self._keys is not seen and self._keys is not None:
                return self._keys
            if self._last_error is not None and not self._may_refetch():
                if self._keys is not None:
                    return self._keys
                raise JWKSFetchError(
                    f"{self._last_error} (next try within {self._refetch_interval:g} s)"
                )
            try:
                self._keys = await self._fetch()
                self._last_error = None
            except JWKSFetchError as exc:
                self._last_error = str(exc)
                if self._keys is None:
                    raise
                log.warning("JWKS %s: refresh failed, keeping the cached keys", self.jwks_url)
            return self._keys

    def _may_refetch(self) -> bool:
        if self.jwks_url is None:
            return False
        return (
            self._fetched_at is None
            or self._monotonic() - self._fetched_at >= self._refetch_interval
        )

    async def keys(self) -> PublicKeys:
        """The cached keys, fetched first if none are cached or the cache has expired."""
        keys = self._keys
        if keys is None or (self.jwks_url is not None and self._monotonic() >= self._expires_at):
            keys = await self._refresh(seen=keys)
        return keys

    async def verify(self, body: bytes, headers: Mapping[str, str], /) -> None:
        body = body_bytes(body)
        jws = parse_detached_jws(_signature_header(headers), algorithms=self._algorithms)
        keys = await self.keys()
        try:
            keys.verify(body, jws)
        except UnknownKeyError:
            # The sender may have rotated (perhaps without publishing first): look once more,
            # then decide. Within the refetch floor the cached keys answer again.
            if not self._may_refetch():
                raise
            keys = await self._refresh(seen=keys)
            keys.verify(body, jws)

    def __repr__(self) -> str:
        source = self.jwks_url if self.jwks_url is not None else "static"
        return f"JWKSVerifier({source!r}, keys={len(self._keys) if self._keys else 0})"


_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
MAX_ID_LENGTH = 256


class StandardWebhooksVerifier:
    """Standard Webhooks: checks ``webhook-signature`` over ``id.timestamp.body``.

    ``secrets`` are ``whsec_`` secrets (``v1``) and/or ``whpk_`` public keys (``v1a``; a
    ``whsk_`` key is accepted too). Several may be given during a rotation; a delivery passes
    if any signature in its header matches any of them. ``webhook-timestamp`` must lie within
    ``tolerance`` (default 5 minutes) of ``now()``.
    """

    def __init__(
        self,
        secrets: str | Secret | Iterable[str | Secret],
        *,
        tolerance: float | timedelta = 300.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._secrets: tuple[StandardSecret, ...] = parse_secrets(secrets)
        seconds = tolerance.total_seconds() if isinstance(tolerance, timedelta) else tolerance
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not 0 < seconds < float("inf")
        ):
            raise InvalidKeyError(
                "tolerance: must be a positive number of seconds or a timedelta", field="tolerance"
            )
        if not callable(now):
            raise InvalidKeyError("now: must be a function returning epoch seconds", field="now")
        self._tolerance = seconds
        self._now = now

    def _header(self, headers: Mapping[str, str], name: str, limit: int) -> str:
        value = header_value(headers, name)
        if value is None:
            raise MalformedSignatureError(f"{name} header is missing or empty")
        value = header_text(name, value).strip()
        if not value:
            raise MalformedSignatureError(f"{name} header is missing or empty")
        if len(value) > limit:
            raise MalformedSignatureError(f"{name} header longer than {limit} characters")
        return value

    def check(self, body: bytes, headers: Mapping[str, str]) -> None:
        """The synchronous check (no I/O)."""
        body = body_bytes(body)
        msg_id = self._header(headers, HEADER_ID, MAX_ID_LENGTH)
        stamp = self._header(headers, HEADER_TIMESTAMP, 12)
        signature = self._header(headers, HEADER_SIGNATURE, MAX_SIGNATURE_LENGTH)
        if not _TIMESTAMP.match(stamp):
            raise MalformedSignatureError(f"{HEADER_TIMESTAMP}: not an integer of seconds")
        timestamp = int(stamp)
        offset = self._now() - timestamp
        if offset > self._tolerance:
            raise TimestampError(
                f"{HEADER_TIMESTAMP}: {offset:.0f} s old, tolerance {self._tolerance:.0f} s"
            )
        if offset < -self._tolerance:
            raise TimestampError(
                f"{HEADER_TIMESTAMP}: {-offset:.0f} s in the future, tolerance "
                f"{self._tolerance:.0f} s"
            )
        given: dict[str, list[bytes]] = {"v1": [], "v1a": []}
        for token in signature.split():
            version, sep, encoded = token.partition(",")
            if not sep or not version:
                raise MalformedSignatureError(
                    f"{HEADER_SIGNATURE}: expected '<version>,<base64>' entries"
                )
            if version not in given:
                continue  # a later scheme this verifier does not know; others may match
            try:
                given[version].append(base64.b64decode(encoded, validate=True))
            except (binascii.Error, ValueError):
                raise MalformedSignatureError(
                    f"{HEADER_SIGNATURE}: {version} signature is not base64"
                ) from None
        kinds = {s.kind for s in self._secrets}
        if not any(given[kind] for kind in kinds):
            present = sorted(k for k, v in given.items() if v) or ["none known"]
            raise UnknownKeyError(
                f"{HEADER_SIGNATURE}: no signature of a configured scheme "
                f"({', '.join(sorted(kinds))}); header has {', '.join(present)}"
            )
        content = signed_content(msg_id, timestamp, body)
        if not self._matches(content, given):
            raise SignatureMismatchError(f"{HEADER_SIGNATURE}: no signature matches the body")

    def _matches(self, content: bytes, given: Mapping[str, list[bytes]]) -> bool:
        matched = False
        for secret in self._secrets:
            if secret.hmac_key is not None:
                expected = hmac.new(secret.hmac_key, content, hashlib.sha256).digest()
                for candidate in given["v1"]:
                    matched |= hmac.compare_digest(expected, candidate)
            elif secret.public is not None:
                for candidate in given["v1a"]:
                    try:
                        secret.public.verify(candidate, content)
                        matched = True
                    except InvalidSignature:
                        pass
        return matched

    async def verify(self, body: bytes, headers: Mapping[str, str], /) -> None:
        self.check(body, headers)

    def __repr__(self) -> str:
        return f"StandardWebhooksVerifier(secrets=[secret] x {len(self._secrets)})"
