"""The SSRF guard against IANA's special-purpose registries (IPv4 and IPv6), range by range.

Each row: a range, an address inside it that must be refused (and the reason named), and a
neighbour just outside it with what the guard must say about that one (None = accepted).
Every row goes through the real GuardedResolver (a name resolving to the address) and
through the literal check (the address written in a URL).
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from webhookkit.exceptions import BlockedAddressError
from webhookkit.transports._ssrf import AddressPolicy, GuardedResolver

OUTSIDE = "outside 2000::/3"

# (range, refused address, words in its reason, neighbour, words in the neighbour's reason)
TABLE: list[tuple[str, str, str, str, str | None]] = [
    # IPv4 special-purpose registry, multicast and broadcast
    ("0.0.0.0/8", "0.1.2.3", "this network", "1.0.0.1", None),
    ("0.0.0.0/32", "0.0.0.0", "unspecified", "0.0.0.1", "this network"),
    ("10.0.0.0/8", "10.255.255.255", "private", "11.0.0.1", None),
    ("100.64.0.0/10", "100.127.255.254", "shared address space", "100.128.0.1", None),
    ("100.64.0.0/10", "100.64.0.1", "shared address space", "100.63.255.255", None),
    ("127.0.0.0/8", "127.255.0.1", "loopback", "128.0.0.1", None),
    ("169.254.0.0/16", "169.254.169.254", "link-local", "169.255.0.1", None),
    ("172.16.0.0/12", "172.31.255.1", "private", "172.32.0.1", None),
    ("172.16.0.0/12", "172.16.0.1", "private", "172.15.255.255", None),
    ("192.0.0.0/24", "192.0.0.8", "IPv4 dummy", "192.0.1.1", None),
    ("192.0.0.0/24", "192.0.0.9", "IETF protocol assignment", "192.0.1.0", None),
    ("192.0.0.0/29", "192.0.0.1", "DS-Lite", "192.0.0.9", "IETF protocol assignment"),
    ("192.0.0.170/31", "192.0.0.171", "NAT64/DNS64", "192.0.0.172", "IETF protocol"),
    ("192.0.2.0/24", "192.0.2.255", "TEST-NET-1", "192.0.3.1", None),
    ("192.31.196.0/24", "192.31.196.1", "AS112", "192.31.197.1", None),
    ("192.52.193.0/24", "192.52.193.1", "AMT", "192.52.194.1", None),
    ("192.88.99.0/24", "192.88.99.1", "6to4 relay", "192.88.100.1", None),
    ("192.168.0.0/16", "192.168.255.255", "private", "192.169.0.1", None),
    ("192.175.48.0/24", "192.175.48.1", "AS112", "192.175.49.1", None),
    ("198.18.0.0/15", "198.19.255.255", "benchmarking", "198.20.0.1", None),
    ("198.18.0.0/15", "198.18.0.1", "benchmarking", "198.17.255.255", None),
    ("198.51.100.0/24", "198.51.100.7", "TEST-NET-2", "198.51.101.1", None),
    ("203.0.113.0/24", "203.0.113.99", "TEST-NET-3", "203.0.114.1", None),
    ("224.0.0.0/4", "239.255.255.255", "multicast", "223.255.255.254", None),
    ("224.0.0.0/4", "224.0.0.1", "multicast", "223.255.255.255", None),
    ("240.0.0.0/4", "250.1.2.3", "reserved", "223.1.2.3", None),
    ("255.255.255.255/32", "255.255.255.255", "broadcast", "255.255.255.254", "reserved"),
    # IPv6 special-purpose registry
    ("::/128", "::", "unspecified", "2001:4860:4860::8888", None),
    ("::1/128", "::1", "loopback", "::808:808", None),  # neighbour: compatible form of 8.8.8.8
    ("::ffff:0:0/96", "::ffff:10.0.0.1", "IPv4-mapped private", "::ffff:8.8.8.8", None),
    ("::ffff:0:0/96", "::ffff:127.0.0.1", "IPv4-mapped loopback", "::ffff:1.1.1.1", None),
    ("::ffff:0:0/96", "::ffff:192.0.0.8", "IPv4-mapped IPv4 dummy", "::ffff:9.9.9.9", None),
    ("::/96", "::127.0.0.1", "IPv4-compatible loopback", "::8.8.8.8", None),
    ("::/96", "::169.254.169.254", "IPv4-compatible link-local", "::1.1.1.1", None),
    ("64:ff9b::/96", "64:ff9b::192.168.0.1", "NAT64 private", "64:ff9b::8.8.8.8", None),
    ("64:ff9b::/96", "64:ff9b::a9fe:a9fe", "NAT64 link-local", "64:ff9b::101:101", None),
    ("64:ff9b:1::/48", "64:ff9b:1::808:808", "local-use", "64:ff9b::808:808", None),
    ("100::/64", "100::1", "discard-only", "100:0:0:1::1", OUTSIDE),
    ("2001::/23", "2001:1ff::1", "IETF protocol assignment", "2001:200::1", None),
    ("2001::/23", "2001:3::1", "IETF protocol assignment", "2001:200::2", None),
    # Teredo: refused whatever the client; the reason names a refused client address
    (
        "2001::/32",
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",
        "private client 10.0.0.1",
        "2001:1::1",
        "IETF protocol assignment",
    ),
    ("2001::/32", "2001:0:4136:e378:8000:63bf:f7f7:f7f7", "Teredo", "2001:200::3", None),
    ("2001:2::/48", "2001:2::1", "benchmarking", "2001:2:1::1", "IETF protocol assignment"),
    ("2001:10::/28", "2001:10::1", "ORCHID", "2001:20::1", "IETF protocol assignment"),
    ("2001:db8::/32", "2001:db8::1", "documentation", "2001:db9::1", None),
    ("2002::/16", "2002:c0a8:101::", "6to4 private address 192.168.1.1", "2002:808:808::", None),
    ("2002::/16", "2002:7f00:1::", "6to4 loopback", "2002:101:101::1", None),
    ("2620:4f:8000::/48", "2620:4f:8000::1", "AS112", "2620:4f:8001::1", None),
    ("3fff::/20", "3fff:fff::1", "documentation", "3fff:1000::1", None),
    ("5f00::/16", "5f00::1", "SRv6", "5f01::1", OUTSIDE),
    ("fc00::/7", "fdff::1", "unique local", "fe00::1", OUTSIDE),
    ("fc00::/7", "fc00::1", "unique local", "fbff::1", OUTSIDE),
    ("fe80::/10", "febf::1", "link-local", "fec0::1", "site-local"),
    ("fec0::/10", "feff::1", "site-local", "ff00::1", "multicast"),
    ("ff00::/8", "ff02::1", "multicast", "fe00::1", OUTSIDE),
    # the catch-all: IPv6 outside the global unicast block (the row's range is its complement)
    ("!2000::/3", "4000::1", OUTSIDE, "3fff:ffff::1", None),
    ("!2000::/3", "1fff::1", OUTSIDE, "2000::1", None),
]
IDS = [f"{network}-{address}" for network, address, *_ in TABLE]


class HostsFile(AbstractResolver):
    """A resolver answering from a table: the real resolver API, no DNS needed."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.answers[host]
        ]

    async def close(self) -> None:
        pass


async def resolve(address: str, allow: list[str] | None = None) -> list[ResolveResult]:
    """``address`` as the answer for a name, through the real guarded resolver."""
    resolver = GuardedResolver(
        AddressPolicy.build(allow or ()), HostsFile({"hook.example": [address]})
    )
    try:
        return await resolver.resolve("hook.example", 443)
    finally:
        await resolver.close()


def literal(address: str) -> str:
    return f"[{address}]" if ":" in address else address


# Forms judged by the IPv4 address inside: the neighbour is the same form carrying a public one.
EMBEDDING = {"::ffff:0:0/96", "::/96", "64:ff9b::/96", "2002::/16"}


def test_the_table_is_consistent() -> None:
    for network, address, _, neighbour, _ in TABLE:
        inside = not network.startswith("!")
        net = ipaddress.ip_network(network.lstrip("!"))
        assert (ipaddress.ip_address(address) in net) is inside, (network, address)
        if network not in EMBEDDING:
            assert (ipaddress.ip_address(neighbour) in net) is not inside, (network, neighbour)


@pytest.mark.parametrize(("network", "address", "reason", "neighbour", "other"), TABLE, ids=IDS)
async def test_range_is_refused_and_its_neighbour_judged(
    network: str, address: str, reason: str, neighbour: str, other: str | None
) -> None:
    with pytest.raises(BlockedAddressError) as caught:
        await resolve(address)
    [refused] = caught.value.addresses
    assert refused.startswith(address) and reason in refused
    with pytest.raises(BlockedAddressError, match="SSRF guard"):
        AddressPolicy.build().check_literal(literal(address))

    if other is None:
        [accepted] = await resolve(neighbour)
        assert accepted["host"] == neighbour
        AddressPolicy.build().check_literal(literal(neighbour))  # does not raise
    else:
        with pytest.raises(BlockedAddressError) as near:
            await resolve(neighbour)
        assert other in near.value.addresses[0]


@pytest.mark.parametrize(("network", "address", "reason", "neighbour", "other"), TABLE, ids=IDS)
async def test_allow_addresses_opens_exactly_the_listed_network(
    network: str, address: str, reason: str, neighbour: str, other: str | None
) -> None:
    ip = ipaddress.ip_address(address)
    exact = f"{ip}/{ip.max_prefixlen}"
    [accepted] = await resolve(address, allow=[exact])
    assert accepted["host"] == address
    sibling = ip + 1 if ip != ipaddress.ip_address("255.255.255.255") else ip - 1
    if AddressPolicy.build().refusal(sibling) is not None:
        with pytest.raises(BlockedAddressError):
            await resolve(str(sibling), allow=[exact])


def test_scoped_link_local_literals_are_refused() -> None:
    with pytest.raises(BlockedAddressError, match="link-local"):
        AddressPolicy.build().check_literal("[fe80::1%eth0]")


async def test_a_name_with_one_public_and_one_special_address_keeps_only_the_public() -> None:
    resolver = GuardedResolver(
        AddressPolicy.build(), HostsFile({"mixed.example": ["192.0.0.8", "fec0::1", "8.8.8.8"]})
    )
    try:
        results = await resolver.resolve("mixed.example", 443)
    finally:
        await resolver.close()
    assert [r["host"] for r in results] == ["8.8.8.8"]
