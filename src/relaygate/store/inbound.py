"""The ``inbound`` table: DSNs and feedback reports received over SMTP, kept durably as bytes.

The SMTP gateway writes here (``save_inbound``) before answering 250; the bounce processor reads
unprocessed rows (``pending_inbound``) and marks them done (``mark_processed``). Nothing here
parses the mail: it is stranger-controlled bytes and stays exactly as received.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass

from relaygate.store.spool import Store


@dataclass(frozen=True, kw_only=True)
class InboundMessage:
    id: str
    received_at: float
    mail_from: str
    rcpts: tuple[str, ...]
    peer: str
    data: bytes
    processed: bool


def new_inbound_id() -> str:
    return "in_" + secrets.token_hex(12)


async def save_inbound(
    store: Store, *, mail_from: str, rcpts: list[str], data: bytes, peer: str
) -> str:
    """Commit one received message (group commit); returns its ``in_`` id after the commit."""
    inbound_id = new_inbound_id()
    now = store.clock.now()

    def fn(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO inbound (id, received_at, mail_from, rcpts, peer, data) VALUES (?, ?, ?, ?, ?, ?)",
            (inbound_id, now, mail_from, json.dumps(rcpts), peer, data),
        )

    await store.writer.run(fn)
    return inbound_id


def pending_inbound(store: Store, *, limit: int = 100) -> list[InboundMessage]:
    """Unprocessed rows, oldest first."""
    rows = store._read(
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


def mark_processed(store: Store, inbound_id: str) -> bool:
    return bool(
        store._write(
            lambda c: (
                c.execute(
                    "UPDATE inbound SET processed = 1 WHERE id = ? AND processed = 0", (inbound_id,)
                ).rowcount
            )
        )
    )
