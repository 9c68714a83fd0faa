"""The dashboard's client address: X-Forwarded-For only from a trusted proxy, read from the
right; CIDR membership that never raises."""

from __future__ import annotations

import pytest

from relaygate.dashboard.clientaddr import Networks, client_address

PROXIES = Networks(["127.0.0.1", "10.0.0.0/8"])


@pytest.mark.parametrize(
    ("peer", "header", "client"),
    [
        ("192.0.2.1", "198.51.100.9", "192.0.2.1"),  # not a proxy: its header is ignored
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1", "198.51.100.9", "198.51.100.9"),
        ("127.0.0.1", "6.6.6.6, 198.51.100.9", "198.51.100.9"),  # the left is the client's text
        ("127.0.0.1", "198.51.100.9, 10.1.1.1", "198.51.100.9"),  # proxies chained
        ("127.0.0.1", "10.1.1.1, 10.2.2.2", "10.1.1.1"),
        ("127.0.0.1", "garbage", "127.0.0.1"),
        ("127.0.0.1", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_address(peer: str, header: str | None, client: str) -> None:
    assert client_address(peer, header, PROXIES) == client


def test_membership() -> None:
    assert "10.9.9.9" in PROXIES and "::ffff:127.0.0.1" in PROXIES
    assert "192.0.2.1" not in PROXIES and "testclient" not in PROXIES and None not in PROXIES
    assert not Networks([]) and bool(PROXIES)
