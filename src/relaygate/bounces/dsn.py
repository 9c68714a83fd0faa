"""RFC 3464 delivery-status fields: per-message and per-recipient blocks, parsed leniently.

Owns turning the text of a `message/delivery-status` part (or DSN-style fields an MTA printed in
a plain-text part) into `DsnRecipient` values. Trusts nothing: missing blank lines between
blocks, folded lines, odd casing, address types other than rfc822, and junk are all tolerated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from relaygate.bounces.mimeparts import clean_address

_FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]{0,60})\s*:\s?(.*)$")
_STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d])")
_REPLY_RE = re.compile(r"(?<![\d.-])([245][0-9][0-9])(?:[ -]|$)")

_RECIPIENT_KEYS = frozenset({"final-recipient", "original-recipient", "x-actual-recipient"})
_PER_RECIPIENT = _RECIPIENT_KEYS | {
    "action",
    "status",
    "remote-mta",
    "diagnostic-code",
    "last-attempt-date",
    "will-retry-until",
    "final-log-id",
}
_MAX_LINES = 5000


@dataclass(frozen=True, kw_only=True)
class DsnRecipient:
    """One per-recipient block of a delivery-status report."""

    recipient: str
    original_recipient: str
    action: str
    status: str
    reply_code: int | None
    diagnostic: str
    diagnostic_type: str
    remote_mta: str


@dataclass(frozen=True, kw_only=True)
class DeliveryStatus:
    reporting_mta: str
    recipients: tuple[DsnRecipient, ...]


def find_status(text: str) -> str:
    """The first enhanced status code ("5.1.1") in `text`, or ""."""
    m = _STATUS_RE.search(text)
    if m is None:
        return ""
    return f"{m.group(1)}.{int(m.group(2))}.{int(m.group(3))}"


def find_reply_code(text: str) -> int | None:
    """The first basic SMTP reply code (4xx/5xx) in `text`, or None."""
    for m in _REPLY_RE.finditer(text):
        code = int(m.group(1))
        if code >= 400:
            return code
    return None


def _fields(text: str) -> list[list[tuple[str, str]]]:
    """Blocks of (lower-cased name, value) pairs; folded lines joined."""
    blocks: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for raw_line in text.splitlines()[:_MAX_LINES]:
        line = raw_line.rstrip()
        if not line.strip():
            if current:
                blocks.append(current)
                current = []
            continue
        if line[0] in " \t" and current:
            name, value = current[-1]
            current[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        m = _FIELD_RE.match(line)
        if m is None:
            continue
        current.append((m.group(1).lower(), m.group(2).strip()))
    if current:
        blocks.append(current)
    return blocks


def _split_recipients(block: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Split a block that holds several recipients because blank lines were missing."""
    groups: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in block:
        starts_new = name in _RECIPIENT_KEYS and name in seen
        if starts_new and current:
            groups.append(current)
            current, seen = [], set()
        current.append((name, value))
        seen.add(name)
    if current:
        groups.append(current)
    return groups


def parse_delivery_status(text: str) -> DeliveryStatus:
    """Parse delivery-status text. Never raises; unknown fields are ignored."""
    reporting_mta = ""
    recipients: list[DsnRecipient] = []
    for block in _fields(text):
        names = {name for name, _ in block}
        if not names & _RECIPIENT_KEYS:
            for name, value in block:
                if name == "reporting-mta" and not reporting_mta:
                    reporting_mta = _strip_type(value)
            continue
        for group in _split_recipients(block):
            for name, value in group:
                if name == "reporting-mta" and not reporting_mta:
                    reporting_mta = _strip_type(value)
            rec = _recipient(group)
            if rec is not None:
                recipients.append(rec)
    return DeliveryStatus(reporting_mta=reporting_mta, recipients=tuple(recipients))


def _strip_type(value: str) -> str:
    kind, sep, rest = value.partition(";")
    if sep and " " not in kind.strip():
        return rest.strip()
    return value.strip()


def _recipient(group: list[tuple[str, str]]) -> DsnRecipient | None:
    values: dict[str, str] = {}
    for name, value in group:
        if name in _PER_RECIPIENT and name not in values:
            values[name] = value
        elif name == "diagnostic-code" and values.get(name) != value:
            values[name] = f"{values[name]} {value}"
    final = clean_address(values.get("final-recipient", ""))
    original = clean_address(values.get("original-recipient", ""))
    actual = clean_address(values.get("x-actual-recipient", ""))
    recipient = final or actual or original
    if not recipient:
        return None
    diag_raw = values.get("diagnostic-code", "")
    diag_type, sep, diag_rest = diag_raw.partition(";")
    if sep and " " not in diag_type.strip() and len(diag_type) < 20:
        diagnostic, diagnostic_type = diag_rest.strip(), diag_type.strip().lower()
    else:
        diagnostic, diagnostic_type = diag_raw.strip(), ""
    status_field = values.get("status", "")
    status = find_status(status_field)
    diag_status = find_status(diagnostic)
    if (
        diag_status
        and (not status or status.endswith(".0.0"))
        and diag_status[0] == (status[:1] or diag_status[0])
    ):
        status = diag_status
    action = values.get("action", "").strip().lower().split(" ")[0] if values.get("action") else ""
    return DsnRecipient(
        recipient=recipient,
        original_recipient=original if original != recipient else (actual or ""),
        action=action,
        status=status,
        reply_code=find_reply_code(diagnostic),
        diagnostic=" ".join(diagnostic.split()),
        diagnostic_type=diagnostic_type,
        remote_mta=_strip_type(values.get("remote-mta", "")),
    )
