"""Per-peer caps on inbound reports: the key a rate counts against, SIZE=, the sliding window,
bounded memory (the SMTP side is tested in tests/integration/bounces)."""

from __future__ import annotations

from relaygate.clock import FakeClock
from relaygate.gateway.reportlimits import ReportLimits, declared_size, peer_key


def test_peer_key_is_the_ipv4_address_or_the_ipv6_64() -> None:
    assert peer_key("192.0.2.7") == "192.0.2.7"
    assert (
        peer_key("2001:db8:1:2:aaaa::1") == peer_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    )
    assert peer_key("2001:db8:1:3::1") != peer_key("2001:db8:1:2::1")
    assert peer_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert peer_key("fe80::1%eth0") == "fe80::/64"
    assert peer_key("not an address") == "not an address"


def test_declared_size() -> None:
    assert declared_size(["BODY=8BITMIME", "size=1234"]) == 1234
    assert declared_size(["SIZE=", "SIZE=-1", "SIZE=1e9"]) is None
    assert declared_size([]) is None


def test_sliding_window_exemptions_and_bounded_memory() -> None:
    clock = FakeClock()
    limits = ReportLimits(
        clock, max_bytes=100, per_minute=2, exempt=lambda ip: ip == "10.0.0.1", max_peers=3
    )
    assert limits.too_big(101) is not None and limits.too_big(100) is None
    assert limits.too_big(None) is None
    assert limits.start("192.0.2.1") is None
    clock.advance(30)
    assert limits.start("192.0.2.1") is None
    assert limits.start("192.0.2.1") is not None  # a refused one does not count
    clock.advance(30)  # the first has left the window
    assert limits.start("192.0.2.1") is None
    assert all(limits.start("10.0.0.1") is None for _ in range(10))
    for i in range(10):
        limits.start(f"198.51.100.{i}")
    assert len(limits._seen) <= 3
