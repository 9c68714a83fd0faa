"""The audit log of management actions (SQLite): one row per action, read per account newest
first. Nothing here decides what is audited: ``relaygate.manage`` appends after each action."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from relaygate.store.models import AuditEntry
from relaygate.store.sqlite.core import Concern


def _entry(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        account_id=row["account_id"],
        actor=row["actor"],
        action=row["action"],
        target=row["target"],
        address=row["address"],
        created_at=row["created_at"],
        detail=json.loads(row["detail"]),
    )


class SqliteAudit(Concern):
    def append(
        self,
        account_id: int,
        *,
        actor: str,
        action: str,
        target: str,
        address: str = "",
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        now = self.clock.now()
        text = json.dumps(detail or {}, sort_keys=True)

        def insert(c: sqlite3.Connection) -> int:
            cur = c.execute(
                "INSERT INTO audit_log (account_id, actor, action, target, address, detail, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (account_id, actor, action, target, address, text, now),
            )
            return int(cur.lastrowid or 0)

        new_id = self._write(insert)
        return AuditEntry(
            id=new_id,
            account_id=account_id,
            actor=actor,
            action=action,
            target=target,
            address=address,
            created_at=now,
            detail=json.loads(text),
        )

    def list(
        self, account_id: int, *, limit: int = 50, before: int | None = None
    ) -> list[AuditEntry]:
        rows = self._read(
            "SELECT * FROM audit_log WHERE account_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (account_id, before if before is not None else 2**62, limit),
        )
        return [_entry(r) for r in rows]
