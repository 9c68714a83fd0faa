"""What a bounce or a complaint changes (pure): the recipient moves a parsed report asks for,
and the rule "a hard bounce or a complaint puts the address on the suppression list" (API.md §7).

The store applies these in one transaction (``Inbound.apply``, ``Queue.record``); it decides
none of them.
"""

from __future__ import annotations

from typing import Any

from relaygate.bounces.parse import RecipientResult, Report
from relaygate.store.models import ReportChange


def outcome_suppression(state: str, bounce_type: str, reason: str) -> str | None:
    """The suppression reason for a delivery outcome: a hard bounce suppresses its address."""
    if state == "bounced" and bounce_type == "hard":
        return reason or "undefined"
    return None


def report_changes(report: Report, address: str) -> list[ReportChange]:
    """The change one parsed report asks for, for the recipient its verified VERP token binds
    (``address`` is that recipient's): at most one, whatever addresses the report names.

    A complaint moves a delivered recipient to ``complained`` and suppresses the address. A
    bounce report's failed rows (delayed ones change nothing) apply through the row naming the
    recipient, else the first one (a forwarded copy fails under the name it was forwarded to;
    the token still says whose copy it was, and the event keeps the name reported): a delivered
    recipient moves to ``bounced``; a hard failure suppresses the address. Anything else (a
    delivery notice, an auto-reply) changes nothing."""
    if report.kind == "complaint":
        return [
            ReportChange(
                event_type="complaint",
                to_state="complained",
                data={
                    "feedback_type": report.feedback_type or "abuse",
                    "user_agent": report.user_agent,
                    "source_ip": report.source_ip,
                    "smtp_response": "",
                },
                suppress=("complaint", "complaint"),
            )
        ]
    if report.kind != "bounce":
        return []
    r = _failed_row(report, address)
    if r is None:
        return []
    data: dict[str, Any] = {
        "bounce_type": r.bounce_type,
        "status": r.status,
        "diagnostic": r.diagnostic,
        "reason": r.reason,
        "smtp_response": r.diagnostic,
        "remote_mta": r.remote_mta,
        "source": "dsn",
    }
    if r.recipient and r.recipient.lower() != address.lower():
        data["reported_recipient"] = r.recipient
    return [
        ReportChange(
            event_type="bounce",
            to_state="bounced",
            data=data,
            suppress=(r.reason or "undefined", "hard") if r.bounce_type == "hard" else None,
        )
    ]


def _failed_row(report: Report, address: str) -> RecipientResult | None:
    rows = [r for r in report.recipients if r.bounce_type and r.action != "delayed"]
    low = address.lower()
    for r in rows:
        if low in (r.recipient.lower(), r.original_recipient.lower()):
            return r
    return rows[0] if rows else None
