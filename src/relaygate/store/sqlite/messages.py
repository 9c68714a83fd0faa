"""The read side of messages (SQLite): a message with its recipients and events, the cursor-
paged search, the stored bodies, and the event stream after an id."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from relaygate.store.models import Event, MessageView, Recipient
from relaygate.store.sqlite.core import Concern
from relaygate.store.sqlite.rows import row_event, row_recipient

#: A filter matching at most this many rows drives the search (see ``search``): about where
#: sorting its matches costs what walking 100,000 messages to fill a page with them would
#: (matches² ≈ 50 × messages; measured in bench/dashboard.py).
DRIVE_LIMIT = 2_000


class SqliteMessages(Concern):
    def _count(self, sub: str, params: Sequence[Any]) -> int:
        """How many rows ``sub`` gives, counted up to ``DRIVE_LIMIT + 1`` (an index walk)."""
        rows = self._read(f"SELECT COUNT(*) FROM ({sub} LIMIT {DRIVE_LIMIT + 1})", params)
        return int(rows[0][0])

    def get(self, message_id: str, *, account_id: int | None = None) -> dict[str, Any] | None:
        rows = self._read("SELECT * FROM messages WHERE id = ?", (message_id,))
        if not rows or (account_id is not None and rows[0]["account_id"] != account_id):
            return None
        m = rows[0]
        recipients = self._read(
            "SELECT * FROM recipients WHERE message_id = ? ORDER BY id", (message_id,)
        )
        events = [
            row_event(r)
            for r in self._read(
                "SELECT * FROM events WHERE message_id = ? ORDER BY id", (message_id,)
            )
        ]
        return {
            "id": m["id"],
            "account_id": m["account_id"],
            "channel": m["channel"],
            "from": m["from_addr"],
            "subject": m["subject"],
            "message_id": m["header_message_id"],
            "tags": json.loads(m["tags"]),
            "size": m["size"],
            "created_at": m["created_at"],
            "recipients": [
                {
                    "id": r["id"],
                    "address": r["address"],
                    "kind": r["kind"],
                    "state": r["state"],
                    "attempts": r["attempts"],
                    "last_response": r["last_response"],
                    "next_attempt_at": r["next_attempt_at"],
                    "events": [e for e in events if e.recipient_id == r["id"]],
                }
                for r in recipients
            ],
            "events": events,
        }

    def search(
        self,
        account_id: int,
        *,
        tag: str | None = None,
        status: str | None = None,
        recipient: str | None = None,
        since: float | None = None,
        limit: int = 50,
        before: tuple[float, str] | None = None,
    ) -> list[MessageView]:
        """Newest first. ``before`` is the (created_at, id) of the last item of the previous page.

        Each filter's matches are counted on an index first (the account's recipients by
        address, its tags, recipients by state; up to ``DRIVE_LIMIT``). When the narrowest has
        few, the query starts from its ids and sorts what it finds; otherwise it walks the
        account's messages newest first, testing each, and stops at the page's end (a filter
        with many matches matches densely). So a rare recipient or tag costs its matches, not
        the account's history; a common one costs about a page."""
        where: list[str] = ["m.account_id = ?"]
        params: list[Any] = [account_id]
        # (matches counted up to DRIVE_LIMIT + 1, the ids as a driving query, the test per message)
        filters: list[tuple[int, str, list[Any], str, list[Any]]] = []
        if tag:
            drive = "SELECT message_id FROM message_tags WHERE account_id = ? AND tag = ?"
            test = "EXISTS (SELECT 1 FROM message_tags t WHERE t.message_id = m.id AND t.tag = ?)"
            filters.append(
                (self._count(drive, [account_id, tag]), drive, [account_id, tag], test, [tag])
            )
        if status:
            wanted = ("queued", "active") if status == "queued" else (status,)
            marks = ",".join("?" * len(wanted))
            drive = (
                "SELECT message_id FROM recipients INDEXED BY recipients_due"
                f" WHERE state IN ({marks}) AND account_id = ?"
            )
            every = f"SELECT 1 FROM recipients INDEXED BY recipients_due WHERE state IN ({marks})"
            test = (
                "EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id"
                f" AND r.state IN ({marks}))"
            )
            filters.append(
                (self._count(every, wanted), drive, [*wanted, account_id], test, list(wanted))
            )
        if recipient:
            drive = (
                "SELECT message_id FROM recipients INDEXED BY recipients_address"
                " WHERE account_id = ? AND address = ? COLLATE NOCASE"
            )
            test = (
                "EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id"
                " AND r.address = ? COLLATE NOCASE)"
            )
            filters.append(
                (
                    self._count(drive, [account_id, recipient]),
                    drive,
                    [account_id, recipient],
                    test,
                    [recipient],
                )
            )
        narrowest = min(filters, default=None, key=lambda f: f[0])
        driving = narrowest is not None and narrowest[0] <= DRIVE_LIMIT
        for f in filters:
            if not (driving and f is narrowest):
                where.append(f[3])
                params.extend(f[4])
        if since is not None:
            where.append("m.created_at >= ?")
            params.append(since)
        if before is not None:
            where.append("(m.created_at < ? OR (m.created_at = ? AND m.id < ?))")
            params.extend([before[0], before[0], before[1]])
        order = f"WHERE {' AND '.join(where)} ORDER BY m.created_at DESC, m.id DESC LIMIT ?"
        if driving and narrowest is not None:
            rows = self._read(
                f"SELECT m.* FROM (SELECT DISTINCT message_id AS id FROM ({narrowest[1]})) AS hit"
                f" CROSS JOIN messages m ON m.id = hit.id {order}",
                (*narrowest[2], *params, limit),
            )
        else:
            rows = self._read(f"SELECT m.* FROM messages m {order}", (*params, limit))
        out: list[MessageView] = []
        for m in rows:
            states = [
                r[0]
                for r in self._read(
                    "SELECT state FROM recipients WHERE message_id = ? ORDER BY id", (m["id"],)
                )
            ]
            out.append(
                MessageView(
                    id=m["id"],
                    from_addr=m["from_addr"],
                    subject=m["subject"],
                    tags=tuple(json.loads(m["tags"])),
                    created_at=m["created_at"],
                    states=tuple(states),
                )
            )
        return out

    def recipients(self, message_id: str) -> list[Recipient]:
        return [
            row_recipient(r)
            for r in self._read(
                "SELECT * FROM recipients WHERE message_id = ? ORDER BY id", (message_id,)
            )
        ]

    def of_recipient(self, recipient_id: int) -> str | None:
        rows = self._read("SELECT message_id FROM recipients WHERE id = ?", (recipient_id,))
        return str(rows[0][0]) if rows else None

    def by_header_id(self, header_message_id: str) -> str | None:
        value = header_message_id.strip()
        if not value:
            return None
        if not value.startswith("<"):
            value = f"<{value}>"
        rows = self._read("SELECT id FROM messages WHERE header_message_id = ?", (value,))
        return str(rows[0][0]) if rows else None

    def events_after(
        self, after_id: int, *, limit: int = 500, types: Sequence[str] | None = None
    ) -> list[Event]:
        if types:
            marks = ",".join("?" * len(types))
            rows = self._read(
                f"SELECT * FROM events WHERE id > ? AND type IN ({marks}) ORDER BY id LIMIT ?",
                (after_id, *types, limit),
            )
        else:
            rows = self._read(
                "SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
            )
        return [row_event(r) for r in rows]

    def body(self, message_id: str) -> bytes:
        """The stored message bytes (the shared body; see ``body_for_delivery``)."""
        return self.body_for_delivery(message_id)[0]

    def body_for_delivery(self, message_id: str, ordinal: int | None = None) -> tuple[bytes, bool]:
        """The message bytes and whether they are final (signed, or prepared unsigned) already.

        ``ordinal`` names a recipient's own body variant (tracked messages).
        """
        if ordinal is not None:
            found = self._read(
                "SELECT data, signed FROM recipient_bodies WHERE message_id = ? AND ordinal = ?",
                (message_id, ordinal),
            )
            if not found:
                raise KeyError(f"{message_id}#{ordinal}")
            return bytes(found[0][0]), bool(found[0][1])
        rows = self._read(
            "SELECT p.prefix, b.data, m.signed FROM bodies b JOIN messages m ON m.id = b.message_id"
            " LEFT JOIN body_prefixes p ON p.message_id = b.message_id WHERE b.message_id = ?",
            (message_id,),
        )
        if not rows:
            raise KeyError(message_id)
        prefix, data, signed = rows[0]
        return (bytes(prefix) + data if prefix else bytes(data)), bool(signed)
