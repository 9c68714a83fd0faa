from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaygate.compose.addresses import AddressError, Mailbox, domain_of, parse_mailbox


@pytest.mark.parametrize(
    ("value", "name", "addr"),
    [
        ("a@b.co", "", "a@b.co"),
        ("  a@b.co\t", "", "a@b.co"),
        ("<a@b.co>", "", "a@b.co"),
        ("Alex Doe <alex@example.com>", "Alex Doe", "alex@example.com"),
        ("Alex   Doe<alex@example.com>", "Alex Doe", "alex@example.com"),
        ('"Doe, Alex" <alex@example.com>', "Doe, Alex", "alex@example.com"),
        ('"a \\"q\\" \\\\ b" <x@example.com>', 'a "q" \\ b', "x@example.com"),
        ("José Pérez <jose@example.com>", "José Pérez", "jose@example.com"),
        ('"👋 مرحبا" <r@example.com>', "👋 مرحبا", "r@example.com"),
        ("user@bücher.de", "", "user@bücher.de"),
        ("first.last+tag@sub.example.co.uk", "", "first.last+tag@sub.example.co.uk"),
    ],
)
def test_parse_mailbox_accepts(value: str, name: str, addr: str) -> None:
    assert parse_mailbox(value) == Mailbox(display_name=name, addr_spec=addr)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "empty"),
        ("abc.example.com", "no '@'"),
        ("@example.com", "empty local part"),
        ("a b@example.com", "whitespace"),
        ("a@b@example.com", "more than one '@'"),
        ("a@example.com\r\nBcc: x@y.z", "line break"),
        ("a@exa\x00mple.com", "control character"),
        ("a@example.com, b@example.com", "more than one address"),
        ("A <a@example.com>, B <b@example.com>", "more than one address"),
        ("Doe, John <j@example.com>", "more than one address"),
        ("a@-bad.com", "label"),
        ("a@bad-.com", "label"),
        ("a@ex_ample.com", "label"),
        ("a@example..com", "empty label"),
        ("a@localhost", "two labels"),
        ("a@example.123", "numeric"),
        ("a@[127.0.0.1]", "literal"),
        ("a..b@example.com", "dot"),
        (".a@example.com", "dot"),
        ("x" * 65 + "@example.com", "64"),
        ("a@" + ".".join(["abcdefghij"] * 25) + ".com", "253"),
        ("Name <a@example.com", "angle"),
        ("a@example.com (comment)", "comment"),
        ('"unterminated <a@example.com>', "unterminated"),
        ("jösé@example.com", "non-ASCII local part"),
        ("a@xn--zz.com", "A-label"),
        ("Na<me <a@example.com>", "quote the display name"),
    ],
)
def test_parse_mailbox_refuses(value: str, fragment: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_mailbox(value)
    assert fragment.lower() in info.value.detail.lower()
    assert isinstance(info.value, ValueError)


def test_long_address_refused() -> None:
    local = "a" * 64
    domain = ".".join(["b" * 63] * 3) + ".com"  # 195 octets
    with pytest.raises(AddressError, match="254"):
        parse_mailbox(f"{local}@{domain}")


def test_non_string_refused() -> None:
    with pytest.raises(AddressError):
        parse_mailbox(None)  # type: ignore[arg-type]


def test_idn_kept_as_given_and_ascii_form_available() -> None:
    box = parse_mailbox("Ünï <user@Bücher.de>")
    assert box.addr_spec == "user@Bücher.de"
    assert box.ascii_addr_spec == "user@xn--bcher-kva.de"
    assert domain_of(box.addr_spec) == "xn--bcher-kva.de"


def test_domain_of_lowercases() -> None:
    assert domain_of("Someone@Example.COM") == "example.com"
    with pytest.raises(AddressError):
        domain_of("not-an-address")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_fuzz_only_address_error(value: str) -> None:
    try:
        box = parse_mailbox(value)
    except AddressError:
        return
    assert "@" in box.addr_spec
    assert not any(c in box.addr_spec for c in "\r\n ")
    # a parsed address always yields a valid domain and re-parses to itself
    domain_of(box.addr_spec)
    assert parse_mailbox(box.addr_spec).addr_spec == box.addr_spec


_atext = st.sampled_from(list("abcxyzABC0129!#$%&'*+/=?^_`{|}~-"))


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=40),
    st.lists(st.text(alphabet=_atext, min_size=1, max_size=8), min_size=1, max_size=3),
    st.sampled_from(["example.com", "mail.example.org", "bücher.de"]),
)
def test_fuzz_structured(name: str, local_atoms: list[str], domain: str) -> None:
    addr = ".".join(local_atoms) + "@" + domain
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    box = parse_mailbox(f"{quoted} <{addr}>")
    assert box.display_name == " ".join(name.split())
    assert box.addr_spec == addr


def test_cached_results_are_the_same_and_refusals_repeat() -> None:
    assert parse_mailbox("Ann <ann@Example.com>") == parse_mailbox("Ann <ann@Example.com>")
    assert domain_of("ann@Example.com") == domain_of("ann@Example.com") == "example.com"
    for _ in range(2):
        with pytest.raises(AddressError, match="line break"):
            parse_mailbox("ann@example.com\r\nBcc: x@y.z")
        with pytest.raises(AddressError, match="whitespace"):
            parse_mailbox("ann\u00a0x@example.com")
        with pytest.raises(AddressError, match="control character"):
            domain_of("ann\x00@example.com")
        with pytest.raises(AddressError, match="must be a string"):
            parse_mailbox(["ann@example.com"])  # type: ignore[arg-type]
