"""The SSRF guard: internal addresses are refused before any connection, in every spelling."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from conftest import Receiver

from transports.helpers import outbound
from webhookkit import (
    BlockedAddressError,
    ConfigurationError,
    ConnectError,
    DeliveryStatus,
    WebhookKit,
)
from webhookkit.testing import FakeClock
from webhookkit.transports import AddressPolicy, GuardedResolver, HTTPTransport
from webhookkit.transports._ssrf import parse_ip_literal

# (host as written in the URL, what it is). Hosts on 127.0.0.1 point at a live receiver's
# port, so a guard that let them through would make the receiver record a request.
REFUSED_HOSTS = [
    ("127.0.0.1", "IPv4 loopback"),
    ("127.8.9.10", "IPv4 loopback, not .1"),
    ("10.1.2.3", "RFC 1918 private"),
    ("172.16.0.1", "RFC 1918 private"),
    ("192.168.1.1", "RFC 1918 private"),
    ("169.254.169.254", "link-local (cloud metadata)"),
    ("100.64.0.1", "shared address space (CGNAT)"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("192.0.2.10", "documentation (TEST-NET-1)"),
    ("[::1]", "IPv6 loopback"),
    ("[::]", "IPv6 unspecified"),
    ("[fe80::1]", "IPv6 link-local"),
    ("[fc00::1]", "IPv6 unique local"),
    ("[fd12:3456::1]", "IPv6 unique local"),
    ("[ff02::1]", "IPv6 multicast"),
    ("[::ffff:127.0.0.1]", "IPv4-mapped loopback"),
    ("[::ffff:a00:1]", "IPv4-mapped private, hex spelling"),
    ("[::ffff:169.254.169.254]", "IPv4-mapped link-local"),
    ("[2002:7f00:1::]", "6to4 carrying 127.0.0.1"),
    ("[64:ff9b::a00:1]", "NAT64 carrying 10.0.0.1"),
    ("2130706433", "decimal-encoded 127.0.0.1"),
    ("0x7f000001", "hex-encoded 127.0.0.1"),
    ("017700000001", "octal-encoded 127.0.0.1"),
    ("0x7f.0.0.1", "mixed hex octet"),
    ("127.1", "short form of 127.0.0.1"),
    ("localhost", "a name resolving to 127.0.0.1"),
]


@pytest.mark.parametrize(("host", "what"), REFUSED_HOSTS, ids=[h for h, _ in REFUSED_HOSTS])
async def test_internal_targets_are_refused_without_connecting(
    receiver: Receiver, host: str, what: str
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    transport = HTTPTransport()  # the default: guard on, nothing allowed
    try:
        with pytest.raises(BlockedAddressError) as caught:
            await transport.send(outbound(f"http://{host}:{port}/hook"))
    finally:
        await transport.aclose()
    error = caught.value
    assert error.retryable is False
    written = host.strip("[]")  # yarl writes IPv6 literals in their canonical form
    assert error.host == written or parse_ip_literal(error.host) == parse_ip_literal(written)
    assert "refused" in str(error) and "allow_addresses" in str(error)
    assert receiver.received == [], what


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "::ffff:8.8.8.8"],
)
def test_public_addresses_are_accepted(address: str) -> None:
    assert AddressPolicy.build().refusal(ipaddress.ip_address(address)) is None


def test_refusal_reasons_name_the_kind_of_address() -> None:
    policy = AddressPolicy.build()
    reason = {a: policy.refusal(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::ffff:10.0.0.1")}
    assert reason["127.0.0.1"] == "loopback"
    assert reason["::ffff:10.0.0.1"] == "IPv4-mapped private address 10.0.0.1"


def test_legacy_ipv4_spellings_are_parsed_as_addresses() -> None:
    loopback = ipaddress.IPv4Address("127.0.0.1")
    for spelling in ("2130706433", "0x7f000001", "017700000001", "127.1", "0x7f.1", "127.0.0.1."):
        assert parse_ip_literal(spelling) == loopback, spelling
    assert parse_ip_literal("example.com") is None
    assert parse_ip_literal("cafe.example") is None


def test_allow_list_accepts_listed_networks_only() -> None:
    policy = AddressPolicy.build(["127.0.0.1/32", "10.0.0.0/8"])
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("::ffff:127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("10.200.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("127.0.0.2")) == "loopback"
    assert policy.refusal(ipaddress.ip_address("::1")) == "loopback"
    assert AddressPolicy.build(enabled=False).refusal(ipaddress.ip_address("127.0.0.1")) is None


def test_bad_allow_list_entries_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError) as caught:
        AddressPolicy.build(["localhost"])
    assert caught.value.field == "allow_addresses"
    with pytest.raises(ConfigurationError):
        AddressPolicy.build("127.0.0.1/32")
    with pytest.raises(ConfigurationError):
        WebhookKit(transports=[HTTPTransport(allow_addresses=["300.1.2.3"])])


async def test_allow_list_lets_a_name_resolving_to_loopback_through(receiver: Receiver) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    transport = HTTPTransport(allow_addresses=["127.0.0.1/32"])
    try:
        result = await transport.send(outbound(f"http://localhost:{port}/hook"))
    finally:
        await transport.aclose()
    assert result.ok
    assert receiver.received[0].header("host") == f"localhost:{port}"


class HostsFile(AbstractResolver):
    """A real resolver answering from a table, like /etc/hosts; ``answers`` may change."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append(host)
        if host not in self.answers:
            raise OSError(f"{host}: not in the table")
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


async def test_connection_goes_to_the_checked_address_only(receiver: Receiver) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    # The name resolves to a refused address and an allowed one: only the allowed one is
    # handed to aiohttp, and aiohttp connects to it without a lookup of its own (the name
    # exists nowhere else, so any second lookup would fail).
    hosts = HostsFile({"hooks.internal.test": ["10.9.9.9", "127.0.0.1"]})
    transport = HTTPTransport(allow_addresses=["127.0.0.1/32"], resolver=hosts)
    try:
        result = await transport.send(outbound(f"http://hooks.internal.test:{port}/hook"))
    finally:
        await transport.aclose()
    assert result.ok
    assert hosts.lookups == ["hooks.internal.test"]
    assert receiver.received[0].header("host") == f"hooks.internal.test:{port}"


async def test_every_resolution_is_checked_so_rebinding_is_refused() -> None:
    hosts = HostsFile({"rebind.test": ["127.0.0.1"]})
    resolver = GuardedResolver(AddressPolicy.build(["127.0.0.1/32"]), hosts)
    [first] = await resolver.resolve("rebind.test", 443)
    assert first["host"] == "127.0.0.1"
    hosts.answers["rebind.test"] = ["169.254.169.254"]  # the attacker's DNS changes its answer
    with pytest.raises(BlockedAddressError) as caught:
        await resolver.resolve("rebind.test", 443)
    assert caught.value.addresses == ("169.254.169.254 (link-local)",)
    await resolver.close()


async def test_refused_target_fails_the_delivery_without_retry(
    clock: FakeClock, receiver: Receiver
) -> None:
    async with WebhookKit(domain="shop.example.com", clock=clock) as kit:  # no allow-list
        app = await kit.apps.create("erp", permissions=["MANAGE_ORDERS"])
        await kit.webhooks.create(app, target_url=receiver.url + "/hook", events=["ORDER_CREATED"])
        [delivery_id] = await kit.trigger("ORDER_CREATED", payload={"id": 1})
        await kit.wait_idle()
        await clock.advance(3600)
        await kit.wait_idle()
        delivery = await kit.get_delivery(delivery_id)
        [attempt] = await kit.list_attempts(delivery_id)
    assert delivery is not None and delivery.status is DeliveryStatus.FAILED
    assert attempt.error_kind == "BlockedAddressError"
    assert "loopback" in (attempt.error or "")
    assert receiver.received == []


async def test_guard_can_be_turned_off(receiver: Receiver) -> None:
    transport = HTTPTransport(ssrf_guard=False)
    try:
        assert (await transport.send(outbound(receiver.url + "/hook"))).ok
    finally:
        await transport.aclose()
    assert len(receiver.received) == 1


async def test_unresolvable_name_is_a_retryable_connect_error() -> None:
    transport = HTTPTransport(resolver=HostsFile({}))
    try:
        with pytest.raises(ConnectError) as caught:
            await transport.send(outbound("http://nowhere.invalid/hook"))
    finally:
        await transport.aclose()
    assert caught.value.retryable is True
    assert not isinstance(caught.value, BlockedAddressError)
