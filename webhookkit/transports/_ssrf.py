"""The SSRF guard: which addresses a webhook may reach, and a resolver that enforces it.

A webhook URL is written by an app, so it must not reach the host's own network: every block
of IANA's special-purpose registries (loopback, private, link-local, multicast, reserved,
documentation...) is refused, in IPv4 and IPv6, from the guard's own table; IPv6 outside
2000::/3 is refused too. IPv4-mapped, IPv4-compatible, NAT64 and 6to4 forms are judged by the
IPv4 address inside.

The check sits in the connection path, not in front of it. :class:`GuardedResolver` is the
HTTP transport's resolver (an aiohttp ``AbstractResolver``): it checks every address a name
resolves to and hands the transport's HTTP/1.1 client only the accepted ones, so the socket
connects to an address that was checked (no window for a DNS answer that changes between the
check and the connection). Address literals in URLs never reach a resolver, so
:meth:`AddressPolicy.check_literal` judges them before sending.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from ..exceptions import BlockedAddressError, ConfigurationError

__all__ = ["AddressPolicy", "GuardedResolver", "IPAddress", "IPNetwork", "parse_ip_literal"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Legacy IPv4 spellings that socket.inet_aton accepts: 2130706433, 0x7f.1, 017700000001, 127.1.
_LEGACY_V4 = re.compile(r"[0-9a-fA-FxX.]+")


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` spells, in any form a socket would accept, or None for a name.

    Besides the canonical forms this accepts the legacy IPv4 spellings (decimal, octal, hex,
    fewer than four parts) because the C resolver maps them onto addresses too.
    """
    candidate = host.strip("[]")
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        pass
    if _LEGACY_V4.fullmatch(candidate) and any(c.isdigit() for c in candidate):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(candidate.rstrip(".")))
        except OSError:
            return None
    return None


def looks_like_ip_literal(host: str) -> bool:
    """True where an HTTP client may connect to ``host`` without resolving it (it has a ':'
    or is all digits and dots): such hosts may never pass through the resolver."""
    return ":" in host or host.replace(".", "").isdigit()


def _v4(network: str, reason: str) -> tuple[ipaddress.IPv4Network, str]:
    return ipaddress.IPv4Network(network), reason


def _v6(network: str, reason: str) -> tuple[ipaddress.IPv6Network, str]:
    return ipaddress.IPv6Network(network), reason


# The guard's own tables, from IANA's IPv4 and IPv6 Special-Purpose Address Registries and
# the multicast blocks (not the interpreter's ``ipaddress`` tables, which differ between
# Python versions: 3.11 misses 192.0.0.8 and fec0::/10). Every entry is refused, even the few
# the registries mark globally reachable (anycast and AS112 blocks): no webhook lives there.
# Checked most specific first, so the reason names the narrowest block.
_DENY_V4 = sorted(
    [
        _v4("0.0.0.0/32", "unspecified"),
        _v4("0.0.0.0/8", "'this network'"),
        _v4("10.0.0.0/8", "private"),
        _v4("100.64.0.0/10", "shared address space (CGNAT)"),
        _v4("127.0.0.0/8", "loopback"),
        _v4("169.254.0.0/16", "link-local"),
        _v4("172.16.0.0/12", "private"),
        _v4("192.0.0.0/24", "IETF protocol assignment"),
        _v4("192.0.0.0/29", "DS-Lite"),
        _v4("192.0.0.8/32", "IPv4 dummy"),
        _v4("192.0.0.170/31", "NAT64/DNS64 discovery"),
        _v4("192.0.2.0/24", "documentation (TEST-NET-1)"),
        _v4("192.31.196.0/24", "AS112"),
        _v4("192.52.193.0/24", "AMT"),
        _v4("192.88.99.0/24", "6to4 relay anycast"),
        _v4("192.168.0.0/16", "private"),
        _v4("192.175.48.0/24", "AS112 direct delegation"),
        _v4("198.18.0.0/15", "benchmarking"),
        _v4("198.51.100.0/24", "documentation (TEST-NET-2)"),
        _v4("203.0.113.0/24", "documentation (TEST-NET-3)"),
        _v4("224.0.0.0/4", "multicast"),
        _v4("240.0.0.0/4", "reserved"),
        _v4("255.255.255.255/32", "limited broadcast"),
    ],
    key=lambda entry: -entry[0].prefixlen,
)
_DENY_V6 = sorted(
    [
        _v6("::/128", "unspecified"),
        _v6("::1/128", "loopback"),
        _v6("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
        _v6("100::/64", "discard-only"),
        _v6("2001::/23", "IETF protocol assignment"),
        _v6("2001::/32", "Teredo"),
        _v6("2001:2::/48", "benchmarking"),
        _v6("2001:db8::/32", "documentation"),
        _v6("2001:10::/28", "ORCHID"),
        _v6("2620:4f:8000::/48", "AS112 direct delegation"),
        _v6("3fff::/20", "documentation"),
        _v6("5f00::/16", "SRv6 SID"),
        _v6("fc00::/7", "unique local"),
        _v6("fe80::/10", "link-local"),
        _v6("fec0::/10", "site-local"),
        _v6("ff00::/8", "multicast"),
    ],
    key=lambda entry: -entry[0].prefixlen,
)
#: Outside this block IPv6 has no global unicast addresses (IANA IPv6 Address Space).
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_TEREDO = ipaddress.IPv6Network("2001::/32")


def _low_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address carries and routes to (with the form's name)."""
    if ip in _MAPPED:
        return "IPv4-mapped", _low_v4(ip)
    if ip in _NAT64:
        return "NAT64", _low_v4(ip)
    if ip in _COMPATIBLE and int(ip) > 1:  # :: and ::1 are themselves
        return "IPv4-compatible", _low_v4(ip)
    if ip in _SIX_TO_FOUR:
        return "6to4", ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF)
    return None


def _listed(ip: IPAddress) -> str | None:
    table: list[tuple[ipaddress.IPv4Network, str]] | list[tuple[ipaddress.IPv6Network, str]]
    table = _DENY_V4 if isinstance(ip, ipaddress.IPv4Address) else _DENY_V6
    for network, reason in table:
        if ip in network:
            return reason
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is refused ("loopback", "private"...), or None if it is a public address.

    IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by the
    IPv4 address inside; a Teredo address is refused, naming its client address.
    """
    if isinstance(ip, ipaddress.IPv4Address):
        return _listed(ip)
    if ip.scope_id:
        ip = ipaddress.IPv6Address(int(ip))  # fe80::1%eth0 is judged as fe80::1
    embedded = _embedded_v4(ip)
    if embedded is not None:
        kind, inner = embedded
        reason = _listed(inner)
        return f"{kind} {reason} address {inner}" if reason else None
    reason = _listed(ip)
    if reason == "Teredo":
        client = ipaddress.IPv4Address(~int(ip) & 0xFFFFFFFF)
        inner_reason = _listed(client)
        return f"Teredo ({inner_reason} client {client})" if inner_reason else "Teredo"
    if reason is None and ip not in _GLOBAL_UNICAST_V6:
        return "not globally routable (outside 2000::/3)"
    return reason


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which addresses may be connected to: public ones, plus the ``allow`` networks.

    ``enabled=False`` turns the guard off (every address is accepted).
    """

    allow: tuple[IPNetwork, ...] = ()
    enabled: bool = True

    @classmethod
    def build(
        cls, allow: Iterable[str | IPNetwork | IPAddress] = (), *, enabled: bool = True
    ) -> AddressPolicy:
        """A policy from CIDR strings (``"127.0.0.1/32"``, ``"10.0.0.0/8"``, ``"::1"``)."""
        if isinstance(allow, str):
            raise ConfigurationError(
                "allow_addresses: expected a list of networks, got a single string",
                field="allow_addresses",
            )
        networks: list[IPNetwork] = []
        for entry in allow:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(
                    f"allow_addresses: {entry!r} is not an IP network such as "
                    f"'127.0.0.1/32' ({exc})",
                    field="allow_addresses",
                ) from None
        return cls(allow=tuple(networks), enabled=enabled)

    def refusal(self, ip: IPAddress) -> str | None:
        """Why ``ip`` is refused under this policy, or None if it may be connected to."""
        if not self.enabled:
            return None
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)  # an allowed 127.0.0.1 also allows ::ffff:127.0.0.1
        for candidate in candidates:
            if any(candidate.version == n.version and candidate in n for n in self.allow):
                return None
        return refusal_reason(ip)

    def check_literal(self, host: str) -> None:
        """Refuse a URL host that is an address literal (the HTTP transport connects to a
        literal unresolved).

        Names are left to :class:`GuardedResolver`. A host that looks like a literal but
        that is no valid address is refused too, since nothing could vouch for it.
        """
        if not self.enabled:
            return
        ip = parse_ip_literal(host)
        if ip is None:
            if looks_like_ip_literal(host):
                raise BlockedAddressError(
                    f"refused {host!r}: not a valid IP address literal", host=host
                )
            return
        reason = self.refusal(ip)
        if reason is not None:
            raise BlockedAddressError(
                f"refused {host!r}: {ip} is a {reason} address (SSRF guard; "
                "allow it with allow_addresses)",
                host=host,
                addresses=[f"{ip} ({reason})"],
            )

    def filter(self, host: str, results: list[ResolveResult]) -> list[ResolveResult]:
        """The accepted subset of ``results``; raise if no address of ``host`` is accepted."""
        if not self.enabled:
            return results
        accepted: list[ResolveResult] = []
        refused: list[str] = []
        for result in results:
            address = result["host"]
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                refused.append(f"{address} (not an IP address)")
                continue
            reason = self.refusal(ip)
            if reason is None:
                accepted.append(result)
            else:
                refused.append(f"{address} ({reason})")
        if not accepted:
            raise BlockedAddressError(
                f"refused {host!r}: it resolves only to refused addresses: "
                f"{', '.join(refused) or 'none'} (SSRF guard; allow them with allow_addresses)",
                host=host,
                addresses=refused,
            )
        return accepted


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that passes on only the addresses ``policy`` accepts.

    ``resolver`` does the lookups (default: aiohttp's threaded ``getaddrinfo`` resolver).
    The HTTP transport connects to the addresses returned here (and caches them for 10 s),
    so what was checked is what is used.
    """

    def __init__(self, policy: AddressPolicy, resolver: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._resolver is None:
            self._resolver = ThreadedResolver()
        results = await self._resolver.resolve(host, port, family)
        return self.policy.filter(host, results)

    async def close(self) -> None:
        if self._resolver is not None:
            await self._resolver.close()

    def __repr__(self) -> str:
        return f"GuardedResolver(allow={[str(n) for n in self.policy.allow]})"
