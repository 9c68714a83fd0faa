"""Reports mailed back over SMTP: an asynchronous DSN to the VERP return path becomes a bounce of the
right message and recipient; an ARF report to the feedback address whose returned original keeps
its Return-Path (the recipient's VERP address) becomes a complaint; both suppress the address.
Driven against a real `relaygate serve` with smtplib."""

from __future__ import annotations

import smtplib
import time
from pathlib import Path
from typing import Any

import httpx

from relaygate.store.sqlite import SqliteStore as Store
from relaygate.testing.process import RelaygateProcess


def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def dsn(verp: str, recipient: str, original_id: str) -> bytes:
    return f"""From: MAILER-DAEMON@mx.dest.test
To: {verp}
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.dest.test

Final-Recipient: rfc822; {recipient}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown in virtual mailbox table

--B
Content-Type: message/rfc822

Message-ID: {original_id}
Subject: Hello

--B--
""".replace("\n", "\r\n").encode()


def arf(recipient: str, original_id: str, return_path: str) -> bytes:
    return f"""From: feedback@isp.test
To: fbl@bounces.relay.test
Subject: Abuse report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="F"

--F
Content-Type: text/plain

This is an email abuse report.

--F
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ISP-FBL/1.0
Version: 1
Original-Rcpt-To: {recipient}
Source-IP: 192.0.2.1

--F
Content-Type: message/rfc822

Return-Path: <{return_path}>
From: a@example.com
To: {recipient}
Message-ID: {original_id}
Subject: Hello

--F--
""".replace("\n", "\r\n").encode()


def test_dsn_and_arf_over_smtp(tmp_path: Path) -> None:
    rg = RelaygateProcess(tmp_path)
    rg.init()
    rg.cli("account", "create", "acme", "--plan", "paid")
    rg.cli("identity", "add", "--account", "1", "a@example.com", "--verified")
    secret = rg.cli(
        "key", "create", "--account", "1", "--scope", "email:send", "--scope", "email:read"
    )["key"]
    with rg:
        sent = httpx.post(
            f"{rg.http_url}/v1/send",
            headers={"X-API-Key": secret},
            json={
                "from_email": "a@example.com",
                "to": ["gone@dest.test"],
                "subject": "Hello",
                "text": "hi",
            },
        ).json()
        sent2 = httpx.post(
            f"{rg.http_url}/v1/send",
            headers={"X-API-Key": secret},
            json={
                "from_email": "a@example.com",
                "to": ["angry@dest.test"],
                "subject": "Hello",
                "text": "hi",
            },
        ).json()
        eml = rg.capture_dir / f"{sent['id']}.eml"
        wait_for(lambda: eml.exists() and (rg.capture_dir / f"{sent2['id']}.eml").exists())
        head = eml.read_bytes().split(b"\r\n\r\n", 1)[0].decode()
        verp = head.split("Return-Path: <", 1)[1].split(">", 1)[0]
        assert verp.startswith("b-") and verp.endswith("@bounces.relay.test")
        message_id = next(
            line.split(": ", 1)[1]
            for line in head.split("\r\n")
            if line.lower().startswith("message-id:")
        )
        head2 = (
            (rg.capture_dir / f"{sent2['id']}.eml").read_bytes().split(b"\r\n\r\n", 1)[0].decode()
        )
        verp2 = head2.split("Return-Path: <", 1)[1].split(">", 1)[0]
        message_id2 = next(
            line.split(": ", 1)[1]
            for line in head2.split("\r\n")
            if line.lower().startswith("message-id:")
        )
        host, port = rg.smtp_addresses[0]
        with smtplib.SMTP(host, port, local_hostname="mx.dest.test", timeout=10) as smtp:
            smtp.sendmail("", [verp], dsn(verp, "gone@dest.test", message_id))
            smtp.sendmail(
                "feedback@isp.test",
                ["fbl@bounces.relay.test"],
                arf("angry@dest.test", message_id2, verp2),
            )
            # Anything else from an unauthenticated peer is refused: never an open relay.
            try:
                smtp.sendmail(
                    "x@isp.test", ["victim@elsewhere.test"], b"Subject: spam\r\n\r\nx\r\n"
                )
                raise AssertionError("relayed")
            except smtplib.SMTPRecipientsRefused as exc:
                assert exc.recipients["victim@elsewhere.test"][0] == 554
        store = Store(rg.state_dir / "relaygate.sqlite3").open()
        try:
            wait_for(
                lambda: (
                    [r.state for r in store.messages.recipients(sent["id"])] == ["bounced"]
                    and [r.state for r in store.messages.recipients(sent2["id"])] == ["complained"]
                )
            )
            bounce = next(
                e
                for e in store.messages.events_after(0)
                if e.type == "bounce" and e.message_id == sent["id"]
            )
            assert bounce.data["bounce_type"] == "hard" and bounce.data["reason"] == "userunknown"
            assert bounce.data["status"] == "5.1.1" and bounce.state_from == "delivered"
            complaint = next(e for e in store.messages.events_after(0) if e.type == "complaint")
            assert (
                complaint.message_id == sent2["id"] and complaint.data["feedback_type"] == "abuse"
            )
            assert store.suppressions.lookup(1, ["gone@dest.test", "angry@dest.test"]) == {
                "gone@dest.test": "userunknown",
                "angry@dest.test": "complaint",
            }
        finally:
            store.close()
        # The next send to a suppressed address is not attempted.
        again = httpx.post(
            f"{rg.http_url}/v1/send",
            headers={"X-API-Key": secret},
            json={
                "from_email": "a@example.com",
                "to": ["gone@dest.test"],
                "subject": "Hello",
                "text": "hi",
            },
        ).json()
        shown = httpx.get(
            f"{rg.http_url}/v1/messages/{again['id']}", headers={"X-API-Key": secret}
        ).json()
        assert shown["recipients"][0]["state"] == "suppressed"
