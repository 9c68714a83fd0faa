"""What a submission may not hand on (issue 15 item 7): a Bcc field would show the blind
recipients to everyone, and a client's own trace and authentication-result fields are forged
claims. Both leave the message; the Bcc recipients stay in the envelope and get their copy."""

from __future__ import annotations

from email import message_from_bytes
from typing import Any

import aiosmtplib

from relaygate.store.sqlite import SqliteStore as Store

FORGED = (
    "Return-Path: <ceo@bank.example>\r\n"
    "DKIM-Signature: v=1; a=rsa-sha256; d=bank.example; s=s1; h=from;\r\n"
    "\tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n"
    "Authentication-Results: mx.dest.test; dkim=pass header.d=bank.example; spf=pass\r\n"
    "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=bank.example; s=arc; b=AAAA\r\n"
    "ARC-Message-Signature: i=1; a=rsa-sha256; d=bank.example; s=arc; b=AAAA\r\n"
    "ARC-Authentication-Results: i=1; mx.bank.example; dkim=pass\r\n"
    "Received-SPF: pass (bank.example: domain designates 192.0.2.1 as permitted sender)\r\n"
    "Resent-From: ceo@bank.example\r\n"
    "Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
)
DROPPED = (
    "bcc",
    "return-path",
    "dkim-signature",
    "authentication-results",
    "arc-seal",
    "arc-message-signature",
    "arc-authentication-results",
    "received-spf",
    "resent-from",
    "resent-date",
)


async def test_bcc_and_forged_fields_never_reach_the_recipients(
    gw: Any, store: Store, sender: dict[str, Any]
) -> None:
    message = (
        "From: App <app@example.com>\r\n"
        "To: r@dest.test\r\n"
        "Bcc: hidden@dest.test,\r\n secret@dest.test\r\n"
        f"{FORGED}"
        "Subject: Quarterly numbers\r\n"
        "X-SM-Tags: q3\r\n"
        "\r\n"
        "Hi.\r\nBcc: a line of the body is the body's business\r\n"
    )
    async with aiosmtplib.SMTP(
        hostname=gw.host, port=gw.port, local_hostname="client.test", timeout=10
    ) as client:
        await client.login("apikey", sender["secret"])
        errors, reply = await client.sendmail(
            "app@example.com",
            ["r@dest.test", "hidden@dest.test", "secret@dest.test"],
            message.encode(),
        )
    assert errors == {}
    msg_id = reply.rsplit(" ", 1)[1]
    body = store.messages.body(msg_id)
    delivered = message_from_bytes(body)
    assert [name for name in delivered if name.lower() in DROPPED] == []
    assert b"hidden@dest.test" not in body and b"bank.example" not in body
    assert delivered["Subject"] == "Quarterly numbers" and delivered["To"] == "r@dest.test"
    assert body.endswith(b"\r\n\r\nHi.\r\nBcc: a line of the body is the body's business\r\n")
    found = store.messages.get(msg_id)
    assert found is not None and found["tags"] == ["q3"]
    assert [(r["address"], r["kind"]) for r in found["recipients"]] == [
        ("r@dest.test", "to"),
        ("hidden@dest.test", "bcc"),
        ("secret@dest.test", "bcc"),
    ]
