"""The 7bit-or-quoted-printable choice for a text part, made on bytes, is the rule as written
(the regular-expression and line-splitting form it replaced), and the 7bit body is the text
with CRLF line ends."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from relaygate.compose.mime import _as_7bit, _lines_within, normalize_body

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def reference(text: str) -> bytes | None:
    """The previous form of the rule: ASCII, no control character but tab and line feed, no
    whitespace before a line end, no line starting ``From ``, no line over 998 characters."""
    needs_qp = (
        _CONTROL.search(text) is not None
        or " \n" in text
        or "\t\n" in text
        or text.startswith("From ")
        or "\nFrom " in text
    )
    if text.isascii() and not needs_qp and max(map(len, text.split("\n"))) <= 998:
        return text.replace("\n", "\r\n").encode("ascii")
    return None


_PIECES = st.sampled_from(
    ["a", "b ", " ", "\t", "\n", "From ", "é", "\x00", "\x7f", "\x0b", "x" * 500, "y" * 997]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join))
@example("")
@example("x" * 998 + "\n")
@example("x" * 999 + "\n")
@example(("x" * 998 + "\n") * 3)
@example(("x" * 400 + "\n") * 300)
def test_same_choice_and_bytes_as_the_rule(text: str) -> None:
    text = normalize_body(text)
    assert _as_7bit(text) == reference(text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=1100), max_size=40),
    st.sampled_from([20, 100, 998]),
)
def test_lines_within_is_the_longest_line_test(lengths: list[int], limit: int) -> None:
    raw = b"\n".join(b"x" * n for n in lengths)
    assert _lines_within(raw, limit) == (max(map(len, raw.split(b"\n"))) <= limit)
