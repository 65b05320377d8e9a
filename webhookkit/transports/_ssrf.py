"""The SSRF guard: which addresses a webhook may reach, and a resolver that enforces it.

A webhook URL is written by an app, so it must not reach the host's own network: loopback,
private, link-local, multicast, reserved and unspecified addresses are refused, in IPv4 and
IPv6 (IPv4-mapped, 6to4, Teredo and NAT64 forms are judged by the IPv4 address inside).

The check sits in the connection path, not in front of it. :class:`GuardedResolver` is the
aiohttp resolver: it checks every address a name resolves to and hands aiohttp only the
accepted ones, so the socket connects to an address that was checked (no window for a DNS
answer that changes between the check and the connection). Address literals in URLs never
reach a resolver in aiohttp, so :meth:`AddressPolicy.check_literal` judges them before sending.
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

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
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
    """True where aiohttp would connect to ``host`` without resolving it (it has a ':' or is
    all digits and dots): such hosts never pass through the resolver."""
    return ":" in host or host.replace(".", "").isdigit()


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and routes to, if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is refused ("loopback", "private"...), or None if it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            reason = refusal_reason(inner)
            kind = "IPv4-mapped" if ip.ipv4_mapped is not None else "IPv4-embedding"
            return f"{kind} {reason} address {inner}" if reason else None
    # Order matters for the message only: the most specific reason first.
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "not globally routable"
    return None


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
        """Refuse a URL host that is an address literal aiohttp would connect to unresolved.

        Names are left to :class:`GuardedResolver`. A host aiohttp treats as a literal but
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
    aiohttp connects to the addresses returned here, so what was checked is what is used.
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
