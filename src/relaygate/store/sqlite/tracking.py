"""Open/click tracking (SQLite): verified hits become ``open`` / ``click`` events.

A hit names (account, message, recipient ordinal) from a signed token; it is written only when
that message exists and belongs to that account (a purged message's hits are dropped). The
flags ``is_proxy`` / ``is_scanner`` / ``first`` come from the classifier the caller passes in
(tracking's rules, ``events.bots``), given what this transaction sees: the seconds since the
recipient's delivery and its earlier human hits of that kind. One transaction per batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from relaygate.store.api import HitClassifier
from relaygate.store.models import TrackingHit
from relaygate.store.sqlite.core import Concern
from relaygate.store.sqlite.rows import insert_event


class SqliteTracking(Concern):
    async def record_hits(self, hits: Sequence[TrackingHit], classify: HitClassifier) -> int:
        """The ``HitRecorder`` sink: one group-committed transaction per batch."""
        written: int = await self.writer.run(lambda conn: _write(conn, hits, classify))
        return written


def _write(conn: sqlite3.Connection, hits: Sequence[TrackingHit], classify: HitClassifier) -> int:
    written = 0
    for hit in hits:
        row = conn.execute(
            "SELECT r.id, r.state FROM recipients r JOIN messages m ON m.id = r.message_id"
            " WHERE r.message_id = ? AND r.ordinal = ? AND m.account_id = ?",
            (hit.message_id, hit.recipient_id, hit.account_id),
        ).fetchone()
        if row is None:
            continue
        delivered = conn.execute(
            "SELECT MAX(created_at) FROM events WHERE recipient_id = ? AND type = 'delivery'",
            (row["id"],),
        ).fetchone()[0]
        human_before = conn.execute(
            "SELECT COUNT(*) FROM events WHERE recipient_id = ? AND type = ?"
            " AND json_extract(data, '$.is_proxy') = 0 AND json_extract(data, '$.is_scanner') = 0",
            (row["id"], hit.event_type),
        ).fetchone()[0]
        flags = classify(hit, None if delivered is None else hit.at - delivered, human_before)
        insert_event(
            conn,
            account_id=hit.account_id,
            message_id=hit.message_id,
            recipient_id=row["id"],
            type_=hit.event_type,
            now=hit.at,
            data={
                "ip": hit.ip,
                "user_agent": hit.user_agent,
                "url": hit.url,
                "method": hit.method,
                "is_proxy": flags.is_proxy,
                "is_scanner": flags.is_scanner,
                "first": flags.first,
                "smtp_response": "",
            },
        )
        written += 1
    return written
