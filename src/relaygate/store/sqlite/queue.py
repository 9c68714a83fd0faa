"""The delivery queue (SQLite): claims with leases, attempt outcomes, and the operator's
actions. Every recipient state change is a guarded compare-and-set (``rows.transition``) that
writes its event row in the same transaction.

Leases: a claim sets ``lease_owner`` and ``lease_expires_at = now + lease_seconds``, ``now``
being the store's clock (the process that writes); a claim first puts back every lease that has
expired by that clock (to ``held`` after repeated losses), except those the claiming owner says
it still has in flight (``keep``): a worker never reclaims its own transactions, whose outcome
it will record; ``renew`` extends leases still held.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Sequence
from typing import Any

from relaygate.errors import RequestError
from relaygate.store.models import Claimed, Outcome, PreparedBody, QueueEntry
from relaygate.store.sqlite.core import Concern
from relaygate.store.sqlite.rows import add_suppression, store_prepared, transition
from relaygate.store.states import State, allowed


class SqliteQueue(Concern):
    async def claim(
        self,
        owner: str,
        *,
        limit: int,
        lease_seconds: float,
        max_lease_losses: int = 5,
        keep: Collection[int] = (),
    ) -> list[Claimed]:
        now = self.clock.now()
        kept = frozenset(keep)
        claimed: list[Claimed] = await self.writer.run(
            lambda c: self._claim(c, owner, limit, lease_seconds, max_lease_losses, now, keep=kept)
        )
        return claimed

    async def claim_message(
        self, owner: str, message_id: str, *, lease_seconds: float, keep: Collection[int] = ()
    ) -> list[Claimed]:
        """Lease every pending recipient of one message now (smarthost synchronous hand-off)."""
        now = self.clock.now()
        kept = frozenset(keep)
        claimed: list[Claimed] = await self.writer.run(
            lambda c: self._claim(
                c, owner, 1000, lease_seconds, 1_000_000, now, message_id=message_id, keep=kept
            )
        )
        return claimed

    def claim_sync(
        self, owner: str, *, limit: int, lease_seconds: float, max_lease_losses: int = 5
    ) -> list[Claimed]:
        now = self.clock.now()
        return self._write(
            lambda c: self._claim(c, owner, limit, lease_seconds, max_lease_losses, now)
        )

    def _claim(
        self,
        conn: sqlite3.Connection,
        owner: str,
        limit: int,
        lease_seconds: float,
        max_losses: int,
        now: float,
        message_id: str | None = None,
        keep: frozenset[int] = frozenset(),
    ) -> list[Claimed]:
        # 1. Leases that expired (their worker died) go back to the queue, or to held after
        #    repeated losses; never those the claimer says it still has in flight.
        stale = conn.execute(
            "SELECT id, lease_losses, lease_owner FROM recipients WHERE state = 'active'"
            " AND lease_expires_at <= ?",
            (now,),
        ).fetchall()
        for row in stale:
            if row["lease_owner"] == owner and row["id"] in keep:
                continue
            losses = row["lease_losses"] + 1
            dst = State.HELD if losses >= max_losses else State.QUEUED
            transition(
                conn,
                recipient_id=row["id"],
                src=State.ACTIVE,
                dst=dst,
                now=now,
                event_type="held" if dst is State.HELD else "lease_expired",
                data={"lease_losses": losses},
                sets="lease_owner = NULL, lease_expires_at = NULL, lease_losses = ?, next_attempt_at = ?",
                params=(losses, now),
            )
        # 2. One guarded statement claims the due recipients (or, for a synchronous hand-off,
        #    every pending recipient of one message, due or not). ``+state``: the guard must not be
        #    used as an index, or SQLite scans every queued row to find the few ids; by rowid it is O(limit).
        if message_id is None:
            chosen = "SELECT id FROM recipients WHERE state IN ('queued', 'deferred') AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?"
            args: tuple[Any, ...] = (now, limit)
        else:
            chosen = "SELECT id FROM recipients WHERE message_id = ? AND state IN ('queued', 'deferred') LIMIT ?"
            args = (message_id, limit)
        rows = conn.execute(
            "UPDATE recipients SET state = 'active', lease_owner = ?, lease_expires_at = ?, updated_at = ?"
            f" WHERE id IN ({chosen}) AND +state IN ('queued', 'deferred')"
            " RETURNING id, message_id, account_id, address, domain, attempts, queued_at, ordinal",
            (owner, now + lease_seconds, now, *args),
        ).fetchall()
        if not rows:
            return []
        claimed = []
        senders: dict[str, tuple[str, bool]] = {}
        for row in rows:
            mid = row["message_id"]
            if mid not in senders:
                found = conn.execute(
                    "SELECT sender_domain, tracked FROM messages WHERE id = ?", (mid,)
                ).fetchone()
                senders[mid] = (found[0], bool(found[1]))
            claimed.append(
                Claimed(
                    id=row["id"],
                    message_id=mid,
                    account_id=row["account_id"],
                    address=row["address"],
                    domain=row["domain"],
                    attempts=row["attempts"],
                    queued_at=row["queued_at"],
                    sender_domain=senders[mid][0],
                    ordinal=row["ordinal"],
                    tracked=senders[mid][1],
                )
            )
        conn.executemany(
            "INSERT INTO events (account_id, message_id, recipient_id, type, state_from, state_to, created_at, data)"
            " VALUES (?, ?, ?, 'claimed', 'pending', 'active', ?, ?)",
            [
                (c.account_id, c.message_id, c.id, now, json.dumps({"owner": owner}))
                for c in claimed
            ],
        )
        return claimed

    async def record(
        self, owner: str, outcomes: Sequence[Outcome], *, prepared: PreparedBody | None = None
    ) -> list[int]:
        """Record attempt outcomes for leased recipients. Returns the ids whose lease was lost (not recorded).

        ``prepared``: the final body the attempt sent, stored in the same transaction unless
        one is stored already (first one wins), so every later attempt sends these bytes.
        """
        now = self.clock.now()

        def fn(c: sqlite3.Connection) -> list[int]:
            if prepared is not None:
                store_prepared(c, prepared)
            return self._record(c, owner, outcomes, now)

        return await self.writer.run(fn)

    def record_sync(self, owner: str, outcomes: Sequence[Outcome]) -> list[int]:
        now = self.clock.now()
        return self._write(lambda c: self._record(c, owner, outcomes, now))

    def _record(
        self, conn: sqlite3.Connection, owner: str, outcomes: Sequence[Outcome], now: float
    ) -> list[int]:
        lost = []
        for o in outcomes:
            dst = State(o.state)
            data = {"smtp_response": o.response, **o.data}
            ok = transition(
                conn,
                recipient_id=o.recipient_id,
                src=State.ACTIVE,
                dst=dst,
                now=now,
                event_type=_EVENT_FOR_STATE.get(dst, dst.value),
                data=data,
                sets="attempts = attempts + 1, last_response = ?, lease_owner = NULL, lease_expires_at = NULL, lease_losses = 0, next_attempt_at = ?",
                params=(
                    o.response[:1000],
                    o.next_attempt_at if o.next_attempt_at is not None else now,
                ),
                lease_owner=owner,
            )
            if not ok:
                lost.append(o.recipient_id)
            elif o.suppress is not None:
                row = conn.execute(
                    "SELECT account_id, address FROM recipients WHERE id = ?", (o.recipient_id,)
                ).fetchone()
                add_suppression(
                    conn,
                    account_id=row[0],
                    address=row[1],
                    reason=o.suppress,
                    source="bounce",
                    bounce_type=str(o.data.get("bounce_type", "hard")),
                    event_id=None,
                    now=now,
                )
        return lost

    async def renew(
        self, owner: str, recipient_ids: Sequence[int], *, lease_seconds: float
    ) -> list[int]:
        """Extend to now + ``lease_seconds`` (the store's clock) the leases ``owner`` still holds,
        expired or not: as long as no claim has put a lease back, nobody else has it. One that a
        claim put back or gave to another worker is lost, and a worker never takes it back."""
        now = self.clock.now()
        ids = list(recipient_ids)

        def fn(c: sqlite3.Connection) -> list[int]:
            renewed: list[int] = []
            for rid in ids:
                row = c.execute(
                    "UPDATE recipients SET lease_expires_at = ? WHERE id = ? AND state = 'active'"
                    " AND lease_owner = ? RETURNING id",
                    (now + lease_seconds, rid, owner),
                ).fetchone()
                if row is not None:
                    renewed.append(int(row[0]))
            return renewed

        return await self.writer.run(fn)

    def release_dead_owners(self, is_dead: Callable[[str], bool]) -> int:
        """Put back at once the leases of owners known to be dead (a restart on the same host).

        Leases of owners ``is_dead`` cannot judge simply run out as usual.
        """
        owners = [
            r[0]
            for r in self._read(
                "SELECT DISTINCT lease_owner FROM recipients WHERE state = 'active'"
            )
        ]
        dead = [o for o in owners if o and is_dead(o)]
        if not dead:
            return 0
        now = self.clock.now()

        def fn(c: sqlite3.Connection) -> int:
            count = 0
            for owner in dead:
                for row in c.execute(
                    "SELECT id FROM recipients WHERE state = 'active' AND lease_owner = ?", (owner,)
                ).fetchall():
                    count += transition(
                        c,
                        recipient_id=row[0],
                        src=State.ACTIVE,
                        dst=State.QUEUED,
                        now=now,
                        event_type="released",
                        data={"reason": "owner process gone", "owner": owner},
                        sets="lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = ?",
                        params=(now,),
                        lease_owner=owner,
                    )
            return count

        return self._write(fn)

    async def release(self, owner: str, recipient_ids: Sequence[int]) -> None:
        """Give leased recipients back (shutdown) without counting an attempt."""
        now = self.clock.now()

        def fn(c: sqlite3.Connection) -> None:
            for rid in recipient_ids:
                transition(
                    c,
                    recipient_id=rid,
                    src=State.ACTIVE,
                    dst=State.QUEUED,
                    now=now,
                    event_type="released",
                    sets="lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = ?",
                    params=(now,),
                    lease_owner=owner,
                )

        await self.writer.run(fn)

    def transition(
        self,
        recipient_id: int,
        src: State,
        dst: State,
        *,
        event_type: str,
        data: dict[str, Any] | None = None,
        next_attempt_at: float | None = None,
    ) -> bool:
        """An operator or inbound-report transition (sync)."""
        now = self.clock.now()
        sets, params = (
            ("next_attempt_at = ?", (next_attempt_at,)) if next_attempt_at is not None else ("", ())
        )
        return bool(
            self._write(
                lambda c: transition(
                    c,
                    recipient_id=recipient_id,
                    src=src,
                    dst=dst,
                    now=now,
                    event_type=event_type,
                    data=data,
                    sets=sets,
                    params=params,
                )
            )
        )

    def next_due(self) -> float | None:
        rows = self._read(
            "SELECT MIN(next_attempt_at) FROM recipients WHERE state IN ('queued', 'deferred')"
        )
        active = self._read("SELECT MIN(lease_expires_at) FROM recipients WHERE state = 'active'")
        candidates = [v for v in (rows[0][0], active[0][0]) if v is not None]
        return min(candidates) if candidates else None

    def oldest_pending(self) -> float | None:
        rows = self._read(
            "SELECT MIN(queued_at) FROM recipients WHERE state IN ('queued', 'deferred', 'active')"
        )
        return rows[0][0] if rows and rows[0][0] is not None else None

    def entries(
        self, *, state: str | None = None, domain: str | None = None, limit: int = 100
    ) -> list[QueueEntry]:
        # one index walk per state (recipients_due is ordered by state, then due time), merged:
        # an IN over the states would sort every pending recipient to return the first few
        states = [state] if state else ["queued", "active", "deferred", "held"]
        extra, params = "", []
        if domain:
            extra = " AND domain = ?"
            params.append(domain.lower().rstrip("."))
        walks = " UNION ALL ".join(
            "SELECT * FROM (SELECT id, message_id, address, domain, state, attempts, queued_at,"
            " next_attempt_at, last_response FROM recipients INDEXED BY recipients_due"
            f" WHERE state = ?{extra} ORDER BY next_attempt_at, id LIMIT ?)"
            for _ in states
        )
        walk_params = [p for s in states for p in (s, *params, limit)]
        rows = self._read(
            "SELECT r.*, m.from_addr FROM ("
            + walks
            + ") AS r JOIN messages m ON m.id = r.message_id"
            " ORDER BY r.next_attempt_at, r.id LIMIT ?",
            (*walk_params, limit),
        )
        return [QueueEntry(**dict(r)) for r in rows]

    def select(
        self, *, ids: Sequence[str] = (), domain: str | None = None, states: Sequence[str] = ()
    ) -> list[int]:
        """Recipient ids named by message ids (``msg_…``) or recipient ids, or by domain, in the given states."""
        found: list[int] = []
        marks = ",".join("?" * len(states))
        for ident in ids:
            if ident.startswith("msg_"):
                rows = self._read(
                    f"SELECT id FROM recipients WHERE message_id = ? AND state IN ({marks})",
                    (ident, *states),
                )
            elif ident.isdigit():
                rows = self._read(
                    f"SELECT id FROM recipients WHERE id = ? AND state IN ({marks})",
                    (int(ident), *states),
                )
            else:
                raise RequestError(
                    400, f"{ident!r} is neither a message id (msg_…) nor a recipient id"
                )
            found.extend(r[0] for r in rows)
        if domain is not None:
            rows = self._read(
                f"SELECT id FROM recipients WHERE domain = ? AND state IN ({marks})",
                (domain.lower().rstrip("."), *states),
            )
            found.extend(r[0] for r in rows)
        if not ids and domain is None:
            found.extend(
                r[0]
                for r in self._read(
                    f"SELECT id FROM recipients WHERE state IN ({marks})", tuple(states)
                )
            )
        return list(dict.fromkeys(found))

    def operate(
        self,
        recipient_ids: Sequence[int],
        action: str,
        *,
        chunk: int = 500,
        progress: Callable[[int], None] | None = None,
        by: str = "operator",
    ) -> int:
        """retry (due now) | hold | release | delete (bounce as deleted by the operator) |
        cancel, in chunks. ``by`` names who asked (in the event of a cancel)."""
        now = self.clock.now()
        done = 0
        for start in range(0, len(recipient_ids), chunk):
            part = recipient_ids[start : start + chunk]

            def fn(c: sqlite3.Connection, part: Sequence[int] = part) -> int:
                count = 0
                for rid in part:
                    row = c.execute("SELECT state FROM recipients WHERE id = ?", (rid,)).fetchone()
                    if row is None:
                        continue
                    src = State(row[0])
                    if action == "retry" and src in (State.QUEUED, State.DEFERRED):
                        count += c.execute(
                            "UPDATE recipients SET next_attempt_at = ?, updated_at = ? WHERE id = ? AND state = ?",
                            (now, now, rid, src.value),
                        ).rowcount
                    elif action == "hold" and allowed(src, State.HELD):
                        count += transition(
                            c,
                            recipient_id=rid,
                            src=src,
                            dst=State.HELD,
                            now=now,
                            event_type="held",
                            data={"by": "operator"},
                        )
                    elif action == "release" and src is State.HELD:
                        count += transition(
                            c,
                            recipient_id=rid,
                            src=src,
                            dst=State.QUEUED,
                            now=now,
                            event_type="released",
                            data={"by": "operator"},
                            sets="next_attempt_at = ?, lease_losses = 0",
                            params=(now,),
                        )
                    elif action == "cancel" and allowed(src, State.CANCELLED):
                        count += transition(
                            c,
                            recipient_id=rid,
                            src=src,
                            dst=State.CANCELLED,
                            now=now,
                            event_type="cancelled",
                            data={"by": by},
                        )
                    elif (
                        action == "delete"
                        and allowed(src, State.BOUNCED)
                        and src is not State.DELIVERED
                    ):
                        count += transition(
                            c,
                            recipient_id=rid,
                            src=src,
                            dst=State.BOUNCED,
                            now=now,
                            event_type="bounce",
                            data={
                                "reason": "deleted",
                                "bounce_type": "soft",
                                "status": "5.0.0",
                                "diagnostic": "deleted by the operator",
                                "smtp_response": "",
                            },
                        )
                return count

            done += self._write(fn)
            if progress is not None:
                progress(min(start + chunk, len(recipient_ids)))
        return done

    def cancel(self, message_id: str, *, account_id: int | None = None) -> int:
        """Cancel the message's recipients that are queued, deferred or held (API.md §14: a
        transaction already in flight finishes; delivered ones stay delivered)."""
        rows = self._read(
            "SELECT r.id FROM recipients r JOIN messages m ON m.id = r.message_id"
            " WHERE r.message_id = ? AND r.state IN ('queued', 'deferred', 'held')"
            " AND (? IS NULL OR m.account_id = ?) ORDER BY r.id",
            (message_id, account_id, account_id),
        )
        by = "operator" if account_id is None else "account"
        return self.operate([int(r[0]) for r in rows], "cancel", by=by)

    def count_by_state(self) -> dict[str, int]:
        return {
            r[0]: r[1] for r in self._read("SELECT state, COUNT(*) FROM recipients GROUP BY state")
        }


_EVENT_FOR_STATE = {
    State.DELIVERED: "delivery",
    State.BOUNCED: "bounce",
    State.DEFERRED: "deferred",
    State.EXPIRED: "bounce",
}
