"""Signed tracking tokens: round trips, forgery, rotation, limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaygate.events.tracking import MAX_TOKEN_CHARS, TrackingRef, make_token, read_token

KEY = bytes(range(32))
OLD_KEY = b"an older tracking key, retired.."
MSG = "msg_0123456789abcdef0123456789abcdef"
URL100 = "https://www.example.com/articles/2026/05/how-we-ship?utm_source=mail&utm_medium=email&utm_id=4242123"
B64URL = re.compile(r"[A-Za-z0-9_-]+")
T = 1_790_000_000


def click(url: str = URL100, *, account_id: int = 42, key: bytes = KEY) -> str:
    return make_token(
        kind="c",
        account_id=account_id,
        message_id=MSG,
        recipient_id=7,
        url=url,
        key=key,
        issued_at=T,
    )


def opened(*, account_id: int = 42, key: bytes = KEY) -> str:
    return make_token(
        kind="o",
        account_id=account_id,
        message_id=MSG,
        recipient_id=7,
        url=None,
        key=key,
        issued_at=T,
    )


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def test_open_round_trip_and_size() -> None:
    token = opened()
    assert B64URL.fullmatch(token)
    assert len(token) <= 60
    assert read_token(token, keys=[KEY]) == TrackingRef(
        kind="o", account_id=42, message_id=MSG, recipient_id=7, url=None, key_index=0, issued_at=T
    )


def test_click_round_trip_and_size_for_a_100_char_url() -> None:
    assert len(URL100) == 100
    token = click()
    assert B64URL.fullmatch(token)
    assert len(token) <= 200
    ref = read_token(token, keys=[KEY], kind="c")
    assert ref is not None and ref.url == URL100 and ref.kind == "c"


def test_tokens_are_deterministic() -> None:
    assert click() == click()
    assert opened() == opened()


def test_kind_is_checked_when_asked() -> None:
    assert read_token(opened(), keys=[KEY], kind="c") is None
    assert read_token(click(), keys=[KEY], kind="o") is None
    assert read_token(click(), keys=[KEY], kind="c") is not None


def test_key_rotation() -> None:
    old = click(key=OLD_KEY)
    ref = read_token(old, keys=[KEY, OLD_KEY])
    assert ref is not None and ref.key_index == 1 and ref.url == URL100
    assert read_token(old, keys=[KEY]) is None
    assert read_token(old, keys=[]) is None


def test_every_single_bit_flip_is_rejected() -> None:
    raw = unb64(click())
    for i in range(len(raw)):
        for bit in range(8):
            forged = bytearray(raw)
            forged[i] ^= 1 << bit
            assert read_token(b64(bytes(forged)), keys=[KEY]) is None, (i, bit)


def test_every_character_substitution_is_rejected() -> None:
    token = opened()
    for i, ch in enumerate(token):
        other = "A" if ch != "A" else "B"
        assert read_token(token[:i] + other + token[i + 1 :], keys=[KEY]) is None


def test_truncation_and_extension_are_rejected() -> None:
    token = click()
    for n in range(len(token)):
        assert read_token(token[:n], keys=[KEY]) is None
    assert read_token(token + "A", keys=[KEY]) is None
    assert read_token(token + "AA", keys=[KEY]) is None


def test_account_cannot_be_swapped() -> None:
    """A token made for account 42 can never read as another account: the id is signed."""
    a = unb64(opened(account_id=42))
    b = unb64(opened(account_id=43))
    # splice B's account field into A's token, keeping A's tag, and vice versa
    assert read_token(b64(b[:-16] + a[-16:]), keys=[KEY]) is None
    assert read_token(b64(a[:-16] + b[-16:]), keys=[KEY]) is None
    ref = read_token(b64(a), keys=[KEY])
    assert ref is not None and ref.account_id == 42


@pytest.mark.parametrize(
    "garbage",
    ["", "A", "====", "not a token!", "a/b", "%41%41", "\u00e9" * 40, "A" * (MAX_TOKEN_CHARS + 1)],
)
def test_garbage_is_rejected(garbage: str) -> None:
    assert read_token(garbage, keys=[KEY]) is None


def test_non_canonical_base64_is_rejected() -> None:
    token = opened()
    # change the unused low bits of the last character: same bytes, other spelling
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    spare_bits = {2: 4, 3: 2}.get(len(token) % 4, 0)
    if spare_bits:
        variant = token[:-1] + alphabet[last | 1]
        assert variant != token
        assert read_token(variant, keys=[KEY]) is None
    assert read_token(token + "=", keys=[KEY]) is None


def test_two_kilobyte_url_works_and_oversize_is_refused() -> None:
    long_url = "https://example.com/?" + "&".join(f"k{i}=v{i * 7919 % 10007}" for i in range(200))
    long_url = long_url[:2048]
    token = click(long_url)
    assert len(token) < MAX_TOKEN_CHARS
    ref = read_token(token, keys=[KEY])
    assert ref is not None and ref.url == long_url
    incompressible = "https://example.com/" + b64(bytes((i * 7919 + 13) % 251 for i in range(5000)))
    with pytest.raises(ValueError):
        click(incompressible)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "x"},
        {"message_id": "msg_XYZ"},
        {"message_id": "msg_0123456789ABCDEF0123456789ABCDEF"},
        {"account_id": -1},
        {"account_id": True},
        {"recipient_id": 2**63},
        {"key": b"short"},
        {"url": None},
        {"url": "javascript:alert(1)"},
        {"url": "/relative"},
        {"url": "https://example.com/\r\nSet-Cookie: x"},
        {"kind": "o", "url": "https://example.com/"},
        {"issued_at": -1},
        {"issued_at": float("nan")},
        {"issued_at": 2.0**40},
    ],
)
def test_bad_inputs_raise(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        "kind": "c",
        "account_id": 1,
        "message_id": MSG,
        "recipient_id": 1,
        "url": "https://example.com/",
        "key": KEY,
        "issued_at": T,
    }
    args.update(kwargs)
    with pytest.raises(ValueError):
        make_token(**args)  # type: ignore[arg-type]


def test_short_keys_in_the_key_list_are_ignored() -> None:
    assert read_token(opened(), keys=[b"", b"x", KEY]) is not None


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(["o", "c"]),
    account_id=st.integers(0, 2**63 - 1),
    recipient_id=st.integers(0, 2**63 - 1),
    hexid=st.text("0123456789abcdef", min_size=32, max_size=32),
    path=st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=300),
    issued_at=st.floats(0, 2**40, exclude_max=True),
)
def test_round_trip_property(
    kind: str, account_id: int, recipient_id: int, hexid: str, path: str, issued_at: float
) -> None:
    url = ("https://example.com/" + path).rstrip(" ") if kind == "c" else None
    token = make_token(
        kind=kind,  # type: ignore[arg-type]
        account_id=account_id,
        message_id="msg_" + hexid,
        recipient_id=recipient_id,
        url=url,
        key=KEY,
        issued_at=issued_at,
    )
    ref = read_token(token, keys=[OLD_KEY, KEY])
    assert ref == TrackingRef(
        kind=kind,  # type: ignore[arg-type]
        account_id=account_id,
        message_id="msg_" + hexid,
        recipient_id=recipient_id,
        url=url,
        key_index=1,
        issued_at=int(issued_at),
    )


def v1_token(body_tail: bytes, key: bytes = KEY) -> str:
    """A version 1 token (no issue time), as relaygate made them before the expiry existed."""
    body = bytes((1, 0x01)) + bytes((42,)) + bytes.fromhex(MSG[4:]) + bytes((7,)) + body_tail
    return b64(
        body + hmac.new(key, b"relaygate/tracking/v1\0" + body, hashlib.sha256).digest()[:16]
    )


def test_version_1_tokens_still_verify_and_have_no_issue_time() -> None:
    ref = read_token(v1_token(b"https://example.com/a"), keys=[KEY], kind="c")
    assert ref is not None and ref.url == "https://example.com/a" and ref.issued_at is None
    assert read_token(v1_token(b"https://example.com/a", key=OLD_KEY), keys=[KEY]) is None


def test_the_issue_time_is_signed() -> None:
    later = make_token(
        kind="o", account_id=42, message_id=MSG, recipient_id=7, url=None, key=KEY, issued_at=T + 1
    )
    assert later != opened()
    raw = bytearray(unb64(opened()))
    issued_at = raw.index(bytes.fromhex(MSG[4:])) + 16 + 1  # after the message id and recipient
    raw[issued_at] ^= 0x01
    assert read_token(b64(bytes(raw)), keys=[KEY]) is None
