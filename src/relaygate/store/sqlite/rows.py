"""The SQL every concern of the SQLite backend shares: rows into values, the event row, the
guarded recipient transition, the suppression upsert, multi-row inserts.

Each function runs inside the caller's transaction (a connection handed in).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from relaygate.errors import IllegalTransition
from relaygate.store.models import Account, ApiKey, Event, Identity, PreparedBody, Recipient
from relaygate.store.states import State, allowed

#: Rows per multi-row INSERT: SQLite before 3.32 allows 999 parameters per statement.
MAX_PARAMS = 999


def row_account(row: sqlite3.Row) -> Account:
    return Account(
        id=row["id"],
        name=row["name"],
        plan=row["plan"],
        daily_quota=row["daily_quota"],
        rate_limit=row["rate_limit"],
        track_opens=bool(row["track_opens"]),
        track_clicks=bool(row["track_clicks"]),
        created_at=row["created_at"],
    )


def row_key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        account_id=row["account_id"],
        name=row["name"],
        scopes=tuple(row["scopes"].split()),
        hint=row["hint"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


def row_identity(row: sqlite3.Row) -> Identity:
    return Identity(
        id=row["id"],
        account_id=row["account_id"],
        kind=row["kind"],
        value=row["value"],
        status=row["status"],
        token=row["token"],
        created_at=row["created_at"],
        verified_at=row["verified_at"],
    )


def row_event(row: sqlite3.Row) -> Event:
    return Event(
        id=row["id"],
        account_id=row["account_id"],
        message_id=row["message_id"],
        recipient_id=row["recipient_id"],
        type=row["type"],
        state_from=row["state_from"],
        state_to=row["state_to"],
        created_at=row["created_at"],
        data=json.loads(row["data"]),
    )


def insert_event(
    conn: sqlite3.Connection,
    *,
    account_id: int,
    message_id: str | None,
    recipient_id: int | None,
    type_: str,
    now: float,
    state_from: str | None = None,
    state_to: str | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    cur = conn.execute(
        "INSERT INTO events (account_id, message_id, recipient_id, type, state_from, state_to, created_at, data)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            account_id,
            message_id,
            recipient_id,
            type_,
            state_from,
            state_to,
            now,
            json.dumps(data or {}, separators=(",", ":")),
        ),
    )
    return int(cur.lastrowid or 0)


def transition(
    conn: sqlite3.Connection,
    *,
    recipient_id: int,
    src: State,
    dst: State,
    now: float,
    event_type: str,
    data: dict[str, Any] | None = None,
    sets: str = "",
    params: Sequence[Any] = (),
    lease_owner: str | None = None,
) -> bool:
    """Guarded CAS of one recipient ``src → dst`` plus its event row. False if the row was not in ``src``."""
    if not allowed(src, dst):
        raise IllegalTransition(f"recipient {recipient_id}: {src} → {dst} is not allowed")
    extra = f", {sets}" if sets else ""
    guard = " AND lease_owner = ?" if lease_owner is not None else ""
    args: list[Any] = [dst.value, now, *params, recipient_id, src.value]
    if lease_owner is not None:
        args.append(lease_owner)
    row = conn.execute(
        f"UPDATE recipients SET state = ?, updated_at = ?{extra} WHERE id = ? AND state = ?{guard}"
        " RETURNING account_id, message_id",
        args,
    ).fetchone()
    if row is None:
        return False
    insert_event(
        conn,
        account_id=row["account_id"],
        message_id=row["message_id"],
        recipient_id=recipient_id,
        type_=event_type,
        now=now,
        state_from=src.value,
        state_to=dst.value,
        data=data,
    )
    return True


def store_prepared(conn: sqlite3.Connection, p: PreparedBody) -> bool:
    """Replace a body with its final form once; False when one was stored already."""
    if p.ordinal is not None:
        return (
            conn.execute(
                "UPDATE recipient_bodies SET data = ?, signed = 1"
                " WHERE message_id = ? AND ordinal = ? AND signed = 0",
                (p.data, p.message_id, p.ordinal),
            ).rowcount
            == 1
        )
    if (
        conn.execute(
            "UPDATE messages SET signed = 1 WHERE id = ? AND signed = 0", (p.message_id,)
        ).rowcount
        != 1
    ):
        return False
    if p.prefix is None:
        conn.execute("UPDATE bodies SET data = ? WHERE message_id = ?", (p.data, p.message_id))
    elif p.prefix:
        # the admitted body stays where it is: ~0.8 ms of writer CPU less per 100 KB message
        # than rewriting it (its overflow pages freed and written again, twice through the WAL)
        conn.execute(
            "INSERT INTO body_prefixes (message_id, prefix) VALUES (?, ?)",
            (p.message_id, p.prefix),
        )
    return True


def add_suppression(
    c: sqlite3.Connection,
    *,
    account_id: int,
    address: str,
    reason: str,
    source: str,
    bounce_type: str,
    event_id: int | None,
    now: float,
    expires_at: float | None = None,
) -> None:
    c.execute(
        "INSERT INTO suppressions (account_id, address, reason, bounce_type, source, event_id, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, address) DO UPDATE SET reason = excluded.reason,"
        " bounce_type = excluded.bounce_type, source = excluded.source, event_id = excluded.event_id,"
        " created_at = excluded.created_at, expires_at = excluded.expires_at",
        (account_id, address.lower(), reason, bounce_type, source, event_id, now, expires_at),
    )


#: How long this process may reuse what it read of the sending policy (an account row, an API
#: key found by its secret, a sender identity check, an account template) without asking again.
#: Decision: a change counts at once everywhere. One made through this Store empties the cache;
#: one made by another process (the CLI revoking a key, removing an identity, changing a plan)
#: moves ``policy_generation`` (triggers, schema 8), and the writing Store then rewrites the
#: stamp next to the database, which every cache checks (a memory read) before it answers. The
#: TTL only bounds what no Store wrote (an edit with the sqlite3 shell). These reads were a


def row_recipient(row: sqlite3.Row) -> Recipient:
    return Recipient(
        id=row["id"],
        message_id=row["message_id"],
        account_id=row["account_id"],
        address=row["address"],
        domain=row["domain"],
        kind=row["kind"],
        state=row["state"],
        attempts=row["attempts"],
        queued_at=row["queued_at"],
        next_attempt_at=row["next_attempt_at"],
        last_response=row["last_response"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        lease_losses=row["lease_losses"],
        updated_at=row["updated_at"],
        ordinal=row["ordinal"],
    )


def insert_rows(conn: sqlite3.Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """``sql`` (with ``{}`` where the VALUES tuples go) for all ``rows``, in as few statements as
    the parameter limit allows."""
    if not rows:
        return
    width = len(rows[0])
    per = max(1, MAX_PARAMS // width)
    one = "(" + ",".join("?" * width) + ")"
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        conn.execute(sql.format(",".join([one] * len(chunk))), [v for row in chunk for v in row])


def in_force(entry: tuple[str, float | None] | None, now: float) -> str | None:
    """The reason of a suppression list entry still in force at ``now``."""
    if entry is None or (entry[1] is not None and entry[1] <= now):
        return None
    return entry[0]


def suppressed_sql(count: int) -> str:
    """Which of ``count`` lowercased addresses are on an account's (unexpired) suppression list."""
    marks = ",".join("?" * count)
    return (
        f"SELECT address, reason, expires_at FROM suppressions WHERE account_id = ? AND address IN ({marks})"
        " AND (expires_at IS NULL OR expires_at > ?)"
    )
