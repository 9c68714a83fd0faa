"""What a bounce or a complaint changes (pure): the recipient moves a parsed report asks for,
and the rule "a hard bounce or a complaint puts the address on the suppression list" (API.md §7).

The store applies these in one transaction (``Inbound.apply``, ``Queue.record``); it decides
none of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from relaygate.bounces.parse import RecipientResult, Report
from relaygate.store.models import ReportChange


def outcome_suppression(state: str, bounce_type: str, reason: str) -> str | None:
    """The suppression reason for a delivery outcome: a hard bounce suppresses its address."""
    if state == "bounced" and bounce_type == "hard":
        return reason or "undefined"
    return None


def report_changes(report: Report, recipient_id: int) -> list[ReportChange]:
    """The changes one parsed report asks for. ``recipient_id`` is the recipient a verified VERP
    token named (0: none), which the store tries first.

    A complaint names its recipient(s), or none (then the message's only recipient); it moves a
    delivered recipient to ``complained`` and suppresses the address. A bounce report's failed
    recipients (delayed ones change nothing) move a delivered recipient to ``bounced``; a hard
    one suppresses the address."""
    if report.kind == "complaint":
        results: Sequence[RecipientResult] = report.recipients or (RecipientResult(recipient=""),)
        data = {
            "feedback_type": report.feedback_type or "abuse",
            "user_agent": report.user_agent,
            "source_ip": report.source_ip,
            "smtp_response": "",
        }
        return [
            ReportChange(
                event_type="complaint",
                to_state="complained",
                address=r.recipient,
                recipient_id=recipient_id,
                only_fallback=True,
                data=data,
                suppress=("complaint", "complaint"),
            )
            for r in results
        ]
    if report.kind != "bounce":
        return []
    single = len(report.recipients) == 1
    changes = []
    for r in report.recipients:
        if not r.bounce_type or r.action == "delayed":
            continue
        changes.append(
            ReportChange(
                event_type="bounce",
                to_state="bounced",
                address=r.recipient,
                recipient_id=recipient_id if single else 0,
                only_fallback=single,
                data={
                    "bounce_type": r.bounce_type,
                    "status": r.status,
                    "diagnostic": r.diagnostic,
                    "reason": r.reason,
                    "smtp_response": r.diagnostic,
                    "remote_mta": r.remote_mta,
                    "source": "dsn",
                },
                suppress=(r.reason or "undefined", "hard") if r.bounce_type == "hard" else None,
            )
        )
    return changes
