"""resolve_and_check against a real DNS server on loopback. Nothing here opens a connection
other than DNS queries to 127.0.0.1: the addresses in the zone are data, never dialled."""

from __future__ import annotations

import pytest

from relaygate.errors import DeliveryDeferred
from relaygate.events.ssrf import UnsafeTarget, resolve_and_check
from relaygate.testing.dns import DNSServer

ZONE = {
    "private.test": {"A": ["10.0.0.1"]},
    "loop.test": {"A": ["127.0.0.1"]},
    "meta.test": {"A": ["169.254.169.254"]},
    "mixed.test": {"A": ["8.8.8.8", "10.0.0.1"]},
    "v6loop.test": {"A": ["8.8.8.8"], "AAAA": ["::1"]},
    "mapped.test": {"AAAA": ["::ffff:a00:1"]},
    "alias.test": {"CNAME": "private.test"},
    "good.test": {"A": ["8.8.8.8", "1.1.1.1"], "AAAA": ["2606:4700:4700::1111"]},
    "empty.test": {"TXT": ["no addresses"]},
    "broken.test": "SERVFAIL",
    "half.test": {"A": ["8.8.8.8"], "AAAA": "SERVFAIL"},
}


@pytest.fixture
def dns() -> DNSServer:
    with DNSServer(ZONE) as server:
        yield server


@pytest.mark.parametrize(
    ("host", "fragment"),
    [
        ("private.test", "10.0.0.1: private"),
        ("loop.test", "127.0.0.1: loopback"),
        ("meta.test", "metadata"),
        ("mixed.test", "10.0.0.1"),
        ("v6loop.test", "::1: loopback"),
        ("mapped.test", "embeds 10.0.0.1"),
        ("alias.test", "10.0.0.1"),
    ],
)
async def test_any_forbidden_address_refuses_the_name(
    dns: DNSServer, host: str, fragment: str
) -> None:
    with pytest.raises(UnsafeTarget) as info:
        await resolve_and_check(host, dns.async_resolver(), allow_private=False)
    assert fragment in info.value.reason


async def test_allow_private_admits_private_but_never_metadata(dns: DNSServer) -> None:
    res = dns.async_resolver()
    assert await resolve_and_check("private.test", res, allow_private=True) == ["10.0.0.1"]
    assert await resolve_and_check("loop.test", res, allow_private=True) == ["127.0.0.1"]
    with pytest.raises(UnsafeTarget, match="metadata"):
        await resolve_and_check("meta.test", res, allow_private=True)


async def test_good_name_returns_v4_then_v6_and_asks_only_once_each(dns: DNSServer) -> None:
    got = await resolve_and_check("good.test", dns.async_resolver(), allow_private=False)
    assert got == ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"]
    assert sorted(q for q in dns.queries if q[0] == "good.test") == [
        ("good.test", "A"),
        ("good.test", "AAAA"),
    ]


async def test_ip_literal_needs_no_dns(dns: DNSServer) -> None:
    assert await resolve_and_check("8.8.8.8", dns.async_resolver(), allow_private=False) == [
        "8.8.8.8"
    ]
    with pytest.raises(UnsafeTarget):
        await resolve_and_check("127.0.0.1", dns.async_resolver(), allow_private=False)
    assert dns.queries == []


@pytest.mark.parametrize(
    ("host", "fragment"),
    [
        ("nowhere.test", "NXDOMAIN"),
        ("empty.test", "no A or AAAA"),
        ("broken.test", "no server"),
        ("half.test", "AAAA"),
    ],
)
async def test_dns_trouble_is_transient(dns: DNSServer, host: str, fragment: str) -> None:
    with pytest.raises(DeliveryDeferred, match=fragment):
        await resolve_and_check(host, dns.async_resolver(timeout=1.0), allow_private=False)
