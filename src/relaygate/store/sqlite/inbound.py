"""Inbound reports (SQLite): the ``inbound`` table of DSNs and feedback reports received over
SMTP (kept durably as bytes; nothing here parses them), and applying a parsed report's changes.

Every change is a guarded transition with its event in the same transaction: a late DSN moves a
delivered recipient to ``bounced``; an ARF report moves it to ``complained``. A report about a
recipient still in flight records its event without changing the state (delivery attempts
decide that). What a report changes, and whether it suppresses, is decided by ``bounces``
(``ReportChange``). A report that cannot be tied to a message is kept as an
``inbound_unmatched`` event (account 0) for the operator.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from relaygate.store.ids import new_inbound_id
from relaygate.store.models import InboundMessage, ReportChange
from relaygate.store.sqlite.core import Concern
from relaygate.store.sqlite.rows import add_suppression, insert_event, transition
from relaygate.store.states import State


class SqliteInbound(Concern):
    async def save(self, *, mail_from: str, rcpts: list[str], data: bytes, peer: str) -> str:
        """Commit one received message (group commit); returns its ``in_`` id after the commit."""
        inbound_id = new_inbound_id()
        now = self.clock.now()

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO inbound (id, received_at, mail_from, rcpts, peer, data) VALUES (?, ?, ?, ?, ?, ?)",
                (inbound_id, now, mail_from, json.dumps(rcpts), peer, data),
            )

        await self.writer.run(fn)
        return inbound_id

    def pending(self, *, limit: int = 100) -> list[InboundMessage]:
        """Unprocessed rows, oldest first."""
        rows = self._read(
            "SELECT * FROM inbound WHERE processed = 0 ORDER BY received_at, id LIMIT ?", (limit,)
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

    def mark_processed(self, inbound_id: str) -> bool:
        return bool(
            self._write(
                lambda c: (
                    c.execute(
                        "UPDATE inbound SET processed = 1 WHERE id = ? AND processed = 0",
                        (inbound_id,),
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
        changes: Sequence[ReportChange],
        unmatched: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Apply one report and mark its inbound row processed, in one transaction."""
        now = self.clock.now()

        def fn(conn: sqlite3.Connection) -> dict[str, Any]:
            result = _apply(
                conn,
                inbound_id=inbound_id,
                kind=kind,
                message_id=message_id,
                changes=changes,
                unmatched=unmatched or {},
                now=now,
            )
            conn.execute("UPDATE inbound SET processed = 1 WHERE id = ?", (inbound_id,))
            return result

        result: dict[str, Any] = await self.writer.run(fn)
        return result


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


def _unmatched(
    conn: sqlite3.Connection, inbound_id: str, kind: str, data: dict[str, Any], now: float
) -> dict[str, Any]:
    insert_event(
        conn,
        account_id=0,
        message_id=None,
        recipient_id=None,
        type_="inbound_unmatched",
        now=now,
        data={"inbound_id": inbound_id, "kind": kind, **data},
    )
    return {"matched": False}


def _apply(
    conn: sqlite3.Connection,
    *,
    inbound_id: str,
    kind: str,
    message_id: str | None,
    changes: Sequence[ReportChange],
    unmatched: dict[str, Any],
    now: float,
) -> dict[str, Any]:
    if message_id is None:
        return _unmatched(conn, inbound_id, kind, unmatched, now)
    message = conn.execute("SELECT account_id FROM messages WHERE id = ?", (message_id,)).fetchone()
    if message is None:
        return _unmatched(conn, inbound_id, kind, {"message_id": message_id}, now)
    account_id = message[0]
    applied = 0
    for change in changes:
        row = _target(conn, message_id, change.recipient_id, change.address)
        if row is None and change.only_fallback:
            row = _target(conn, message_id, change.recipient_id, "") or _only_recipient(
                conn, message_id
            )
        if row is None:
            continue
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
                account_id=account_id,
                message_id=message_id,
                recipient_id=row["id"],
                type_=change.event_type,
                now=now,
                data=data,
            )
        if change.suppress is not None:
            reason, bounce_type = change.suppress
            add_suppression(
                conn,
                account_id=account_id,
                address=row["address"],
                reason=reason,
                source=change.event_type,
                bounce_type=bounce_type,
                event_id=None,
                now=now,
            )
        applied += 1
    return {"matched": True, "applied": applied, "account_id": account_id}
