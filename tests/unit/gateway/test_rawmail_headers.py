"""The header-block fast path gives exactly what the email parser gives."""

from __future__ import annotations

from email.message import Message
from email.utils import getaddresses

from hypothesis import given, settings
from hypothesis import strategies as st

from relaygate.gateway.rawmail import _PARSER, header_addresses, parse_headers


def picture(msg: Message) -> tuple[object, ...]:
    return (
        msg.items(),
        msg.get_unixfrom(),
        msg._payload,  # as stored (get_payload() may re-encode)
        [type(d) for d in msg.defects],
        msg.get_all("from"),
        msg.get("SUBJECT"),
    )


def same(text: str) -> None:
    assert picture(parse_headers(text)) == picture(_PARSER.parsestr(text)), repr(text)


PIECES = [
    "From: App <app@example.com>",
    "To: r@dest.test",
    "Subject: Hello",
    "subject:x",
    "X-A:  spaced ",
    " folded",
    "\tfolded tab",
    "From app@example.com Mon",
    "From x",
    ": no name",
    "no colon",
    "",
    "Ünïcode: v",
    "X-U: välue \udcff",
    "Bad Name: v",
    "Message-ID: <a@b>",
]
BREAKS = ["\r\n", "\n", "\r", "\x0b", "\u2028", "\x85", "\r\r\n"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PIECES), st.sampled_from(BREAKS)), max_size=8))
def test_header_blocks_parse_as_the_email_parser_does(lines: list[tuple[str, str]]) -> None:
    same("".join(piece + brk for piece, brk in lines))
    same("".join(piece + brk for piece, brk in lines).rstrip("\r\n"))


@settings(max_examples=2000, deadline=None)
@given(st.text("Ab: \t\r\n\x0c-Fo\udcffé", max_size=40))
def test_any_text_parses_as_the_email_parser_does(text: str) -> None:
    same(text)


def test_examples() -> None:
    block = "From: App <app@example.com>\r\nTo: a@x.test,\r\n b@y.test\r\nSubject: Hi\r\n"
    same(block)
    assert parse_headers(block).get_all("To") == ["a@x.test,\r\n b@y.test"]
    same("")
    same("From app@example.com Mon Jan  1 00:00:00 2024\r\nFrom: a@b.c\r\n")


def addresses_by_parser(values: list[str]) -> list[str]:
    return [
        spec
        for _name, spec in getaddresses([v.replace("\r\n", "").replace("\n", "") for v in values])
        if spec and "@" in spec
    ]


def _field(values: list[str]) -> Message:
    msg = Message()
    for v in values:
        msg["To"] = v
    return msg


@settings(max_examples=3000, deadline=None)
@given(
    st.lists(
        st.builds(
            "".join,
            st.lists(
                st.sampled_from(
                    [
                        " ",
                        "\t",
                        "App",
                        "Bo b",
                        "<",
                        ">",
                        "a",
                        "b.c",
                        "@",
                        ".",
                        ",",
                        '"',
                        "(x)",
                        "=?",
                        "é",
                        ":",
                        ";",
                        "[1.2]",
                        "!#",
                        "\\",
                        "-",
                        "x_y",
                    ]
                ),
                max_size=8,
            ),
        ),
        max_size=3,
    )
)
def test_header_addresses_match_getaddresses(values: list[str]) -> None:
    assert header_addresses(_field(values), "To") == addresses_by_parser(values)


def test_header_addresses_examples() -> None:
    for values in (
        ["<app@example.com>"],
        ["App <app@example.com>", " b@c.d "],
        ["App  Name\t<a.b+c@x-y.example>"],
        ["a@b.c, d@e.f"],
        ["<a@b.c> d@e.f"],
        ["x <a@b.c> y@z.w"],
        ['"Q" <a@b.c>'],
        ["<app@example.com.>"],
        [""],
    ):
        assert header_addresses(_field(values), "To") == addresses_by_parser(values), values
    assert header_addresses(_field(["App <app@example.com>"]), "To") == ["app@example.com"]
