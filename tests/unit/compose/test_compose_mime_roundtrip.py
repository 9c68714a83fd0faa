"""Property tests: build_message output parsed back by the stdlib parser lands every field."""

from __future__ import annotations

import email
import email.policy
import os
import re
from email.header import decode_header, make_header
from email.message import EmailMessage

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relaygate.compose.addresses import Mailbox
from relaygate.compose.mime import Attachment, build_message, normalize_body

# Characters a client may put in a subject or a display name (no control characters; tab ok).
_header_chars = st.characters(
    blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\ufeff"
) | st.just("\t")
_tricky_words = st.sampled_from(
    ["=?utf-8?q?x?=", "From ", ".", "  ", " ", '"', "\\", ",", "<", ">", "(", ")", "👋", "مرحبا",
     "שלום", "日本語", "é", "a" * 80, "x" * 1000, ";", ":", "@"]
)  # fmt: skip
_header_text = st.lists(st.text(_header_chars, max_size=20) | _tricky_words, max_size=8).map(
    "".join
)
# Bodies: anything a JSON string can carry except lone surrogates.
_body_chars = st.characters(blacklist_categories=("Cs",))
_body_tricky = st.sampled_from(
    ["\n", "\r\n", "\r", "From x", "\nFrom me\n", "\n.\n", ".", "   \n", "\t\n", "=", "=3D",
     "--", "--=_rg", "x" * 1200, "é" * 400, "\x00", "\x0c", "\u2028"]
)  # fmt: skip
_body = st.lists(st.text(_body_chars, max_size=30) | _body_tricky, max_size=10).map("".join)

# Display names as parse_mailbox yields them: whitespace runs collapsed, stripped.
_names = st.one_of(st.just(""), _header_text.map(lambda s: " ".join(s.split())[:250]))
_locals = st.from_regex(r"[a-z0-9]([a-z0-9._+-]{0,10}[a-z0-9])?", fullmatch=True).filter(
    lambda s: ".." not in s
)
_domains = st.sampled_from(["example.com", "mail.example.org", "bücher.de", "x.io"])


@st.composite
def _mailboxes(draw: st.DrawFn) -> Mailbox:
    return Mailbox(display_name=draw(_names), addr_spec=f"{draw(_locals)}@{draw(_domains)}")


_filenames = (
    _header_text | st.sampled_from(["résumé.pdf", "a b.txt", "x" * 200, "данные.csv"])
).filter(
    lambda s: (
        s.strip() == s
        and s not in ("", ".", "..")
        and "/" not in s
        and "\\" not in s
        and len(s) <= 255
    )
)
_attachments = st.lists(
    st.builds(
        Attachment,
        filename=_filenames,
        content_type=st.sampled_from(["application/pdf", "text/csv; charset=utf-8", "image/png"]),
        data=st.binary(max_size=3000),
    ),
    max_size=3,
)


_ADJACENT_EW = re.compile(r"\?=\s+=\?")


def _parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _ascii_addr(box: Mailbox) -> str:
    return box.ascii_addr_spec


# Filenames are read from the parsed Content-Disposition parameters: get_filename() unquotes
# once more, so a file really named '"x"' would come back as 'x' (a CPython quirk).


def _check_wire(raw: bytes) -> None:
    assert b"\r\n" in raw
    assert re.search(rb"(?<!\r)\n", raw) is None, "bare LF"
    assert re.search(rb"\r(?!\n)", raw) is None, "bare CR"
    assert raw.isascii()
    for line in raw.split(b"\r\n"):
        assert len(line) <= 998
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"(?im)^bcc:", raw)
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"subject:") or (line.startswith(b" =?")):
            assert len(line) <= 78, line


@settings(
    max_examples=int(os.environ.get("RG_HYPOTHESIS_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    subject=_header_text,
    from_=_mailboxes(),
    to=st.lists(_mailboxes(), min_size=1, max_size=5),
    cc=st.lists(_mailboxes(), max_size=3),
    reply_to=st.none() | _mailboxes(),
    text=st.none() | _body,
    html=st.none() | _body,
    attachments=_attachments,
)
def test_roundtrip(
    subject: str,
    from_: Mailbox,
    to: list[Mailbox],
    cc: list[Mailbox],
    reply_to: Mailbox | None,
    text: str | None,
    html: str | None,
    attachments: list[Attachment],
) -> None:
    raw = build_message(
        message_id="<msg_0123abcd@mail.example.com>",
        date=1_779_198_131.0,
        from_=from_,
        to=to,
        cc=cc,
        reply_to=reply_to,
        subject=subject,
        text=text,
        html=html,
        headers={"X-Campaign": "spring ünïcode", "List-Unsubscribe": "<mailto:u@example.com>"},
        attachments=attachments,
        hostname="mail.example.com",
    )
    _check_wire(raw)
    msg = _parse(raw)
    assert msg["Subject"] == subject
    assert msg["Message-ID"] == "<msg_0123abcd@mail.example.com>"
    assert msg["Date"] == "Tue, 19 May 2026 13:42:11 +0000"
    assert msg["MIME-Version"] == "1.0"
    assert msg["X-Campaign"] == "spring ünïcode"
    assert msg["List-Unsubscribe"] == "<mailto:u@example.com>"
    assert msg["Bcc"] is None

    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii").replace("\r\n ", " ")

    def check_boxes(header: str, boxes: list[Mailbox]) -> None:
        got = msg[header].addresses
        assert [a.addr_spec for a in got] == [_ascii_addr(b) for b in boxes]
        raw_value = re.search(rf"(?m)^{header}: (.*)$", head)
        assert raw_value is not None
        if not _ADJACENT_EW.search(raw_value.group(1)):
            assert [a.display_name for a in got] == [b.display_name for b in boxes]
        elif len(boxes) == 1:
            # Adjacent encoded-words: RFC 2047 drops the space between them, CPython's phrase
            # parser keeps it; check with the RFC-conforming decoder instead.
            display = raw_value.group(1).rsplit(" <", 1)[0]
            assert str(make_header(decode_header(display))) == boxes[0].display_name
        else:
            assert [a.display_name.replace(" ", "") for a in got] == [
                b.display_name.replace(" ", "") for b in boxes
            ]

    check_boxes("From", [from_])
    check_boxes("To", to)
    if cc:
        check_boxes("Cc", cc)
    else:
        assert msg["Cc"] is None
    if reply_to is not None:
        check_boxes("Reply-To", [reply_to])
    else:
        assert msg["Reply-To"] is None

    leaves = [p for p in msg.walk() if not p.is_multipart()]
    bodies = [p for p in leaves if p.get_content_disposition() != "attachment"]
    files = [p for p in leaves if p.get_content_disposition() == "attachment"]
    expected_bodies = [
        (kind, normalize_body(value))
        for kind, value in (("text/plain", text), ("text/html", html))
        if value is not None
    ]
    if text is None and html is None and not attachments:
        expected_bodies = [("text/plain", "")]
    assert [(p.get_content_type(), p.get_content().replace("\r\n", "\n")) for p in bodies] == (
        expected_bodies
    )
    for part in bodies:
        assert part.get_content_charset() == "utf-8"
    if text is not None and html is not None:
        alt = next(p for p in msg.walk() if p.get_content_type() == "multipart/alternative")
        assert [p.get_content_type() for p in alt.iter_parts()] == ["text/plain", "text/html"]
    assert msg.get_content_type() == (
        "multipart/mixed"
        if attachments
        else "multipart/alternative"
        if text is not None and html is not None
        else "text/html"
        if html is not None and text is None
        else "text/plain"
    )
    assert [
        (
            p["Content-Disposition"].params["filename"],
            p.get_content_type(),
            p.get_payload(decode=True),
        )
        for p in files
    ] == [(a.filename, a.content_type.split(";")[0], a.data) for a in attachments]
    for part in msg.walk():
        assert not [d for d in part.defects if "Bcc" in str(d)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(_header_chars, max_size=60) | _tricky_words, min_size=1, max_size=30).map(
        "".join
    )
)
def test_long_subjects_fold_to_78(subject: str) -> None:
    raw = build_message(
        message_id="<m@x.example>",
        date=0.0,
        from_=Mailbox(display_name="", addr_spec="a@example.com"),
        to=[Mailbox(display_name="", addr_spec="b@example.com")],
        cc=[],
        reply_to=None,
        subject=subject,
        text="hi",
        html=None,
        headers={},
        attachments=[],
        hostname="x.example",
    )
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    subject_lines = re.search(r"(?ms)^Subject:.*?(?=^\S)", head + "\r\nZ")
    assert subject_lines is not None
    for line in subject_lines.group(0).split("\r\n"):
        assert len(line) <= 78
    assert _parse(raw)["Subject"] == subject
