"""Tolerant MIME access for inbound reports: parse bytes, decode headers and text parts.

Owns the only use of the stdlib `email` package in `relaygate.bounces`. Everything here trusts
nothing: the input comes from any host on the internet, may be truncated, mis-encoded or not MIME
at all, and every helper returns something usable (possibly empty) instead of raising.
"""

from __future__ import annotations

import re
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from email.policy import compat32

_ADDR_RE = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}"
)

_HTML_TAG_RE = re.compile(r"<[^>]{0,2000}>")
_HTML_SKIP_RE = re.compile(r"(?is)<(script|style)\b.*?</\1\s*>")
_HTML_BREAK_RE = re.compile(r"(?i)<\s*(?:br|/p|/div|/tr|/li|/h\d)\b[^>]*>")
_ENTITY = {"&nbsp;": " ", "&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": '"', "&#39;": "'"}


def parse_bytes(raw: bytes) -> Message:
    """Parse raw bytes into a Message (compat32: the most forgiving policy)."""
    raw = raw.replace(b"\r\n", b"\n")
    return message_from_bytes(raw, policy=compat32)


def header(msg: Message, name: str) -> str:
    """The decoded value of header `name`, or "" (RFC 2047 words decoded, errors replaced)."""
    try:
        value = msg.get(name)
    except Exception:
        return ""
    return decode_value(value)


def headers(msg: Message, name: str) -> list[str]:
    """All decoded values of header `name`."""
    try:
        values = msg.get_all(name) or []
    except Exception:
        return []
    return [decode_value(v) for v in values]


def decode_value(value: object) -> str:
    """Turn a compat32 header value (str or Header) into text, never raising."""
    if value is None:
        return ""
    try:
        text = str(value)
    except Exception:
        return ""
    if "=?" in text:
        try:
            text = str(make_header(decode_header(text)))
        except Exception:
            pass
    return " ".join(text.split())


def content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:
        return "text/plain"


def _charset(part: Message) -> str:
    try:
        cs = part.get_content_charset() or "utf-8"
    except Exception:
        cs = "utf-8"
    return cs


def payload_bytes(part: Message) -> bytes:
    """The decoded body bytes of a non-multipart part (transfer encoding undone, tolerant)."""
    try:
        payload = part.get_payload()
    except Exception:
        return b""
    if isinstance(payload, list):
        # message/* parts parsed into sub-messages: serialise them back.
        out: list[bytes] = []
        for sub in payload:
            if isinstance(sub, Message):
                out.append(message_text(sub).encode("utf-8", "replace"))
        return b"\n".join(out)
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    return payload.encode("utf-8", "replace") if isinstance(payload, str) else b""


def decode_bytes(data: bytes, charset: str) -> str:
    """Decode bytes with the declared charset, falling back to utf-8 then latin-1."""
    for cs in (charset, "utf-8"):
        try:
            return data.decode(cs)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1", "replace")


def part_text(part: Message) -> str:
    """The text of a leaf part, decoded; HTML reduced to text."""
    text = decode_bytes(payload_bytes(part), _charset(part))
    if content_type(part) == "text/html":
        text = html_to_text(text)
    return text


def html_to_text(html: str) -> str:
    """A crude, dependency-free HTML-to-text (only wording matters here, not layout)."""
    text = _HTML_SKIP_RE.sub(" ", html)
    text = _HTML_BREAK_RE.sub("\n", text)
    text = _HTML_TAG_RE.sub(" ", text)
    for entity, char in _ENTITY.items():
        text = text.replace(entity, char)
    return text


def message_text(msg: Message) -> str:
    """A header block as text (for rfc822-headers and delivery-status blocks parsed as Messages)."""
    lines = []
    try:
        for key, value in msg.items():
            lines.append(f"{key}: {decode_value(value)}")
    except Exception:
        pass
    try:
        payload = msg.get_payload()
    except Exception:
        payload = None
    text = "\n".join(lines)
    if isinstance(payload, str) and payload.strip():
        text += "\n\n" + payload
    return text


def addresses(text: str) -> list[str]:
    """Every addr-spec-looking string in `text`, in order."""
    return [m.group(0) for m in _ADDR_RE.finditer(text)]


def first_address(text: str) -> str:
    found = _ADDR_RE.search(text)
    return found.group(0) if found else ""


def clean_address(value: str) -> str:
    """The addr-spec in a header/field value ("rfc822; <A@B.example>" → "a@b.example"), or ""."""
    value = value.strip()
    if ";" in value:
        kind, _, rest = value.partition(";")
        if " " not in kind.strip() and "@" not in kind:
            value = rest
    addr = first_address(value)
    return addr.strip(".").lower()
