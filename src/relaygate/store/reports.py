"""The store side of inbound reports: apply a parsed DSN / ARF report to the recipients it names.

Every change is a guarded transition with its event in the same transaction: a late DSN moves a
delivered recipient to ``bounced``; an ARF report moves it to ``complained``. A report about a
recipient still in flight (queued, deferred) records its ``bounce`` event without changing the
state; delivery attempts decide that. Hard bounces and complaints add the address to the
account's suppression list. A report that cannot be tied to a message is kept as an
``inbound_unmatched`` event (account 0) for the operator.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from relaygate.bounces.parse import RecipientResult, Report
from relaygate.store.spool import Store, add_suppression, insert_event, transition
from relaygate.store.states import State


def _target(
    conn: sqlite3.Connection, message_id: str, recipient_id: int, address: str
) -> sqlite3.Row | None:
    row: sqlite3.Row | None = None
    if recipient_id:
        row = conn.execute(
            "SELECT * FROM recipients WHERE id = ? AND message_id = ?", (recipient_id, message_id)
        ).fetchone()
    if row is None and address:
        row = conn.execute(
            "SELECT * FROM recipients WHERE message_id = ? AND address = ? COLLATE NOCASE",
            (message_id, address),
        ).fetchone()
    return row


def _only_recipient(conn: sqlite3.Connection, message_id: str) -> sqlite3.Row | None:
    rows = conn.execute("SELECT * FROM recipients WHERE message_id = ?", (message_id,)).fetchall()
    return rows[0] if len(rows) == 1 else None


def _apply(
    conn: sqlite3.Connection,
    *,
    inbound_id: str,
    report: Report,
    message_id: str | None,
    recipient_id: int,
    now: float,
) -> dict[str, Any]:
    if message_id is None:
        insert_event(
            conn,
            account_id=0,
            message_id=None,
            recipient_id=None,
            type_="inbound_unmatched",
            now=now,
            data={
                "inbound_id": inbound_id,
                "kind": report.kind,
                "recipients": [r.recipient for r in report.recipients][:20],
            },
        )
        return {"matched": False}
    message = conn.execute("SELECT account_id FROM messages WHERE id = ?", (message_id,)).fetchone()
    if message is None:
        insert_event(
            conn,
            account_id=0,
            message_id=None,
            recipient_id=None,
            type_="inbound_unmatched",
            now=now,
            data={"inbound_id": inbound_id, "kind": report.kind, "message_id": message_id},
        )
        return {"matched": False}
    account_id = message[0]
    applied = 0
    if report.kind == "complaint":
        results: Sequence[RecipientResult] = report.recipients or (RecipientResult(recipient=""),)
        for r in results:
            row = _target(conn, message_id, recipient_id, r.recipient) or _only_recipient(
                conn, message_id
            )
            if row is None:
                continue
            data = {
                "feedback_type": report.feedback_type or "abuse",
                "user_agent": report.user_agent,
                "source_ip": report.source_ip,
                "smtp_response": "",
                "inbound_id": inbound_id,
            }
            if State(row["state"]) is State.DELIVERED:
                transition(
                    conn,
                    recipient_id=row["id"],
                    src=State.DELIVERED,
                    dst=State.COMPLAINED,
                    now=now,
                    event_type="complaint",
                    data=data,
                )
            else:  # already bounced or complained: record the report, keep the state
                insert_event(
                    conn,
                    account_id=account_id,
                    message_id=message_id,
                    recipient_id=row["id"],
                    type_="complaint",
                    now=now,
                    data=data,
                )
            add_suppression(
                conn,
                account_id=account_id,
                address=row["address"],
                reason="complaint",
                source="complaint",
                bounce_type="complaint",
                event_id=None,
                now=now,
            )
            applied += 1
    elif report.kind == "bounce":
        for r in report.recipients:
            if not r.bounce_type or r.action == "delayed":
                continue
            row = _target(
                conn, message_id, recipient_id if len(report.recipients) == 1 else 0, r.recipient
            )
            if row is None and len(report.recipients) == 1:
                row = _target(conn, message_id, recipient_id, "") or _only_recipient(
                    conn, message_id
                )
            if row is None:
                continue
            data = {
                "bounce_type": r.bounce_type,
                "status": r.status,
                "diagnostic": r.diagnostic,
                "reason": r.reason,
                "smtp_response": r.diagnostic,
                "remote_mta": r.remote_mta,
                "source": "dsn",
                "inbound_id": inbound_id,
            }
            state = State(row["state"])
            if state is State.DELIVERED:
                transition(
                    conn,
                    recipient_id=row["id"],
                    src=state,
                    dst=State.BOUNCED,
                    now=now,
                    event_type="bounce",
                    data=data,
                )
            else:
                insert_event(
                    conn,
                    account_id=account_id,
                    message_id=message_id,
                    recipient_id=row["id"],
                    type_="bounce",
                    now=now,
                    data=data,
                )
            if r.bounce_type == "hard":
                add_suppression(
                    conn,
                    account_id=account_id,
                    address=row["address"],
                    reason=r.reason or "undefined",
                    source="bounce",
                    bounce_type="hard",
                    event_id=None,
                    now=now,
                )
            applied += 1
    return {"matched": True, "applied": applied, "account_id": account_id}


async def apply_report(
    store: Store, *, inbound_id: str, report: Report, message_id: str | None, recipient_id: int
) -> dict[str, Any]:
    """Apply one report and mark its inbound row processed, in one transaction."""
    now = store.clock.now()

    def fn(conn: sqlite3.Connection) -> dict[str, Any]:
        result = _apply(
            conn,
            inbound_id=inbound_id,
            report=report,
            message_id=message_id,
            recipient_id=recipient_id,
            now=now,
        )
        conn.execute("UPDATE inbound SET processed = 1 WHERE id = ?", (inbound_id,))
        return result

    result: dict[str, Any] = await store.writer.run(fn)
    return result


def message_by_header_id(store: Store, header_message_id: str) -> str | None:
    value = header_message_id.strip()
    if not value:
        return None
    if not value.startswith("<"):
        value = f"<{value}>"
    rows = store._read("SELECT id FROM messages WHERE header_message_id = ?", (value,))
    return rows[0][0] if rows else None
