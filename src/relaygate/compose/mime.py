"""MIME building (placeholder built on the stdlib until the fast path lands)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

from relaygate.compose.addresses import Mailbox

OWNED_HEADERS = frozenset(
    h.lower()
    for h in (
        "From",
        "To",
        "Cc",
        "Bcc",
        "Subject",
        "Date",
        "Message-ID",
        "Sender",
        "Return-Path",
        "Received",
        "DKIM-Signature",
        "MIME-Version",
    )
)


class HeaderError(ValueError):
    pass


class AttachmentError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str


def validate_headers(headers: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise HeaderError("header names and values must be strings")
        if any(c in name + value for c in "\r\n"):
            raise HeaderError(f"header {name!r} contains CR or LF")
        if name.lower() in OWNED_HEADERS or name.lower().startswith("content-"):
            raise HeaderError(f"header {name!r} is set by relaygate and cannot be given")
        out[name] = value
    return out


def _fmt(m: Mailbox) -> Address:
    local, _, domain = m.addr_spec.rpartition("@")
    return Address(display_name=m.display_name, username=local, domain=domain)


def build_message(
    *,
    message_id: str,
    date: float,
    from_: Mailbox,
    to: Sequence[Mailbox],
    cc: Sequence[Mailbox],
    reply_to: Mailbox | None,
    subject: str,
    text: str | None,
    html: str | None,
    headers: Mapping[str, str],
    attachments: Sequence[Attachment],
    hostname: str,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = _fmt(from_)
    if to:
        msg["To"] = [_fmt(m) for m in to]
    if cc:
        msg["Cc"] = [_fmt(m) for m in cc]
    if reply_to:
        msg["Reply-To"] = _fmt(reply_to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(date, usegmt=True)
    msg["Message-ID"] = message_id
    for k, v in headers.items():
        msg[k] = v
    if text is not None:
        msg.set_content(text)
    if html is not None:
        if text is not None:
            msg.add_alternative(html, subtype="html")
        else:
            msg.set_content(html, subtype="html")
    for a in attachments:
        maintype, _, subtype = a.content_type.partition("/")
        msg.add_attachment(a.content, maintype=maintype, subtype=subtype, filename=a.filename)
    return msg.as_bytes(policy=SMTP)
