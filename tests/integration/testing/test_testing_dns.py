"""relaygate.testing.dns: the loopback DNS server users' tests get, asked by a real resolver."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.resolver
import pytest

from relaygate.testing.dns import DNSServer

ZONE = {
    "example.com": {
        "MX": [(10, "mx1.example.com"), (20, "mx2.example.com.")],
        "TXT": ["v=spf1 -all", ["part one ", "part two"]],
    },
    "mx1.example.com": {"A": ["127.0.0.1"], "AAAA": ["::1"]},
    "alias.example.com": {"CNAME": "example.com"},
    "_submission._tcp.example.com": {"SRV": ["10 5 587 mx1.example.com."]},
    "big.example.com": {"TXT": ["x" * 200, "y" * 200, "z" * 200]},
    "broken.example": "SERVFAIL",
    "slow.example": {"MX": "TIMEOUT"},
    "bad.example": {"A": ["not an address"]},
}


@pytest.fixture
def server() -> Iterator[DNSServer]:
    with DNSServer(ZONE) as srv:
        yield srv


def test_records_of_each_kind(server: DNSServer) -> None:
    res = server.resolver()
    mx = sorted((r.preference, r.exchange.to_text()) for r in res.resolve("example.com", "MX"))
    assert mx == [(10, "mx1.example.com."), (20, "mx2.example.com.")]
    txt = sorted(b"".join(r.strings) for r in res.resolve("example.com", "TXT"))
    assert txt == [b"part one part two", b"v=spf1 -all"]
    assert [r.address for r in res.resolve("mx1.example.com", "A")] == ["127.0.0.1"]
    assert [r.address for r in res.resolve("MX1.Example.COM.", "AAAA")] == ["::1"]
    srv = res.resolve("_submission._tcp.example.com", "SRV")
    assert [(r.priority, r.port, r.target.to_text()) for r in srv] == [
        (10, 587, "mx1.example.com.")
    ]
    assert ("mx1.example.com", "AAAA") in server.queries


def test_cname_is_followed(server: DNSServer) -> None:
    answer = server.resolver().resolve("alias.example.com", "MX")
    assert answer.canonical_name.to_text() == "example.com."
    assert len(answer) == 2


def test_missing_names_and_types(server: DNSServer) -> None:
    res = server.resolver()
    with pytest.raises(dns.resolver.NXDOMAIN):
        res.resolve("nowhere.example", "A")
    with pytest.raises(dns.resolver.NoAnswer):
        res.resolve("example.com", "A")


def test_servfail_timeout_and_bad_values(server: DNSServer) -> None:
    res = server.resolver(timeout=0.5)
    for name, rtype in (("broken.example", "A"), ("bad.example", "A")):
        query = dns.message.make_query(name, rtype)
        reply = dns.query.udp(query, server.host, port=server.port, timeout=2)
        assert reply.rcode() == dns.rcode.SERVFAIL, name
    assert len(server.errors) == 1  # the value that is not an address
    with pytest.raises(dns.resolver.LifetimeTimeout):
        res.resolve("slow.example", "MX")


def test_large_answers_are_truncated_on_udp_and_whole_over_tcp(server: DNSServer) -> None:
    query = dns.message.make_query("big.example.com", "TXT")
    udp = dns.query.udp(query, server.host, port=server.port, timeout=2)
    assert udp.flags & dns.flags.TC and not udp.answer
    tcp = dns.query.tcp(query, server.host, port=server.port, timeout=2)
    assert len(tcp.answer[0]) == 3
    assert len(server.resolver().resolve("big.example.com", "TXT")) == 3  # falls back to TCP


def test_garbage_is_dropped_and_serving_goes_on(server: DNSServer) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        sock.sendto(b"\x00\x01garbage", (server.host, server.port))
        with pytest.raises(TimeoutError):
            sock.recv(512)
    assert server.resolver().resolve("mx1.example.com", "A")


def test_zone_changes_while_running(server: DNSServer) -> None:
    server.set("new.example", "A", ["127.0.0.2"])
    assert [r.address for r in server.resolver().resolve("new.example", "A")] == ["127.0.0.2"]
    server.remove("new.example")
    with pytest.raises(dns.resolver.NXDOMAIN):
        server.resolver().resolve("new.example", "A")


def test_needs_nothing_beyond_relaygate_runtime_dependencies() -> None:
    """A plain install has no dnslib (it was a test extra): the fixture must not need it."""
    code = (
        "import sys; sys.modules['dnslib'] = None\n"
        "from relaygate.testing.dns import DNSServer\n"
        "with DNSServer({'a.test': {'A': '127.0.0.1'}}) as s:\n"
        "    print(s.resolver().resolve('a.test', 'A')[0].address)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "127.0.0.1", out.stderr
