"""The store side of open/click tracking: turn verified hits into ``open`` / ``click`` events.

A hit names (account, message, recipient ordinal) from a signed token; it is written only when
that message exists and belongs to that account (a purged message's hits are dropped). Flags:
``is_proxy`` / ``is_scanner`` from ``events.bots.classify_hit`` with the time since delivery, and
``first`` for the recipient's first human hit of that kind. One transaction per batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from relaygate.events.bots import classify_hit, is_first_human
from relaygate.events.tracking_app import TrackingHit
from relaygate.store.spool import Store, insert_event


def _write(conn: sqlite3.Connection, hits: Sequence[TrackingHit]) -> int:
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
        since = None if delivered is None else hit.at - delivered
        flags = classify_hit(
            kind=hit.kind,
            method=hit.method,
            ip=hit.ip,
            user_agent=hit.user_agent,
            seconds_since_delivery=since,
        )
        human_before = conn.execute(
            "SELECT COUNT(*) FROM events WHERE recipient_id = ? AND type = ?"
            " AND json_extract(data, '$.is_proxy') = 0 AND json_extract(data, '$.is_scanner') = 0",
            (row["id"], hit.event_type),
        ).fetchone()[0]
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
                "first": is_first_human(human_before, flags),
                "smtp_response": "",
            },
        )
        written += 1
    return written


async def write_hits(store: Store, hits: Sequence[TrackingHit]) -> None:
    """The ``HitRecorder`` sink: one group-committed transaction per batch."""
    await store.writer.run(lambda conn: _write(conn, hits))
