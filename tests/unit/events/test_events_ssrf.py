from __future__ import annotations

import pytest

from relaygate.events.ssrf import UnsafeTarget, is_forbidden_address, validate_url

# (address, reason fragment, allowed when allow_private=True)
FORBIDDEN = [
    ("127.0.0.1", "loopback", True),
    ("127.255.255.254", "loopback", True),
    ("::1", "loopback", True),
    ("10.0.0.1", "private", True),
    ("172.16.0.1", "private", True),
    ("172.31.255.255", "private", True),
    ("192.168.1.1", "private", True),
    ("100.64.0.1", "carrier-grade NAT", True),
    ("100.127.255.254", "carrier-grade NAT", True),
    ("169.254.1.1", "link-local", True),
    ("fe80::1", "link-local", True),
    ("fc00::1", "unique-local", True),
    ("fd12:3456::1", "unique-local", True),
    ("169.254.169.254", "metadata", False),
    ("169.254.170.2", "metadata", False),
    ("100.100.100.200", "metadata", False),
    ("fd00:ec2::254", "metadata", False),
    ("0.0.0.0", "unspecified", False),
    ("::", "unspecified", False),
    ("0.1.2.3", "this network", False),
    ("255.255.255.255", "broadcast", False),
    ("224.0.0.1", "multicast", False),
    ("239.255.255.250", "multicast", False),
    ("ff02::1", "multicast", False),
    ("240.0.0.1", "reserved", False),
    ("192.0.2.1", "documentation", False),
    ("198.51.100.7", "documentation", False),
    ("203.0.113.7", "documentation", False),
    ("2001:db8::1", "documentation", False),
    ("3fff::1", "documentation", False),
    ("198.18.0.1", "benchmarking", False),
    ("192.0.0.9", "IETF", False),
    ("192.88.99.1", "6to4 relay", False),
    ("100::1", "discard", False),
    ("fec0::1", "site-local", False),
    ("2001:10::1", "IETF", False),
    ("64:ff9b:1::a00:1", "local-use NAT64", False),
    # IPv6 forms that carry an IPv4 address
    ("::ffff:127.0.0.1", "IPv4-mapped address embeds 127.0.0.1: loopback", True),
    ("::ffff:10.0.0.1", "IPv4-mapped address embeds 10.0.0.1: private", True),
    ("::ffff:169.254.169.254", "metadata", False),
    ("::127.0.0.1", "IPv4-compatible", False),
    ("::10.0.0.1", "IPv4-compatible", False),
    ("2002:7f00:1::1", "6to4 address embeds 127.0.0.1", True),
    ("2002:a00:1::", "6to4 address embeds 10.0.0.1", True),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "Teredo", False),  # client 10.0.0.1 obfuscated
    ("64:ff9b::7f00:1", "NAT64 address embeds 127.0.0.1", True),
    ("64:ff9b::a9fe:a9fe", "metadata", False),
    ("fe80::1%eth0", "zone index", False),
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "2002:808:808::1",
    "64:ff9b::808:808",
    "172.32.0.1",
    "100.128.0.1",
    "11.0.0.1",
]


@pytest.mark.parametrize(("address", "fragment", "private_ok"), FORBIDDEN)
def test_forbidden_addresses(address: str, fragment: str, private_ok: bool) -> None:
    reason = is_forbidden_address(address)
    assert reason is not None and fragment in reason
    relaxed = is_forbidden_address(address, allow_private=True)
    assert (relaxed is None) is private_ok


@pytest.mark.parametrize("address", ALLOWED)
def test_global_addresses_allowed(address: str) -> None:
    assert is_forbidden_address(address) is None


def test_bracketed_v6_and_garbage() -> None:
    assert is_forbidden_address("[::1]") is not None
    with pytest.raises(ValueError):
        is_forbidden_address("example.com")
    with pytest.raises(ValueError):
        is_forbidden_address("127.1")


# -- URLs --------------------------------------------------------------------------------------

REJECTED_URLS = [
    ("http://hooks.example/", "https"),
    ("ftp://hooks.example/", "https"),
    ("file:///etc/passwd", "https"),
    ("https://user:pw@hooks.example/", "user information"),
    ("https://user@hooks.example/", "user information"),
    ("https://hooks.example@127.0.0.1/", "user information"),
    ("https:///path", "no host"),
    ("https://hooks.example:0/", "port"),
    ("https://hooks.example:65536/", "port"),
    ("https://hooks.example:99999999/", "port"),
    ("https://hooks.example:/", "empty port"),
    ("https://hooks.example:abc/", "port"),
    ("https://127.0.0.1/", "loopback"),
    ("https://[::1]/", "loopback"),
    ("https://[::ffff:127.0.0.1]/", "loopback"),
    ("https://[::ffff:7f00:1]/", "loopback"),
    ("https://10.0.0.1:8443/hook", "private"),
    ("https://169.254.169.254/latest/meta-data/", "metadata"),
    ("https://0.0.0.0/", "unspecified"),
    ("https://[fe80::1%25eth0]/", "zone"),
    # numeric forms some parsers read as 127.0.0.1 / 10.0.0.1
    ("https://2130706433/", "numeric host"),
    ("https://0x7f.1/", "numeric host"),
    ("https://0x7f000001/", "numeric host"),
    ("https://017700000001/", "numeric host"),
    ("https://0177.0.0.1/", "numeric host"),
    ("https://127.1/", "numeric host"),
    ("https://127.0.1/", "numeric host"),
    ("https://127.0.0.01/", "numeric host"),
    ("https://10.1/", "numeric host"),
    ("https://1.2.3.4.5/", "numeric host"),
    ("https://8.8.8.8./", "numeric host"),
    ("https://localhost/", "localhost"),
    ("https://api.localhost/", "localhost"),
    ("https://LOCALHOST./", "localhost"),
    ("https://hooks.example\\@127.0.0.1/", "backslash"),
    ("https://hooks.example /", "whitespace"),
    ("https://hooks.example/\n", "control"),
    ("https://hooks%2eexample/", "percent"),
    ("https://-bad-.example/", "valid DNS name"),
    ("https://a..example/", "valid DNS name"),
    ("https://[not-v6]/", "parsed"),
    ("https://" + "a" * 2100 + ".example/", "longer"),
    ("", "empty"),
]


@pytest.mark.parametrize(("url", "fragment"), REJECTED_URLS)
def test_rejected_urls(url: str, fragment: str) -> None:
    with pytest.raises(UnsafeTarget) as info:
        validate_url(url, allow_private=False, allow_http=False)
    assert fragment.lower() in info.value.reason.lower()


def test_numeric_tricks_refused_even_when_private_allowed() -> None:
    for url in ("http://2130706433/", "http://0x7f.1/", "http://017700000001/"):
        with pytest.raises(UnsafeTarget, match="numeric host"):
            validate_url(url, allow_private=True, allow_http=True)


def test_accepted_urls_are_normalised() -> None:
    t = validate_url(
        "HTTPS://Hooks.Example.:8443/in?x=1#frag", allow_private=False, allow_http=False
    )
    assert (t.scheme, t.host, t.port, t.target, t.ip) == (
        "https",
        "hooks.example",
        8443,
        "/in?x=1",
        None,
    )
    assert t.url == "https://hooks.example:8443/in?x=1"
    assert t.host_header == "hooks.example:8443"
    d = validate_url("https://hooks.example", allow_private=False, allow_http=False)
    assert (d.port, d.target, d.host_header) == (443, "/", "hooks.example")
    idn = validate_url("https://bücher.example/x", allow_private=False, allow_http=False)
    assert idn.host == "xn--bcher-kva.example"
    v6 = validate_url("https://[2606:4700:4700::1111]:444/", allow_private=False, allow_http=False)
    assert (v6.ip, v6.host_header, v6.url) == (
        "2606:4700:4700::1111",
        "[2606:4700:4700::1111]:444",
        "https://[2606:4700:4700::1111]:444/",
    )
    v4 = validate_url("https://8.8.8.8/", allow_private=False, allow_http=False)
    assert v4.ip == "8.8.8.8"
    h = validate_url("http://127.0.0.1:8080/h", allow_private=True, allow_http=True)
    assert (h.scheme, h.port, h.ip) == ("http", 8080, "127.0.0.1")
    assert (
        validate_url("https://localhost/", allow_private=True, allow_http=False).host == "localhost"
    )
    # a numeric label that is not the last one is a normal DNS name
    assert (
        validate_url("https://1.hooks.example/", allow_private=False, allow_http=False).host
        == "1.hooks.example"
    )
