"""ARF feedback reports (RFC 5965): the machine-readable `message/feedback-report` fields.

Owns turning the text of a feedback-report part into a `FeedbackReport`. The recipient that
complained is `Original-Rcpt-To` when the reporter gives it; otherwise the caller falls back to
the `To` of the returned message (reporters often redact or omit the field). Trusts nothing:
fields may be missing, repeated, folded or malformed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from relaygate.bounces.mimeparts import clean_address

_FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]{0,60})\s*:\s?(.*)$")
_IP_RE = re.compile(r"[0-9A-Fa-f:.]{3,45}")


@dataclass(frozen=True, kw_only=True)
class FeedbackReport:
    feedback_type: str
    user_agent: str
    source_ip: str
    arrival_date: str
    reporting_mta: str
    original_mail_from: str
    original_rcpt_to: tuple[str, ...]
    reported_domain: str


def parse_feedback_report(text: str) -> FeedbackReport:
    """Parse feedback-report fields. Never raises."""
    values: dict[str, str] = {}
    rcpts: list[str] = []
    last = ""
    for raw in text.splitlines()[:2000]:
        line = raw.rstrip()
        if not line.strip():
            continue
        if line[0] in " \t" and last:
            if last != "original-rcpt-to":
                values[last] = f"{values.get(last, '')} {line.strip()}".strip()
            continue
        m = _FIELD_RE.match(line)
        if m is None:
            continue
        name, value = m.group(1).lower(), m.group(2).strip()
        last = name
        if name == "original-rcpt-to":
            addr = clean_address(value)
            if addr and addr not in rcpts:
                rcpts.append(addr)
        elif name not in values:
            values[name] = value
    ip_match = _IP_RE.search(values.get("source-ip", ""))
    reporting = values.get("reporting-mta", "")
    if ";" in reporting:
        reporting = reporting.split(";", 1)[1].strip()
    return FeedbackReport(
        feedback_type=values.get("feedback-type", "").strip().lower(),
        user_agent=values.get("user-agent", ""),
        source_ip=ip_match.group(0) if ip_match else "",
        arrival_date=values.get("arrival-date", values.get("received-date", "")),
        reporting_mta=reporting,
        original_mail_from=clean_address(values.get("original-mail-from", "")),
        original_rcpt_to=tuple(rcpts),
        reported_domain=values.get("reported-domain", "").strip().lower(),
    )
