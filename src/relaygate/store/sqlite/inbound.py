"""Inbound reports (SQLite): the ``inbound`` table of DSNs and feedback reports received over
SMTP (kept durably as bytes; nothing here parses them), what became of each, and applying a
parsed report's change to the one recipient its verified VERP token binds.

The caller (``relaygate.bounces.inbound``) verified the token and ``bounces.changes`` decided the
change; this module trusts the message and recipient ids it is given and applies nothing a
report names. The change is a guarded transition with its event in the same transaction: a late
DSN moves a delivered recipient to ``bounced``, an ARF report to ``complained``; a recipient not
delivered (in flight, or already bounced) gets the event without a state change.

Outcomes (``inbound.status``, schema 9): ``applied`` (an event was recorded), ``ignored`` (bound
to a recipient, nothing to apply: a delay warning, a delivery notice, an auto-reply),
``unmatched`` (no recipient bound; ``reason`` says why; ``account_id`` only where a verified
token named the message), ``failed`` (could not be processed). Retention empties the bytes of
processed rows (``purge``); the row and its outcome stay.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from relaygate.store.ids import new_inbound_id
from relaygate.store.models import InboundMessage, InboundReport, ReportChange
from relaygate.store.sqlite.core import Concern
from relaygate.store.sqlite.rows import add_suppression, insert_event, transition
from relaygate.store.states import State

_REPORT_COLUMNS = (
    "id, received_at, peer, mail_from, rcpts, size, status, reason, kind, account_id,"
    " message_id, recipient_id, processed_at, purged_at"
)


class SqliteInbound(Concern):
    async def save(self, *, mail_from: str, rcpts: list[str], data: bytes, peer: str) -> str:
        """Commit one received message (group commit); returns its ``in_`` id after the commit."""
        inbound_id = new_inbound_id()
        now = self.clock.now()

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO inbound (id, received_at, mail_from, rcpts, peer, data, size)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (inbound_id, now, mail_from, json.dumps(rcpts), peer, data, len(data)),
            )

        await self.writer.run(fn)
        return inbound_id

    def pending(self, *, limit: int = 100) -> list[InboundMessage]:
        """Unprocessed rows, oldest first."""
        rows = self._read(
            "SELECT id, received_at, mail_from, rcpts, peer, data, processed FROM inbound"
            " WHERE processed = 0 ORDER BY received_at, id LIMIT ?",
            (limit,),
        )
        return [
            InboundMessage(
                id=r["id"],
                received_at=r["received_at"],
                mail_from=r["mail_from"],
                rcpts=tuple(json.loads(r["rcpts"])),
                peer=r["peer"],
                data=bytes(r["data"]),
                processed=bool(r["processed"]),
            )
            for r in rows
        ]

    def mark_failed(self, inbound_id: str) -> bool:
        now = self.clock.now()
        return bool(
            self._write(
                lambda c: (
                    c.execute(
                        "UPDATE inbound SET processed = 1, processed_at = ?, status = 'failed'"
                        " WHERE id = ? AND processed = 0",
                        (now, inbound_id),
                    ).rowcount
                )
            )
        )

    async def apply(
        self,
        *,
        inbound_id: str,
        kind: str,
        message_id: str | None,
        recipient_id: int,
        changes: Sequence[ReportChange],
        reason: str = "",
    ) -> dict[str, Any]:
        """Apply one report and record its outcome on its row, in one transaction."""
        now = self.clock.now()

        def fn(conn: sqlite3.Connection) -> dict[str, Any]:
            result = _apply(
                conn,
                inbound_id=inbound_id,
                message_id=message_id,
                recipient_id=recipient_id,
                changes=changes,
                reason=reason,
                now=now,
            )
            conn.execute(
                "UPDATE inbound SET processed = 1, processed_at = ?, status = ?, reason = ?,"
                " kind = ?, account_id = ?, message_id = ?, recipient_id = ? WHERE id = ?",
                (
                    now,
                    result["status"],
                    result["reason"],
                    kind,
                    result["account_id"],
                    result["message_id"],
                    result["recipient_id"],
                    inbound_id,
                ),
            )
            return result

        result: dict[str, Any] = await self.writer.run(fn)
        return result

    async def purge(self, *, older_than: float, limit: int = 500) -> int:
        now = self.clock.now()

        def fn(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE inbound SET data = x'', purged_at = ? WHERE id IN (SELECT id FROM inbound"
                " WHERE processed = 1 AND purged_at IS NULL AND processed_at < ? LIMIT ?)",
                (now, older_than, limit),
            ).rowcount

        count: int = await self.writer.run(fn)
        return count

    def reports(
        self, *, statuses: Sequence[str] = (), account_id: int | None = None, limit: int = 100
    ) -> list[InboundReport]:
        where: list[str] = []
        params: list[Any] = []
        if statuses:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params.extend(statuses)
        if account_id is not None:
            where.append("account_id = ?")
            params.append(account_id)
        sql = (
            f"SELECT {_REPORT_COLUMNS} FROM inbound"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY received_at DESC, id DESC LIMIT ?"
        )
        return [_report(r) for r in self._read(sql, (*params, limit))]

    def report(self, inbound_id: str) -> tuple[InboundReport, bytes] | None:
        rows = self._read(
            f"SELECT {_REPORT_COLUMNS}, data FROM inbound WHERE id = ?", (inbound_id,)
        )
        return (_report(rows[0]), bytes(rows[0]["data"])) if rows else None

    def counts(self) -> dict[int | None, dict[str, int]]:
        out: dict[int | None, dict[str, int]] = {}
        for r in self._read(
            "SELECT account_id, status, COUNT(*) AS n FROM inbound GROUP BY account_id, status"
        ):
            out.setdefault(r["account_id"], {})[r["status"]] = r["n"]
        return out


def _report(r: sqlite3.Row) -> InboundReport:
    return InboundReport(
        id=r["id"],
        received_at=r["received_at"],
        peer=r["peer"],
        mail_from=r["mail_from"],
        rcpts=tuple(json.loads(r["rcpts"])),
        size=r["size"],
        status=r["status"],
        reason=r["reason"],
        kind=r["kind"],
        account_id=r["account_id"],
        message_id=r["message_id"],
        recipient_id=r["recipient_id"],
        processed_at=r["processed_at"],
        purged=r["purged_at"] is not None,
    )


def _apply(
    conn: sqlite3.Connection,
    *,
    inbound_id: str,
    message_id: str | None,
    recipient_id: int,
    changes: Sequence[ReportChange],
    reason: str,
    now: float,
) -> dict[str, Any]:
    account_id: int | None = None
    if message_id:
        message = conn.execute(
            "SELECT account_id FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        account_id = message[0] if message is not None else None
    row: sqlite3.Row | None = None
    if not reason and message_id and recipient_id:
        row = conn.execute(
            "SELECT * FROM recipients WHERE id = ? AND message_id = ?", (recipient_id, message_id)
        ).fetchone()
        if row is None:
            reason = "unknown_recipient"
    if row is None:
        return {
            "status": "unmatched",
            "reason": reason or "no_token",
            "account_id": account_id,
            "message_id": message_id if account_id is not None else None,
            "recipient_id": None,
        }
    for change in changes:
        data = {**change.data, "inbound_id": inbound_id}
        if State(row["state"]) is State.DELIVERED:
            transition(
                conn,
                recipient_id=row["id"],
                src=State.DELIVERED,
                dst=State(change.to_state),
                now=now,
                event_type=change.event_type,
                data=data,
            )
        else:  # in flight, or already bounced / complained: record the report, keep the state
            insert_event(
                conn,
                account_id=row["account_id"],
                message_id=message_id,
                recipient_id=row["id"],
                type_=change.event_type,
                now=now,
                data=data,
            )
        if change.suppress is not None:
            suppress_reason, bounce_type = change.suppress
            add_suppression(
                conn,
                account_id=row["account_id"],
                address=row["address"],
                reason=suppress_reason,
                source=change.event_type,
                bounce_type=bounce_type,
                event_id=None,
                now=now,
            )
    return {
        "status": "applied" if changes else "ignored",
        "reason": "",
        "account_id": row["account_id"],
        "message_id": message_id,
        "recipient_id": row["id"],
    }
