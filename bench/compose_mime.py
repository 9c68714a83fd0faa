"""Benchmark: relaygate's byte-level MIME builder vs an email.message.EmailMessage baseline.

Prints one JSON line: messages per second on one core for a 2 KB text+html message and for the
same message with a 100 KB attachment.  Run: .venv/bin/python bench/compose_mime.py
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formataddr

from relaygate.compose.addresses import parse_mailbox
from relaygate.compose.mime import Attachment, build_message, format_date

rng = random.Random(42)
WORDS = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "café",
    "naïve",
    "résumé",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
]


def _paragraphs(size: int) -> str:
    out: list[str] = []
    n = 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(12))
        out.append(line)
        n += len(line) + 1
    return "\n".join(out)


TEXT = _paragraphs(1024)
HTML = (
    "<html><body>"
    + "".join(f"<p>{p}</p>" for p in _paragraphs(1024).split("\n"))
    + "</body></html>"
)
FROM = parse_mailbox("Acme Billing <billing@acme.example>")
TO = [parse_mailbox("Alex Doe <alex@example.com>")]
SUBJECT = "Your receipt #1042 — thanks for your purchase"
ATTACHMENT = Attachment(
    filename="receipt.pdf", content_type="application/pdf", data=os.urandom(100 * 1024)
)
DATE = 1_779_198_131.0


def ours(with_attachment: bool) -> bytes:
    return build_message(
        message_id="<msg_3f8c1b2e9a4d4b@mail.acme.example>",
        date=DATE,
        from_=FROM,
        to=TO,
        cc=[],
        reply_to=None,
        subject=SUBJECT,
        text=TEXT,
        html=HTML,
        headers={"X-Campaign": "receipts"},
        attachments=[ATTACHMENT] if with_attachment else [],
        hostname="mail.acme.example",
    )


def baseline(with_attachment: bool) -> bytes:
    msg = EmailMessage()
    msg["From"] = formataddr((FROM.display_name, FROM.addr_spec))
    msg["To"] = ", ".join(formataddr((b.display_name, b.addr_spec)) for b in TO)
    msg["Subject"] = SUBJECT
    msg["Date"] = format_date(DATE)
    msg["Message-ID"] = "<msg_3f8c1b2e9a4d4b@mail.acme.example>"
    msg["X-Campaign"] = "receipts"
    msg.set_content(TEXT)
    msg.add_alternative(HTML, subtype="html")
    if with_attachment:
        msg.add_attachment(
            ATTACHMENT.data, maintype="application", subtype="pdf", filename=ATTACHMENT.filename
        )
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def rate(fn: Callable[[bool], bytes], with_attachment: bool, seconds: float = 1.5) -> float:
    fn(with_attachment)
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(20):
            fn(with_attachment)
        count += 20
    return count / elapsed


def main() -> None:
    result = {
        "bench": "compose_mime",
        "message_bytes_2kb": len(ours(False)),
        "ours_2kb_text_html_per_s": round(rate(ours, False)),
        "baseline_2kb_text_html_per_s": round(rate(baseline, False)),
        "ours_100kb_attachment_per_s": round(rate(ours, True)),
        "baseline_100kb_attachment_per_s": round(rate(baseline, True)),
    }
    result["speedup_2kb"] = round(
        result["ours_2kb_text_html_per_s"] / result["baseline_2kb_text_html_per_s"], 1
    )
    result["speedup_100kb"] = round(
        result["ours_100kb_attachment_per_s"] / result["baseline_100kb_attachment_per_s"], 1
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
