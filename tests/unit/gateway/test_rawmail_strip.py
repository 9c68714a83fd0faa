"""The fields a submission may not hand on (Bcc, forged trace and authentication results) leave
the header block, each with its folded lines; everything else stays byte for byte."""

from __future__ import annotations

from email.parser import BytesHeaderParser

from hypothesis import given, settings
from hypothesis import strategies as st

from relaygate.gateway.rawmail import read_head, strip_fields

FORGED = (
    b"Return-Path: <ceo@bank.example>\r\n"
    b"DKIM-Signature: v=1; a=rsa-sha256; d=bank.example; s=s1;\r\n"
    b"\tb=AAAA; bh=BBBB\r\n"
    b"Authentication-Results: mx.dest.test; dkim=pass header.d=bank.example\r\n"
    b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=bank.example\r\n"
    b"ARC-Message-Signature: i=1; a=rsa-sha256; d=bank.example\r\n"
    b"ARC-Authentication-Results: i=1; mx.bank.example; spf=pass\r\n"
    b"Received-SPF: pass (bank.example: designates 192.0.2.1)\r\n"
    b"Resent-From: ceo@bank.example\r\n"
    b"Resent-To: r@dest.test\r\n"
    b"Resent-Bcc: hidden@dest.test\r\n"
)


def test_bcc_and_forged_fields_go_with_their_folded_lines() -> None:
    head = (
        b"From: App <app@example.com>\r\n"
        b"To: r@dest.test\r\n"
        b"bcc: hidden@dest.test,\r\n"
        b" other@dest.test\r\n" + FORGED + b"BCC : spaced@dest.test\r\n"
        b"Subject: Hello\r\n"
        b"X-Bcc-Note: stays\r\n"
        b"X-SM-Tags: a, b\r\n"
        b"Received: from client (client [192.0.2.9]) by mail.example.com\r\n"
    )
    kept, tags = strip_fields(head)
    assert kept == (
        b"From: App <app@example.com>\r\n"
        b"To: r@dest.test\r\n"
        b"Subject: Hello\r\n"
        b"X-Bcc-Note: stays\r\n"
        b"Received: from client (client [192.0.2.9]) by mail.example.com\r\n"
    )
    assert tags == [b" a, b\r\n"]


def test_every_line_break_the_parser_knows_separates_fields() -> None:
    for br in (b"\r\n", b"\n", b"\r"):
        head = b"To: r@dest.test" + br + b"Bcc: hidden@dest.test" + br + b"Subject: x" + br
        kept, _ = strip_fields(head)
        assert kept == b"To: r@dest.test" + br + b"Subject: x" + br
        assert BytesHeaderParser().parsebytes(kept + br).get("bcc") is None


def test_read_head_keeps_the_rest_untouched() -> None:
    body = b"\r\nBcc: in the body stays\r\nDKIM-Signature: so does this\r\n"
    block = read_head(b"From: a@example.com\r\nBcc: x@dest.test\r\n" + body)
    assert (block.head, block.rest) == (b"From: a@example.com\r\n", body)
    assert block.headers.get("bcc") is None


NAMES = [
    b"From",
    b"To",
    b"Subject",
    b"Bcc",
    b"bCC",
    b"Bcc ",
    b"Return-Path",
    b"DKIM-Signature",
    b"dkim-signature",
    b"Authentication-Results",
    b"ARC-Seal",
    b"arc-x",
    b"ARC-",
    b"Received-SPF",
    b"Resent-Date",
    b"RESENT-",
    b"X-SM-Tags",
    b"X-Bcc",
    b"Bcc x",
    b"Resent Date",
    b"ARC",
    b"",
]
BREAKS = [b"\r\n", b"\n", b"\r"]
line = st.one_of(
    st.tuples(
        st.sampled_from(NAMES),
        st.sampled_from([b":", b" :", b"\t:", b""]),
        st.binary(max_size=8).filter(lambda b: b"\r" not in b and b"\n" not in b),
    ),
    st.tuples(st.sampled_from([b" ", b"\t"]), st.just(b""), st.sampled_from([b"fold", b""])),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(line, st.sampled_from(BREAKS)), max_size=12))
def test_the_quick_search_agrees_with_the_line_by_line_pass(
    lines: list[tuple[tuple[bytes, bytes, bytes], bytes]],
) -> None:
    """Where the search finds nothing, the pass would remove nothing: a head led by an
    X-SM-Tags line always takes the pass, and gives the same head after that line."""
    head = b"".join(name + sep + value + br for (name, sep, value), br in lines)
    if head[:1] in (b" ", b"\t"):
        head = b"X: lead\r\n" + head
    kept, tags = strip_fields(head)
    forced_kept, forced_tags = strip_fields(b"X-SM-Tags: forced\r\n" + head)
    assert (kept, tags) == (forced_kept, forced_tags[1:])
    # and nothing that parses as a dropped field is left
    for name, _ in BytesHeaderParser().parsebytes(kept + b"\r\n\r\n").items():
        low = name.lower()
        assert low not in ("bcc", "return-path", "dkim-signature", "authentication-results")
        assert low != "received-spf" and not low.startswith(("arc-", "resent-"))
