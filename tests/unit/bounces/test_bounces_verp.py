"""VERP return paths: per message and recipient, signed, case-folding safe."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaygate.bounces.verp import VerpRef, decode, encode, verified

SECRET = b"s" * 32
MSG = "msg_0123456789abcdef0123456789abcdef"
DOMAINS = ["bounces.example.com"]


def test_round_trip_and_shape() -> None:
    addr = encode(message_id=MSG, recipient_id=42, secret=SECRET, domain="Bounces.Example.COM.")
    local, _, domain = addr.partition("@")
    assert domain == "bounces.example.com"
    assert local.startswith("b-")
    assert local == local.lower()
    assert len(local) <= 64
    assert decode(addr, secret=SECRET, domains=DOMAINS) == VerpRef(message_id=MSG, recipient_id=42)


def test_survives_case_folding_brackets_and_trailing_dot() -> None:
    addr = encode(message_id=MSG, recipient_id=7, secret=SECRET, domain="bounces.example.com")
    assert decode(f"<{addr.upper()}.>", secret=SECRET, domains=["BOUNCES.example.com."]) == (
        VerpRef(message_id=MSG, recipient_id=7)
    )


def test_largest_recipient_id_fits_in_64_chars() -> None:
    addr = encode(message_id=MSG, recipient_id=2**64 - 1, secret=SECRET, domain="b.example")
    assert len(addr.partition("@")[0]) <= 64
    assert decode(addr, secret=SECRET, domains=["b.example"]) == VerpRef(
        message_id=MSG, recipient_id=2**64 - 1
    )


def _flip(addr: str, index: int) -> str:
    local, _, domain = addr.partition("@")
    ch = local[index]
    repl = "2" if ch != "2" else "3"
    return f"{local[:index]}{repl}{local[index + 1 :]}@{domain}"


def test_forged_altered_foreign_and_malformed_are_none() -> None:
    addr = encode(message_id=MSG, recipient_id=42, secret=SECRET, domain="bounces.example.com")
    assert decode(addr, secret=b"other-secret", domains=DOMAINS) is None
    assert decode(addr, secret=SECRET, domains=["other.example"]) is None
    assert decode(_flip(addr, -1), secret=SECRET, domains=DOMAINS) is None  # mac
    assert decode(_flip(addr, 5), secret=SECRET, domains=DOMAINS) is None  # message id
    other = encode(message_id=MSG, recipient_id=43, secret=SECRET, domain="bounces.example.com")
    spliced = addr.split("-")[0:2] + other.split("-")[2:3] + addr.split("-")[3:]
    assert decode("-".join(spliced), secret=SECRET, domains=DOMAINS) is None  # recipient id
    for junk in ["", "@", "b-@bounces.example.com", "user@bounces.example.com", "no-at-sign"]:
        assert decode(junk, secret=SECRET, domains=DOMAINS) is None
    assert decode(addr, secret=b"", domains=DOMAINS) is None


def test_non_canonical_recipient_id_is_rejected() -> None:
    addr = encode(message_id=MSG, recipient_id=5, secret=SECRET, domain="bounces.example.com")
    parts = addr.split("-")
    parts[2] = "0" + parts[2]
    assert decode("-".join(parts), secret=SECRET, domains=DOMAINS) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"message_id": "msg_XYZ", "recipient_id": 1},
        {"message_id": MSG.upper(), "recipient_id": 1},
        {"message_id": MSG, "recipient_id": -1},
        {"message_id": MSG, "recipient_id": 2**64},
    ],
)
def test_encode_rejects_bad_input(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        encode(secret=SECRET, domain="b.example", **kwargs)  # type: ignore[arg-type]


def test_encode_rejects_empty_secret_or_domain() -> None:
    with pytest.raises(ValueError):
        encode(message_id=MSG, recipient_id=1, secret=b"", domain="b.example")
    with pytest.raises(ValueError):
        encode(message_id=MSG, recipient_id=1, secret=SECRET, domain=" . ")


def test_verified_lists_distinct_genuine_tokens_and_notices_forged_ones() -> None:
    good = encode(message_id=MSG, recipient_id=9, secret=SECRET, domain="bounces.example.com")
    other = encode(message_id=MSG, recipient_id=10, secret=SECRET, domain="bounces.example.com")
    forged = "b-" + "0" * 32 + "-9-aaaaaaaaaaaaa@bounces.example.com"
    nine, ten = VerpRef(message_id=MSG, recipient_id=9), VerpRef(message_id=MSG, recipient_id=10)
    assert verified([good], secret=SECRET, domains=DOMAINS) == ([nine], False)
    assert verified(["x@y", f"Bounce <{good}>", good.upper()], secret=SECRET, domains=DOMAINS) == (
        [nine],
        False,
    )
    assert verified([forged, other, good], secret=SECRET, domains=DOMAINS) == ([ten, nine], True)
    assert verified(["", "postmaster@bounces.example.com"], secret=SECRET, domains=DOMAINS) == (
        [],
        False,
    )
    # A token of another domain is foreign, not forged.
    assert verified(
        [good.replace("example.com", "other.test")], secret=SECRET, domains=DOMAINS
    ) == (
        [],
        False,
    )


@settings(max_examples=200, deadline=None)
@given(
    hexid=st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    rid=st.integers(min_value=0, max_value=2**64 - 1),
)
def test_round_trip_property(hexid: str, rid: int) -> None:
    mid = f"msg_{hexid}"
    addr = encode(message_id=mid, recipient_id=rid, secret=SECRET, domain="b.example")
    assert len(addr.partition("@")[0]) <= 64
    assert decode(addr.upper(), secret=SECRET, domains=["b.example"]) == VerpRef(
        message_id=mid, recipient_id=rid
    )


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_decode_never_raises(text: str) -> None:
    decode(text, secret=SECRET, domains=DOMAINS)
