"""Which recipient a report may change (``relaygate.bounces.inbound.bind``): only the one its
verified VERP token binds, found where that kind of report carries it; everything else binds
nobody, whatever the report says (fuzzed)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from relaygate.bounces.inbound import Binding, bind
from relaygate.bounces.parse import parse_message
from relaygate.bounces.verp import encode

SECRET = b"s" * 32
DOMAIN = "bounces.example.com"
MSG = "msg_0123456789abcdef0123456789abcdef"


def token(rid: int, message_id: str = MSG) -> str:
    return encode(message_id=message_id, recipient_id=rid, secret=SECRET, domain=DOMAIN)


def dsn(original: str = "") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.test\r\nSubject: Undelivered\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.test\r\n\r\n"
        "Final-Recipient: rfc822; r@dest.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\n{original}\r\nSubject: x\r\n\r\n--B--\r\n"
    ).encode()


def arf(fields: str = "", original: str = "") -> bytes:
    return (
        "From: fbl@isp.test\r\nSubject: report\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\r\n\r\n'
        "--F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
        f"Version: 1\r\n{fields}\r\n--F\r\nContent-Type: message/rfc822\r\n\r\n{original}"
        "Subject: x\r\n\r\nbody\r\n--F--\r\n"
    ).encode()


def binding(raw: bytes, *envelope: str, secret: bytes | None = SECRET) -> Binding:
    return bind(parse_message(raw), envelope_recipients=envelope, secret=secret, domains=[DOMAIN])


def test_a_dsn_is_bound_by_its_envelope_recipient_only() -> None:
    assert binding(dsn(), token(7)) == Binding(message_id=MSG, recipient_id=7)
    assert binding(dsn(), f"<{token(7).upper()}>") == Binding(message_id=MSG, recipient_id=7)
    inside = f"Return-Path: <{token(7)}>\r\nX-Postfix-Sender: rfc822; {token(7)}"
    assert binding(dsn(inside), f"postmaster@{DOMAIN}") == Binding(reason="no_token")
    assert binding(dsn(), token(7), secret=None) == Binding(reason="no_token")


def test_an_arf_is_bound_by_the_original_return_path_or_original_mail_from() -> None:
    want = Binding(message_id=MSG, recipient_id=9)
    fbl = f"fbl@{DOMAIN}"
    assert binding(arf(original=f"Return-Path: <{token(9)}>\r\n"), fbl) == want
    assert binding(arf(fields=f"Original-Mail-From: <{token(9)}>\r\n"), fbl) == want
    assert binding(arf(), token(9)) == want  # sent to the return path itself
    assert binding(arf(original=f"To: {token(9)}\r\n"), fbl) == Binding(reason="no_token")
    redacted = arf(fields="Original-Rcpt-To: redacted\r\n", original="Return-Path: <redacted>\r\n")
    assert binding(redacted, fbl) == Binding(reason="no_token")


def test_several_recipients_forged_and_message_level_tokens_bind_nobody() -> None:
    assert binding(dsn(), token(7), token(8)) == Binding(reason="ambiguous")
    assert binding(dsn(), token(7), token(7).upper()) == Binding(message_id=MSG, recipient_id=7)
    both = arf(
        fields=f"Original-Mail-From: <{token(8)}>\r\n", original=f"Return-Path: <{token(9)}>\r\n"
    )
    assert binding(both, f"fbl@{DOMAIN}") == Binding(reason="ambiguous")
    assert binding(dsn(), token(0)) == Binding(message_id=MSG, reason="message_token")
    local = token(7).partition("@")[0]
    forged = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + DOMAIN  # another MAC
    assert binding(dsn(), forged) == Binding(reason="bad_token")


_TEMPLATES = st.sampled_from(
    [
        lambda s: dsn(s),
        lambda s: arf(fields=s, original=s),
        lambda s: arf(fields=f"Original-Mail-From: {s}\r\n", original=f"Return-Path: {s}\r\n"),
        lambda s: s.encode("utf-8", "surrogatepass"),
    ]
)


@settings(max_examples=300, deadline=None)
@given(template=_TEMPLATES, text=st.text(max_size=400), other_msg=st.booleans())
def test_whatever_the_report_says_only_the_holders_token_binds(
    template: object, text: str, other_msg: bool
) -> None:
    """The attacker holds their own token (recipient 5) and writes anything else, including
    forged look-alikes of others' tokens: the report binds recipient 5 or nobody."""
    look_alike = token(6)[:-14] + "aaaaaaaaaaaaa@" + DOMAIN  # recipient 6, wrong MAC
    body = f"{text}\r\n{look_alike}\r\nb-{MSG[4:]}-6-zzzzzzzzzzzzz@{DOMAIN}"
    raw = template(body)  # type: ignore[operator]
    holder = token(5, "msg_" + "f" * 32 if other_msg else MSG)
    got = binding(raw, holder)
    assert got.recipient_id in (0, 5)
    if got.recipient_id == 5:
        assert got.message_id == ("msg_" + "f" * 32 if other_msg else MSG)
