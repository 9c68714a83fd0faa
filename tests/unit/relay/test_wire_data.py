"""The DATA payload the relay sends is byte for byte what aiosmtplib's ``data()`` would send."""

from __future__ import annotations

from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import example, given
from hypothesis import strategies as st

from relaygate.relay.client import wire_data


def aiosmtplib_wire(message: bytes) -> bytes:
    """``SMTPProtocol.execute_data_command``'s transformation (aiosmtplib 5.1)."""
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(message)) + b".\r\n"


# pieces that exercise every branch: line endings of each kind, leading dots, plain text
_PIECES = st.sampled_from([b"\r\n", b"\n", b"\r", b".", b"..", b"a", b" ", b"\r\n.\r\n", b"x\r"])


@given(st.lists(_PIECES, max_size=40).map(b"".join))
@example(b"")
@example(b".")
@example(b"Subject: x\r\n\r\n.hidden\r\n")
@example(b"a\r\n\r")
@example(b"\n\r")
def test_same_bytes_as_aiosmtplib(message: bytes) -> None:
    assert wire_data(message) == aiosmtplib_wire(message)


@given(st.binary(max_size=200))
def test_same_bytes_as_aiosmtplib_on_any_bytes(message: bytes) -> None:
    assert wire_data(message) == aiosmtplib_wire(message)


def test_a_clean_body_is_only_terminated() -> None:
    body = b"From: a@b.test\r\n\r\n" + b"line of text\r\n" * 1000
    assert wire_data(body) == body + b".\r\n"
