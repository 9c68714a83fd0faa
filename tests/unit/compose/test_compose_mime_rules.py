from __future__ import annotations

import base64
import email
import email.policy
import itertools

import pytest

from relaygate.compose.addresses import Mailbox, parse_mailbox
from relaygate.compose.mime import (
    Attachment,
    AttachmentError,
    HeaderError,
    build_message,
    decode_attachment,
    format_date,
    validate_headers,
)

A = Mailbox(display_name="", addr_spec="a@example.com")
B = Mailbox(display_name="", addr_spec="b@example.com")


def _build(**over: object) -> bytes:
    args: dict[str, object] = {
        "message_id": "<msg_1@mail.example.com>",
        "date": 0.0,
        "from_": A,
        "to": [B],
        "cc": [],
        "reply_to": None,
        "subject": "Hello",
        "text": "hi",
        "html": None,
        "headers": {},
        "attachments": [],
        "hostname": "mail.example.com",
    }
    args.update(over)
    return build_message(**args)  # type: ignore[arg-type]


def _head(raw: bytes) -> str:
    return raw.split(b"\r\n\r\n", 1)[0].decode("ascii")


def test_format_date_is_rfc5322_utc() -> None:
    assert format_date(1_779_198_131) == "Tue, 19 May 2026 13:42:11 +0000"
    assert format_date(0) == "Thu, 01 Jan 1970 00:00:00 +0000"


def test_headers_in_order_and_never_bcc() -> None:
    raw = _build(cc=[parse_mailbox("C <c@example.com>")], reply_to=parse_mailbox("r@example.com"))
    head = _head(raw)
    names = [line.split(":", 1)[0] for line in head.split("\r\n") if not line.startswith(" ")]
    assert names[:8] == [
        "From",
        "To",
        "Cc",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
    ]
    assert "bcc" not in raw.decode().lower()


@pytest.mark.parametrize(
    ("text", "cte"),
    [
        ("plain ascii\nline two", "7bit"),
        ("caf\u00e9", "quoted-printable"),
        ("trailing space \nx", "quoted-printable"),
        ("From the start", "quoted-printable"),
        ("x" * 999, "quoted-printable"),
        ("x" * 998, "7bit"),
        ("form\x0cfeed", "quoted-printable"),
        ("dot\n.\nline", "7bit"),
    ],
)
def test_transfer_encoding_choice(text: str, cte: str) -> None:
    msg = email.message_from_bytes(_build(text=text), policy=email.policy.default)
    assert msg["Content-Transfer-Encoding"] == cte
    assert msg.get_content().replace("\r\n", "\n") == text + "\n"


def test_from_lines_are_protected_in_quoted_printable() -> None:
    raw = _build(text="caf\u00e9\nFrom here\n" + "From " + "y" * 100)
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert b"\r\nFrom " not in body and not body.startswith(b"From ")
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))


def test_line_endings_normalised() -> None:
    raw = _build(text="a\r\nb\rc\nd")
    assert b"a\r\nb\r\nc\r\nd\r\n" in raw


def test_boundary_collision_is_avoided() -> None:
    # The injected factory first offers a boundary that occurs in the body.
    offers = itertools.chain(["=_rgCOLLIDE"], (f"=_rgok{i}" for i in itertools.count()))
    raw = _build(
        text="--=_rgCOLLIDE is in the text", html="<p>x</p>", boundary=lambda: next(offers)
    )
    assert b'boundary="=_rgok0"' in raw
    assert b'boundary="=_rgCOLLIDE"' not in raw


def test_boundaries_are_random() -> None:
    a = _build(html="<p>x</p>")
    b = _build(html="<p>x</p>")
    assert a != b


def test_structure_with_attachments() -> None:
    att = Attachment(filename="r.pdf", content_type="application/pdf", data=b"%PDF" * 100)
    msg = email.message_from_bytes(
        _build(html="<b>x</b>", attachments=[att]), policy=email.policy.default
    )
    assert msg.get_content_type() == "multipart/mixed"
    parts = list(msg.iter_parts())
    assert parts[0].get_content_type() == "multipart/alternative"
    assert parts[1]["Content-Transfer-Encoding"] == "base64"
    assert parts[1].get_payload(decode=True) == b"%PDF" * 100
    lines = parts[1].get_payload().strip().split("\n")
    assert {len(line.rstrip("\r")) for line in lines[:-1]} == {76}


def test_attachments_only_and_empty_message() -> None:
    att = Attachment(filename="a.bin", content_type="application/octet-stream", data=b"\x00\x01")
    msg = email.message_from_bytes(
        _build(text=None, attachments=[att]), policy=email.policy.default
    )
    assert [p.get_content_type() for p in msg.iter_parts()] == ["application/octet-stream"]
    empty = email.message_from_bytes(_build(text=None), policy=email.policy.default)
    assert empty.get_content_type() == "text/plain"
    assert empty.get_content() == ""


def test_reply_to_twice_is_refused() -> None:
    with pytest.raises(HeaderError, match="Reply-To"):
        _build(reply_to=A, headers={"Reply-To": "x@example.com"})
    raw = _build(headers={"Reply-To": "x@example.com"})
    assert b"Reply-To: x@example.com\r\n" in raw


@pytest.mark.parametrize("subject", ["a\r\nBcc: x@y.z", "a\nb", "nul\x00", "bell\x07"])
def test_subject_with_control_characters_refused(subject: str) -> None:
    with pytest.raises(HeaderError, match="subject"):
        _build(subject=subject)


@pytest.mark.parametrize("mid", ["msg@x", "<msg>", "<a b@x>", "<a@b>\r\nBcc: x", "<a@b>>"])
def test_bad_message_id_refused(mid: str) -> None:
    with pytest.raises(HeaderError, match="message id"):
        _build(message_id=mid)


def test_long_header_values_fold_and_roundtrip() -> None:
    value = " ".join(f"word{i}" for i in range(60))
    raw = _build(headers={"X-Long": value, "X-Uni": "Grüße " * 30})
    head = _head(raw)
    assert all(len(line) <= 78 for line in head.split("\r\n"))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["X-Long"] == value
    assert msg["X-Uni"] == ("Grüße " * 30).strip()


def test_many_recipients_fold() -> None:
    to = [parse_mailbox(f"Person Number {i} <p{i}@example.com>") for i in range(50)]
    raw = _build(to=to)
    assert all(len(line) <= 78 for line in _head(raw).split("\r\n"))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert [a.addr_spec for a in msg["To"].addresses] == [f"p{i}@example.com" for i in range(50)]


# --- validate_headers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["From", "to", "CC", "bcc", "Subject", "date", "Message-ID", "sender", "Return-Path",
     "received", "DKIM-Signature", "mime-version", "Content-Type", "content-transfer-encoding"],
)  # fmt: skip
def test_owned_headers_refused(name: str) -> None:
    with pytest.raises(HeaderError, match="set by relaygate"):
        validate_headers({name: "x"})


@pytest.mark.parametrize(
    "name",
    ["Authentication-Results", "received-spf", "ARC-Seal", "arc-message-signature",
     "ARC-Authentication-Results", "Resent-From", "resent-message-id", "RESENT-DATE"],
)  # fmt: skip
def test_trace_and_authentication_headers_refused(name: str) -> None:
    with pytest.raises(HeaderError, match="trace or authentication result"):
        validate_headers({name: "x"})


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({"X-A": "v\r\nBcc: x@y.z"}, "line break"),
        ({"X-A": "v\nx"}, "line break"),
        ({"X-A\r\nBcc": "v"}, "line break"),
        ({"X A": "v"}, "invalid"),
        ({"X:A": "v"}, "invalid"),
        ({"X-Ä": "v"}, "invalid"),
        ({"": "v"}, "empty"),
        ({"X-A": "nul\x00"}, "control character"),
        ({"X-A": 5}, "string"),
        ({"X-A": "x" * 5000}, "longer"),
        ({f"X-{i}": "v" for i in range(101)}, "too many"),
    ],
)
def test_bad_headers_refused(headers: dict[str, object], fragment: str) -> None:
    with pytest.raises(HeaderError) as info:
        validate_headers(headers)  # type: ignore[arg-type]
    assert fragment in info.value.detail
    assert isinstance(info.value, ValueError)


def test_good_headers_pass_stripped() -> None:
    assert validate_headers(
        {"X-Campaign": "  spring\tsale ", "List-Unsubscribe": "<mailto:u@x.io>"}
    ) == {
        "X-Campaign": "spring\tsale",
        "List-Unsubscribe": "<mailto:u@x.io>",
    }


# --- decode_attachment ------------------------------------------------------------------------


def test_decode_attachment_ok_and_wrapped_base64() -> None:
    data = bytes(range(256)) * 10
    wrapped = base64.encodebytes(data).decode()
    att = decode_attachment("C:\\Users\\me\\report.pdf", wrapped, "Application/PDF")
    assert att == Attachment(filename="report.pdf", content_type="application/pdf", data=data)
    assert decode_attachment("a.txt", "", None).data == b""
    assert decode_attachment("a.csv", "eA==", "text/csv; charset=UTF-8").content_type == (
        "text/csv; charset=UTF-8"
    )
    assert decode_attachment("dir/a.csv", "eA==", "").content_type == "application/octet-stream"


@pytest.mark.parametrize(
    ("filename", "content", "ctype", "fragment"),
    [
        ("a.txt", "not base64!", "text/plain", "not valid base64"),
        ("a.txt", "eA=", "text/plain", "padding"),
        ("a.txt", "-_-_", "text/plain", "URL-safe"),
        ("a.txt", "data:text/plain;base64,eA==", "text/plain", "data: URL"),
        ("a.txt", "eA==\u00e9", "text/plain", "not valid base64"),
        ("a\r\nb.txt", "eA==", "text/plain", "line break"),
        ("a\x00.txt", "eA==", "text/plain", "NUL"),
        ("a\x07.txt", "eA==", "text/plain", "control"),
        ("dir/", "eA==", "text/plain", "no file name"),
        ("..", "eA==", "text/plain", "no file name"),
        ("x" * 256, "eA==", "text/plain", "longer"),
        ("a.txt", "eA==", "textplain", "type/subtype"),
        ("a.txt", "eA==", "text/pl ain", "type/subtype"),
        ("a.txt", "eA==", "multipart/mixed", "cannot be used"),
        ("a.txt", "eA==", "message/rfc822", "cannot be used"),
        ("a.txt", "eA==", "text/plain; charset", "parameter"),
        ("a.txt", "eA==", "text/plain\r\nBcc: x", "invalid"),
        ("a.txt", 5, "text/plain", "must be a string"),
    ],
)
def test_decode_attachment_refuses(
    filename: str, content: object, ctype: str, fragment: str
) -> None:
    with pytest.raises(AttachmentError) as info:
        decode_attachment(filename, content, ctype)  # type: ignore[arg-type]
    assert fragment in info.value.detail


def test_attachment_name_and_type_params_are_not_injectable() -> None:
    att = decode_attachment("a.txt", "eA==", 'text/plain; name="evil.exe"; charset=utf-8')
    assert att.content_type == "text/plain; charset=utf-8"
