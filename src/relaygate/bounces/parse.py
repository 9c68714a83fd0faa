"""One inbound report message in, one `Report` out: bounce, complaint or other.

Owns the decision of what an inbound message to a VERP or feedback address is, and the
per-recipient results the lead records:

- a `message/feedback-report` part (RFC 5965) makes a **complaint** (reason `feedback`);
- `message/delivery-status` fields (RFC 3464, or the same fields printed in a text part) give
  one row per reported recipient; rows with Action `failed` or `delayed` are failures
  (`delayed` rows are kept, always soft, with action "delayed", so the caller can choose to
  ignore warnings); Action `delivered`/`relayed`/`expanded` only makes kind **other** (`delivered`);
- otherwise auto-replies (RFC 3834 headers, vacation subjects) are **other** (`vacation`), and
  anything that looks like a non-delivery report is scanned as prose (`relaygate.bounces.plain`).

kind is "bounce" exactly when at least one recipient row has a bounce_type ("hard"/"soft").
Rows of an "other" report have bounce_type "" and reason `vacation` or `delivered`.

Trusts nothing: `parse_message` never raises on any input bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from types import MappingProxyType
from typing import Literal

from relaygate.bounces.arf import FeedbackReport, parse_feedback_report
from relaygate.bounces.classify import (
    bounce_type_for,
    classify,
    command_in_text,
    derived_status,
    is_temporary,
    reason_from_text,
)
from relaygate.bounces.dsn import (
    DsnRecipient,
    find_reply_code,
    find_status,
    parse_delivery_status,
)
from relaygate.bounces.mimeparts import (
    addresses,
    clean_address,
    content_type,
    decode_value,
    header,
    headers,
    message_text,
    parse_bytes,
    part_text,
    payload_bytes,
)
from relaygate.bounces.plain import TextFailure, cut_returned, find_failures, is_delayed

Kind = Literal["bounce", "complaint", "other"]

#: Headers of the returned original worth handing to the caller for correlation.
INTERESTING_HEADERS = (
    "message-id",
    "x-sm-message-id",
    "to",
    "from",
    "subject",
    "date",
    "return-path",
)

_MAX_PARTS = 200
_FAILED_ACTIONS = frozenset({"failed", "delayed", "failure", "fail", "bounced", "expired"})
_OK_ACTIONS = frozenset({"delivered", "relayed", "expanded"})

_DSN_PARTS = frozenset({"message/delivery-status", "message/global-delivery-status"})
_ARF_PARTS = frozenset({"message/feedback-report"})
_RETURNED_PARTS = frozenset(
    {
        "message/rfc822",
        "message/global",
        "text/rfc822-headers",
        "message/rfc822-headers",
        "message/global-headers",
        "message/partial",
    }
)

_DAEMON_FROM_RE = re.compile(
    r"(?i)(?:mailer[-_ ]?daemon|postmaster|mail delivery (?:system|subsystem|service)|"
    r"mail ?administrator|mailer|system administrator|\bmta\b|delivery ?status|bounce|"
    r"nondelivery|microsoft outlook|mail system|daemon@)"
)
_BOUNCE_SUBJECT_RE = re.compile(
    r"(?i)(?:undeliver|undelivered|delivery (?:status )?(?:notification|failure|failed|report|problem)|"
    r"failure notice|returned mail|returned to sender|mail delivery failed|could not (?:be )?(?:deliver|send)|"
    r"delivery (?:has )?failed|non[- ]?deliver|failed delivery|mail system error|bounce|"
    r"warning: could not send|delayed mail|delivery delayed|unzustellbar|non remis|nicht zustellbar|"
    r"échec de la remise|no se puede entregar|mail failure|rejected|message not delivered|"
    r"error sending|not delivered|delivery error|undeliverable|returned message|permanent error|"
    r"mail could not|unable to deliver|nondeliverable|failed mail|message you sent|"
    r"notice of non-?delivery|delivery notification|returned|failure|fehler|erreur)"
)
_AUTO_SUBJECT_RE = re.compile(
    r"(?i)^\s*(?:(?:re|aw|fw|fwd)\s*:\s*)*(?:auto(?:matic)?[- ]?(?:reply|response|answer|antwort|"
    r"réponse|respuesta|risposta)|auto:|autoreply|out of (?:the )?office|vacation|"
    r"abwesenheit|absence|on leave|away from|i am away|i'm away|réponse automatique|"
    r"respuesta automática|risposta automatica|fuera de la oficina|abwesend|urlaub|"
    r"congés|\[auto)"
)
_BOUNCE_BODY_RE = re.compile(
    r"(?i)(?:could not be delivered|couldn't be delivered|was not delivered|undeliverable|"
    r"delivery (?:to the following|has failed|failed)|permanent (?:error|failure|fatal)|"
    r"following (?:address(?:es)?|recipients?)(?:\(\w+\))? (?:failed|could not|had)|"
    r"user unknown|unknown user|mailbox (?:full|unavailable)|no such (?:user|mailbox)|"
    r"unable to deliver|not (?:be )?delivered|did not reach|returned to you|"
    r"error (?:occurred|happened) while|delivery failure|message (?:could not|was rejected)|"
    r"remote (?:host|server) (?:said|replied|returned)|rejected your message|"
    r"i'm (?:afraid|sorry)|delivery (?:is|has been) delayed|will continue trying|"
    r"does not exist|not (?:yet )?been delivered|transcript of session|failed recipient)"
)


@dataclass(frozen=True, kw_only=True)
class RecipientResult:
    """What a report says about one recipient."""

    recipient: str
    status: str = ""
    action: str = ""
    bounce_type: str = ""
    reason: str = ""
    diagnostic: str = ""
    remote_mta: str = ""
    original_recipient: str = ""


@dataclass(frozen=True, kw_only=True)
class Report:
    """The parsed meaning of one inbound report message."""

    kind: Kind
    recipients: tuple[RecipientResult, ...] = ()
    original_message_id: str = ""
    original_headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    feedback_type: str = ""
    source_ip: str = ""
    user_agent: str = ""
    reporting_mta: str = ""
    arrival_date: str = ""
    #: A feedback report's Original-Mail-From: the original's envelope sender (its VERP address).
    original_mail_from: str = ""


@dataclass(kw_only=True)
class _Parts:
    dsn_texts: list[str] = field(default_factory=list)
    arf_texts: list[str] = field(default_factory=list)
    human_texts: list[str] = field(default_factory=list)
    returned: list[Message] = field(default_factory=list)


def parse_message(raw: bytes) -> Report:
    """Parse one inbound message. Never raises: anything unusable gives kind "other"."""
    try:
        return _parse(raw)
    except (Exception, RecursionError):
        return Report(kind="other")


def _parse(raw: bytes) -> Report:
    if not isinstance(raw, bytes | bytearray | memoryview):
        return Report(kind="other")
    msg = parse_bytes(bytes(raw)[:20_000_000])
    parts = _collect(msg)
    if not parts.dsn_texts and not parts.arf_texts:
        inner = _forwarded_report(parts)
        if inner is not None:
            msg, parts = inner, _collect(inner)
    original = _original_headers(parts)

    if parts.arf_texts:
        return _complaint(parse_feedback_report(parts.arf_texts[0]), original)

    human_prose, tail = cut_returned("\n".join(parts.human_texts))
    if not original and tail:
        original = _headers_from_text(tail)

    dsn_text = "\n\n".join(parts.dsn_texts)
    if not dsn_text and re.search(r"(?im)^\s*(?:final|original)-recipient\s*:", human_prose):
        dsn_text = human_prose
    status = parse_delivery_status(dsn_text) if dsn_text else None
    excluded, weak_excluded = _excluded_addresses(msg, original)

    if status is not None and status.recipients:
        rows, all_ok = _dsn_rows(status.recipients, human_prose, excluded | weak_excluded)
        if rows:
            return _report(
                kind="bounce",
                recipients=tuple(rows),
                reporting_mta=status.reporting_mta,
                original=original,
            )
        if all_ok:
            delivered = tuple(
                RecipientResult(
                    recipient=r.recipient,
                    status=r.status,
                    action=r.action,
                    reason="delivered",
                    diagnostic=r.diagnostic,
                    remote_mta=r.remote_mta,
                )
                for r in status.recipients
            )
            return _report(
                kind="other",
                recipients=delivered,
                reporting_mta=status.reporting_mta,
                original=original,
            )

    subject = header(msg, "Subject")
    sender = header(msg, "From")
    if _is_auto_reply(msg, subject, sender, human_prose, has_report=bool(parts.dsn_texts)):
        who = clean_address(sender)
        rows_other = (RecipientResult(recipient=who, reason="vacation"),) if who else ()
        return _report(kind="other", recipients=rows_other, original=original)

    if not _looks_like_bounce(
        msg,
        subject,
        sender,
        human_prose,
        has_report=bool(parts.dsn_texts),
        returned=bool(parts.returned),
    ):
        return _report(kind="other", original=original)

    failed_hint = [
        clean_address(a) for v in headers(msg, "X-Failed-Recipients") for a in v.split(",")
    ]
    failures = find_failures(
        human_prose,
        exclude=excluded,
        weak_exclude=weak_excluded,
        failed_hint=[a for a in failed_hint if a],
    )
    if not failures:
        to_addrs = [a.lower() for a in addresses(original.get("to", ""))]
        to_addrs = [a for a in dict.fromkeys(to_addrs) if a not in excluded | weak_excluded]
        if len(to_addrs) == 1:
            failures = [TextFailure(recipient=to_addrs[0], diagnostic="", strong=False)]
    if not failures:
        return _report(kind="other", original=original)
    delayed = is_delayed(subject + "\n" + human_prose)
    rows = [_text_row(f, human_prose, delayed=delayed) for f in failures]
    return _report(kind="bounce", recipients=tuple(rows), original=original)


# --- parts ---------------------------------------------------------------------------------------


def _collect(msg: Message) -> _Parts:
    found = _Parts()
    stack: list[tuple[Message, bool]] = [(msg, False)]
    count = 0
    while stack and count < _MAX_PARTS:
        part, inside = stack.pop()
        count += 1
        ctype = content_type(part)
        if not inside and ctype in _DSN_PARTS:
            found.dsn_texts.append(_report_text(part))
            continue
        if not inside and ctype in _ARF_PARTS:
            found.arf_texts.append(_report_text(part))
            continue
        if ctype in _RETURNED_PARTS:
            if not inside:
                found.returned.append(part)
            inside = True
        try:
            payload = part.get_payload()
        except Exception:
            payload = None
        if isinstance(payload, list):
            subs = [p for p in payload if isinstance(p, Message)]
            stack.extend((p, inside) for p in reversed(subs))
            continue
        if inside or part.is_multipart():
            continue
        if ctype.startswith("text/") or part is msg:
            found.human_texts.append(part_text(part))
    return found


def _forwarded_report(parts: _Parts) -> Message | None:
    """A report someone forwarded as an attachment (message/rfc822 holding multipart/report)."""
    for part in parts.returned[:3]:
        payload = _payload(part)
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            inner = payload[0]
            if content_type(inner) == "multipart/report":
                return inner
    return None


def _payload(part: Message) -> object:
    try:
        return part.get_payload()
    except Exception:
        return None


def _report_text(part: Message) -> str:
    try:
        payload = part.get_payload()
    except Exception:
        return ""
    if isinstance(payload, list):
        return "\n\n".join(message_text(p) for p in payload if isinstance(p, Message))
    return payload_bytes(part).decode("utf-8", "replace")


def _original_headers(parts: _Parts) -> dict[str, str]:
    for part in parts.returned:
        payload = _payload(part)
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            found = _interesting(payload[0])
        else:
            found = _headers_from_text(payload_bytes(part).decode("utf-8", "replace"))
        if found:
            return found
    return {}


def _headers_from_text(text: str) -> dict[str, str]:
    text = text.lstrip("\n")
    lines = text.splitlines()
    # Skip a marker line or two before the header block.
    for i in range(min(len(lines), 8)):
        if re.match(r"^[A-Za-z][A-Za-z0-9-]*:\s", lines[i]):
            text = "\n".join(lines[i:])
            break
    try:
        hdrs = HeaderParser(policy=compat32).parsestr(text[:200_000], headersonly=True)
    except Exception:
        return {}
    return _interesting(hdrs)


def _interesting(msg: Message) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        keys = list(msg.keys())
    except Exception:
        return out
    for key in keys:
        low = key.lower()
        if (low in INTERESTING_HEADERS or low.startswith("x-sm-")) and low not in out:
            value = decode_value(msg.get(key))
            if value:
                out[low] = value[:998]
    return out


def _excluded_addresses(msg: Message, original: Mapping[str, str]) -> tuple[set[str], set[str]]:
    """(never a failed recipient, not one when named in prose) for this message."""
    strict: set[str] = set()
    for name in ("From", "Sender", "Return-Path"):
        for value in headers(msg, name):
            strict.update(a.lower() for a in addresses(value))
    weak: set[str] = {a.lower() for a in addresses(original.get("from", ""))}
    for name in ("To", "Cc", "Reply-To", "Delivered-To", "X-Original-To"):
        for value in headers(msg, name):
            weak.update(a.lower() for a in addresses(value))
    return strict, weak - strict


# --- complaints ------------------------------------------------------------------------------------


def _report(
    *,
    kind: Kind,
    original: dict[str, str],
    recipients: tuple[RecipientResult, ...] = (),
    reporting_mta: str = "",
) -> Report:
    return Report(
        kind=kind,
        recipients=recipients,
        original_message_id=original.get("message-id", ""),
        original_headers=MappingProxyType(dict(original)),
        reporting_mta=reporting_mta,
    )


def _complaint(fb: FeedbackReport, original: dict[str, str]) -> Report:
    recipients = list(fb.original_rcpt_to)
    if not recipients:
        recipients = list(dict.fromkeys(a.lower() for a in addresses(original.get("to", ""))))
    rows = tuple(RecipientResult(recipient=r, reason="feedback") for r in recipients)
    return Report(
        kind="complaint",
        recipients=rows,
        feedback_type=fb.feedback_type,
        source_ip=fb.source_ip,
        user_agent=fb.user_agent,
        reporting_mta=fb.reporting_mta,
        arrival_date=fb.arrival_date,
        original_mail_from=fb.original_mail_from,
        original_message_id=original.get("message-id", ""),
        original_headers=MappingProxyType(dict(original)),
    )


# --- bounces ---------------------------------------------------------------------------------------


_TRANSCRIPT_RE = re.compile(
    r"(?im)^\s*>>>\s*(DATA|MAIL FROM|RCPT TO|EHLO|HELO)\b[^\n]*\n(?:\s*<<<\s*[23]\d\d[^\n]*\n)*"
    r"\s*<<<\s*([45]\d\d[^\n]{0,200})"
)


def _transcript_stages(prose: str) -> list[tuple[str, str]]:
    """(command, normalised reply) pairs from a Sendmail-style session transcript."""
    pairs = []
    for m in _TRANSCRIPT_RE.finditer(prose[:60_000]):
        reply = " ".join(m.group(2).split()).lower()
        command = m.group(1).upper().split(" ", 1)[0]
        pairs.append((command, reply[:60]))
    return pairs


def _command_from_transcript(diagnostic: str, stages: list[tuple[str, str]]) -> str:
    """The transcript command whose refusal is the one `diagnostic` quotes."""
    low = " ".join(diagnostic.split()).lower()
    for command, reply in stages:
        if reply and (reply in low or low[:60] in reply):
            return command
    return ""


def _dsn_rows(
    entries: tuple[DsnRecipient, ...], prose: str, excluded: set[str]
) -> tuple[list[RecipientResult], bool]:
    rows: list[RecipientResult] = []
    all_ok = True
    text_failures: dict[str, TextFailure] | None = None
    seen: set[str] = set()
    stages = _transcript_stages(prose) if ">>>" in prose else []
    for entry in entries:
        action = entry.action
        klass = entry.status[:1]
        if action in _OK_ACTIONS or (not action and klass == "2"):
            continue
        if action and action not in _FAILED_ACTIONS and klass not in {"4", "5"}:
            continue
        all_ok = False
        if entry.recipient in seen:
            continue
        seen.add(entry.recipient)
        diagnostic = entry.diagnostic
        if text_failures is None and (
            not diagnostic or reason_from_text(diagnostic) is None or prose.count("in reply to")
        ):
            text_failures = {
                f.recipient: f for f in find_failures(prose, exclude=excluded - {entry.recipient})
            }
        extra = None
        if text_failures:
            extra = text_failures.get(entry.recipient) or text_failures.get(
                entry.original_recipient
            )
            if extra is None and len(entries) == 1 and len(text_failures) == 1:
                extra = next(iter(text_failures.values()))
        command = command_in_text(diagnostic)
        if extra is not None:
            # Postfix puts the SMTP command only in the prose: it changes the meaning.
            command = command or command_in_text(extra.diagnostic)
            if (not diagnostic or reason_from_text(diagnostic) is None) and reason_from_text(
                extra.diagnostic
            ) is not None:
                diagnostic = f"{diagnostic} {extra.diagnostic}".strip()
        if stages and not command:
            command = _command_from_transcript(diagnostic, stages)
        status = entry.status
        if extra is not None and (not status or status.endswith(".0.0")):
            better = find_status(extra.diagnostic)
            if better and not better.endswith(".0.0") and better[0] == (status[:1] or better[0]):
                status = better
        if entry.diagnostic_type == "x-unix" and "x-unix" not in diagnostic.lower():
            diagnostic = f"X-Unix; {diagnostic}"
        delayed = action == "delayed"
        expired = action == "expired"
        rows.append(
            _row(
                recipient=entry.recipient,
                original=entry.original_recipient,
                action=action or "failed",
                status=status,
                reply_code=entry.reply_code or find_reply_code(diagnostic),
                diagnostic=diagnostic,
                remote_mta=entry.remote_mta,
                delayed=delayed,
                expired=expired,
                command=command,
            )
        )
    return rows, all_ok


def _text_row(failure: TextFailure, prose: str, *, delayed: bool) -> RecipientResult:
    diagnostic = failure.diagnostic
    if reason_from_text(diagnostic) is None:
        body = " ".join(prose.split())[:2000]
        if reason_from_text(body) is not None:
            diagnostic = f"{diagnostic} {body}".strip() if diagnostic else body
    status = find_status(diagnostic)
    return _row(
        recipient=failure.recipient,
        original="",
        action="delayed" if delayed else "failed",
        status=status,
        reply_code=find_reply_code(diagnostic),
        diagnostic=diagnostic,
        remote_mta="",
        delayed=delayed,
        command=command_in_text(failure.diagnostic) or command_in_text(prose),
    )


def _row(
    *,
    recipient: str,
    original: str,
    action: str,
    status: str,
    reply_code: int | None,
    diagnostic: str,
    remote_mta: str,
    delayed: bool,
    expired: bool = False,
    command: str = "",
) -> RecipientResult:
    if not status and reply_code is None and delayed:
        reply_code = 450
    temporary = delayed or expired or is_temporary(smtp_code=reply_code, status=status or None)
    result = classify(
        smtp_code=reply_code,
        status=status or None,
        diagnostic=diagnostic,
        command=command or None,
        gave_up=temporary and not delayed,
    )
    reason = result.reason
    if not status:
        explicit_temp = delayed or (reply_code is not None and 400 <= reply_code < 500)
        status = derived_status(reason, temporary=explicit_temp)
    return RecipientResult(
        recipient=recipient,
        status=status,
        action=action,
        bounce_type=bounce_type_for(reason, temporary=temporary),
        reason=reason,
        diagnostic=" ".join(diagnostic.split())[:1000],
        remote_mta=remote_mta,
        original_recipient=original,
    )


# --- kind signals ----------------------------------------------------------------------------------


def _is_auto_reply(
    msg: Message, subject: str, sender: str, prose: str, *, has_report: bool
) -> bool:
    if has_report:
        return False
    if _AUTO_SUBJECT_RE.search(subject):
        return True
    auto = header(msg, "Auto-Submitted").lower()
    flagged = (
        auto.startswith("auto-replied")
        or bool(header(msg, "X-Autoreply") or header(msg, "X-Autorespond"))
        or header(msg, "Precedence").lower() in {"auto_reply", "auto-reply"}
    )
    if not flagged:
        return False
    # Non-delivery reports are often flagged auto-replied too: a daemon sender or bounce
    # wording outweighs the flag.
    return not (_DAEMON_FROM_RE.search(sender) or _BOUNCE_SUBJECT_RE.search(subject))


def _looks_like_bounce(
    msg: Message, subject: str, sender: str, prose: str, *, has_report: bool, returned: bool
) -> bool:
    if has_report or headers(msg, "X-Failed-Recipients"):
        return True
    score = 0
    if _DAEMON_FROM_RE.search(sender):
        score += 2
    if _BOUNCE_SUBJECT_RE.search(subject):
        score += 1
    if _BOUNCE_BODY_RE.search(prose):
        score += 1
    if content_type(msg) == "multipart/report" or returned:
        score += 1
    return score >= 2 or (score >= 1 and not header(msg, "From"))
