"""Checks a PostgreSQL URL before anything connects, so a typo is a typed error at once.

asyncpg parses the URL only when the pool opens and then raises its own ``ValueError`` or
``ClientConfigurationError`` (``postgresql://[::1`` is one). :func:`validate_dsn` follows
asyncpg's reading of the URL (a comma-separated host list, ``[v6]:port``, strict query
parameters) and refuses what it would refuse. Messages never repeat the URL: it may hold a
password.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qs, unquote, urlsplit

from .._sanitize import first_unstorable
from ..exceptions import ConfigurationError

__all__ = ["MAX_DSN_LENGTH", "validate_dsn"]

MAX_DSN_LENGTH = 4096
SCHEMES = frozenset({"postgresql", "postgres"})
_V6 = re.compile(r"\[([^\]]+)\](?::([^:]*))?")


def _refuse(reason: str) -> ConfigurationError:
    return ConfigurationError(f"store: PostgreSQL URL {reason}", field="store")


def _check_port(port: str) -> None:
    port = unquote(port)
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise _refuse("has a port that is not a number from 1 to 65535")


def _check_host(spec: str) -> None:
    if not spec:
        raise _refuse("has an empty entry in its host list")
    if spec.startswith("/"):
        return  # a Unix socket directory
    if spec.startswith("["):
        match = _V6.fullmatch(spec)
        if match is None:
            raise _refuse("has an unclosed or malformed [IPv6] host")
        address = unquote(match.group(1)).split("%", 1)[0]
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            raise _refuse("has a bracketed host that is not an IPv6 address") from None
        if match.group(2) is not None:
            _check_port(match.group(2))
        return
    if "[" in spec or "]" in spec:
        raise _refuse("has a stray '[' or ']' in a host")
    _, sep, port = spec.partition(":")
    if sep:
        _check_port(port)


def validate_dsn(dsn: str) -> None:
    """Raise :class:`ConfigurationError` (``field="store"``) unless ``dsn`` is a PostgreSQL
    URL asyncpg can use: ``postgresql://`` or ``postgres://``, hosts (``h``, ``h:5432``,
    ``[::1]:5432``, ``h1,h2:5433`` or a socket path) with ports 1-65535, ``key=value`` query
    parameters, no whitespace or control characters."""
    if not isinstance(dsn, str) or not dsn:
        raise ConfigurationError(
            "store: a PostgreSQL URL must be a non-empty string", field="store"
        )
    if len(dsn) > MAX_DSN_LENGTH:
        raise _refuse(f"is longer than {MAX_DSN_LENGTH} characters")
    if first_unstorable(dsn) is not None or any(c.isspace() or c == "\x7f" for c in dsn):
        raise _refuse("contains whitespace, control characters or lone surrogates")
    try:
        parts = urlsplit(dsn)
    except ValueError:
        raise _refuse("is malformed (an unclosed '[' in the host?)") from None
    if parts.scheme not in SCHEMES or not dsn.lower().startswith(f"{parts.scheme}://"):
        raise _refuse("must start with 'postgresql://' or 'postgres://'")
    if parts.query:
        try:
            params = parse_qs(parts.query, strict_parsing=True)
        except ValueError:
            raise _refuse("has query parameters that are not 'key=value' pairs") from None
        for port in params.get("port", []):
            for one in port.split(","):
                _check_port(one)
    netloc = parts.netloc
    hostlist = netloc.partition("@")[2] if "@" in netloc else netloc
    if hostlist:
        for spec in hostlist.split(","):
            _check_host(spec)
