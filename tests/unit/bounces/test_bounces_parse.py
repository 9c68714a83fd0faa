"""parse_message(): DSN, ARF, prose bounces, auto-replies; never raises on any bytes."""

from __future__ import annotations

from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relaygate.bounces.parse import Report, parse_message

ORIGINAL = (
    b"From: App <app@sender.example>\r\n"
    b"To: Someone <Someone@Dest.Example>\r\n"
    b"Subject: hello\r\n"
    b"Message-ID: <abc123@sender.example>\r\n"
    b"X-SM-Message-Id: msg_0123456789abcdef0123456789abcdef\r\n"
    b"\r\n"
    b"body\r\n"
)


def _dsn(status_block: str, *, human: str = "Delivery failed.") -> bytes:
    head = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.sender.example>\r\n"
        "To: b-token@bounces.sender.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BB"\r\n\r\n'
        f"--BB\r\nContent-Type: text/plain\r\n\r\n{human}\r\n"
        "--BB\r\nContent-Type: message/delivery-status\r\n\r\n"
    )
    tail = "--BB\r\nContent-Type: message/rfc822\r\n\r\n"
    return (
        head.encode()
        + status_block.replace("\n", "\r\n").encode()
        + b"\r\n"
        + tail.encode()
        + ORIGINAL
        + b"--BB--\r\n"
    )


DSN_FIELDS = """Reporting-MTA: dns; mx.sender.example
Arrival-Date: Mon, 1 Jan 2024 00:00:00 +0000

Final-Recipient: rfc822; Someone@Dest.Example
Original-Recipient: rfc822; someone@dest.example
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.dest.example
Diagnostic-Code: smtp; 550 5.1.1 <someone@dest.example>: Recipient address
    rejected: User unknown in virtual mailbox table

Final-Recipient: rfc822; full@dest.example
Action: failed
Status: 5.2.2
Diagnostic-Code: smtp; 552 5.2.2 Mailbox full

Final-Recipient: rfc822; slow@dest.example
Action: delayed
Status: 4.4.1
Diagnostic-Code: smtp; connect to mx.dest.example: Connection timed out

Final-Recipient: rfc822; fine@dest.example
Action: delivered
Status: 2.0.0
"""


def test_rfc3464_report_gives_one_row_per_failed_or_delayed_recipient() -> None:
    report = parse_message(_dsn(DSN_FIELDS))
    assert report.kind == "bounce"
    assert report.reporting_mta == "mx.sender.example"
    rows = {r.recipient: r for r in report.recipients}
    assert set(rows) == {"someone@dest.example", "full@dest.example", "slow@dest.example"}
    first = rows["someone@dest.example"]
    assert (first.status, first.action, first.bounce_type, first.reason) == (
        "5.1.1",
        "failed",
        "hard",
        "userunknown",
    )
    assert "User unknown in virtual mailbox table" in first.diagnostic
    assert first.remote_mta == "mx.dest.example"
    assert (rows["full@dest.example"].bounce_type, rows["full@dest.example"].reason) == (
        "soft",
        "mailboxfull",
    )
    slow = rows["slow@dest.example"]
    assert (slow.action, slow.bounce_type) == ("delayed", "soft")


def test_original_headers_are_returned_for_correlation() -> None:
    report = parse_message(_dsn(DSN_FIELDS))
    assert report.original_message_id == "<abc123@sender.example>"
    assert report.original_headers["x-sm-message-id"] == "msg_0123456789abcdef0123456789abcdef"
    assert report.original_headers["subject"] == "hello"


def test_delivered_only_report_is_other() -> None:
    fields = "Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; a@b.example\nAction: delivered\nStatus: 2.0.0\n"
    report = parse_message(_dsn(fields))
    assert report.kind == "other"
    assert [r.reason for r in report.recipients] == ["delivered"]
    assert all(r.bounce_type == "" for r in report.recipients)


def test_missing_blank_lines_between_recipient_blocks() -> None:
    fields = (
        "Reporting-MTA: dns; mx\n\n"
        "Final-Recipient: rfc822; one@x.example\nAction: failed\nStatus: 5.1.1\n"
        "Final-Recipient: rfc822; two@x.example\nAction: failed\nStatus: 5.1.2\n"
    )
    report = parse_message(_dsn(fields))
    assert [(r.recipient, r.reason) for r in report.recipients] == [
        ("one@x.example", "userunknown"),
        ("two@x.example", "hostunknown"),
    ]


QMAIL = b"""From: MAILER-DAEMON@mx.example.net
To: b-token@bounces.sender.example
Subject: failure notice

Hi. This is the qmail-send program at mx.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<nobody@example.net>:
Sorry, no mailbox here by that name. (#5.1.1)

<full@example.net>:
192.0.2.1 does not like recipient.
Remote host said: 552 5.2.2 Mailbox quota exceeded
Giving up on 192.0.2.1.

--- Below this line is a copy of the message.

Return-Path: <b-token@bounces.sender.example>
From: app@sender.example
To: nobody@example.net
Message-ID: <q1@sender.example>
Subject: hi

hi
"""


def test_qmail_prose_bounce() -> None:
    report = parse_message(QMAIL)
    assert report.kind == "bounce"
    got = {r.recipient: (r.bounce_type, r.reason, r.status) for r in report.recipients}
    assert got == {
        "nobody@example.net": ("hard", "userunknown", "5.1.1"),
        "full@example.net": ("soft", "mailboxfull", "5.2.2"),
    }
    assert report.original_message_id == "<q1@sender.example>"


EXIM = b"""From: Mail Delivery System <Mailer-Daemon@mx.example.org>
To: b-token@bounces.sender.example
Subject: Mail delivery failed: returning message to sender
X-Failed-Recipients: gone@example.org
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  gone@example.org
    host mx.example.org [192.0.2.9]
    SMTP error from remote mail server after RCPT TO:<gone@example.org>:
    550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown

------ This is a copy of the message, including all the headers. ------

From: app@sender.example
To: gone@example.org
Subject: hi
"""


def test_exim_bounce_flagged_auto_replied_is_still_a_bounce() -> None:
    report = parse_message(EXIM)
    assert report.kind == "bounce"
    assert [(r.recipient, r.bounce_type) for r in report.recipients] == [
        ("gone@example.org", "hard")
    ]


VACATION = b"""From: Person <person@example.org>
To: app@sender.example
Subject: Out of Office: hello
Auto-Submitted: auto-replied
In-Reply-To: <abc123@sender.example>

I am away until Monday and cannot be reached. Your mail could not be delivered to me in person.
"""


def test_auto_reply_is_never_a_bounce() -> None:
    report = parse_message(VACATION)
    assert report.kind == "other"
    assert [(r.recipient, r.reason, r.bounce_type) for r in report.recipients] == [
        ("person@example.org", "vacation", "")
    ]


def _arf(*, with_rcpt: bool) -> bytes:
    report = MIMEMultipart("report", report_type="feedback-report")
    report["From"] = "fbl@isp.example"
    report["To"] = "fbl@sender.example"
    report["Subject"] = "FW: hello"
    report.attach(MIMEText("This is an email abuse report."))
    fields = (
        "Feedback-Type: abuse\nUser-Agent: SomeGenerator/1.0\nVersion: 1\n"
        "Original-Mail-From: <b-token@bounces.sender.example>\n"
        "Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT\nSource-IP: 192.0.2.1\n"
        "Reported-Domain: sender.example\n"
    )
    if with_rcpt:
        fields += "Original-Rcpt-To: <Complainer@ISP.example>\n"
    part = MIMEText("", "plain")
    part.replace_header("Content-Type", "message/feedback-report")
    part.set_payload(fields)
    report.attach(part)
    report.attach(MIMEMessage(__import__("email").message_from_bytes(ORIGINAL)))
    return report.as_bytes()


def test_arf_complaint_with_original_rcpt_to() -> None:
    report = parse_message(_arf(with_rcpt=True))
    assert report.kind == "complaint"
    assert [(r.recipient, r.reason) for r in report.recipients] == [
        ("complainer@isp.example", "feedback")
    ]
    assert (report.feedback_type, report.source_ip, report.user_agent) == (
        "abuse",
        "192.0.2.1",
        "SomeGenerator/1.0",
    )
    assert report.arrival_date.startswith("Thu, 8 Mar 2005")
    assert report.original_headers["x-sm-message-id"].startswith("msg_")


def test_arf_complaint_falls_back_to_returned_to() -> None:
    report = parse_message(_arf(with_rcpt=False))
    assert [r.recipient for r in report.recipients] == ["someone@dest.example"]


def test_plain_mail_is_other() -> None:
    report = parse_message(b"From: a@b.example\r\nTo: c@d.example\r\nSubject: hi\r\n\r\nhello\r\n")
    assert report == Report(kind="other", original_message_id="", recipients=())


def _check_invariants(report: Report) -> None:
    assert report.kind in {"bounce", "complaint", "other"}
    has_failure = any(r.bounce_type for r in report.recipients)
    assert has_failure == (report.kind == "bounce")
    for r in report.recipients:
        assert r.bounce_type in {"", "hard", "soft"}
        assert r.recipient == r.recipient.lower()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    _check_invariants(parse_message(raw))


_SAMPLES = [_dsn(DSN_FIELDS), QMAIL, EXIM, VACATION, _arf(with_rcpt=True)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(min_value=0, max_value=len(_SAMPLES) - 1),
    cut=st.integers(min_value=0, max_value=6000),
    junk=st.binary(max_size=40),
    at=st.integers(min_value=0, max_value=6000),
)
def test_mangled_reports_never_raise(which: int, cut: int, junk: bytes, at: int) -> None:
    raw = _SAMPLES[which][:cut]
    raw = raw[:at] + junk + raw[at:]
    _check_invariants(parse_message(raw))


@settings(max_examples=60, deadline=None)
@given(charset=st.sampled_from(["utf-8", "no-such-charset", "iso-2022-jp", "utf-16", "x-unknown"]))
def test_wrong_charsets_and_encodings(charset: str) -> None:
    raw = (
        b"From: MAILER-DAEMON@x.example\r\nSubject: Undeliverable\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=" + charset.encode() + b"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!not base64\xff\xfe\r\n"
    )
    _check_invariants(parse_message(raw))


def test_non_bytes_and_huge_nesting_do_not_raise() -> None:
    assert parse_message(b"text").kind == "other"
    nested = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n" + (
        b"--a\r\nContent-Type: message/rfc822\r\n\r\n" * 400
    )
    _check_invariants(parse_message(nested))


def _corpus_files() -> list[Path]:
    repo = Path(__file__).resolve().parents[3]
    for base in repo.parents:
        corpus = base / "shared" / "corpus"
        if corpus.is_dir():
            return sorted(p for p in corpus.rglob("*") if p.suffix in {".eml", ".txt"})
    return []


def test_truncated_corpus_files_never_raise() -> None:
    files = _corpus_files()
    if not files:
        pytest.skip("shared/corpus is not next to the repository")
    for path in files[::3]:
        data = path.read_bytes()
        for cut in (len(data) // 3, len(data) // 2, len(data) - 7):
            _check_invariants(parse_message(data[: max(cut, 0)]))
