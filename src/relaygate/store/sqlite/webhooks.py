"""Webhook endpoints and their durable deliveries: every SQL statement of the webhook dispatcher.

Owns the tables of migration 002: ``webhooks``, ``webhook_deliveries``, ``webhook_attempts`` and
``dispatch_cursor``. Three operations carry the guarantees:

* **Fan-out** (``fan_out``): in ONE write transaction, read the events after the cursor, insert
  one ``pending`` delivery per (event, live endpoint of the event's account whose filter matches
  and which was registered before the event), and advance the cursor past them. The cursor and
  the deliveries commit together, and ``UNIQUE (webhook_id, event_id)`` backs it up, so every
  event becomes exactly one delivery per endpoint however many dispatchers run. SQLite hands out
  event ids in commit order (one writer at a time), so no event can appear behind the cursor.
* **Claim** (``claim``): due ``pending`` deliveries become ``active`` with a lease (owner, expiry)
  in one guarded ``UPDATE … WHERE state = 'pending' RETURNING``. Per endpoint at most
  ``per_endpoint`` deliveries are active at once (counted in the store, so across processes),
  and a delivery is held back while an earlier event of the same message for the same endpoint
  is in flight or waiting for its first try (ordering, see the dispatcher's docstring). Expired
  leases (a dead dispatcher) are put back to ``pending``, due now, without counting an attempt.
* **Record** (``record``): the attempt row and the delivery's next state commit together, by a
  compare-and-set on ``(id, state = 'active', lease_owner)``; a lost lease records nothing.

Trust: webhook secrets are stored in clear, because every delivery is signed with them (HMAC
keys cannot be hashed). They leave this module only through ``reveal_secret``, ``rotate_secret``,
``create`` (the caller shows them once) and ``ClaimedDelivery.secrets`` (``repr=False``); the
``Webhook`` value never carries them, and nothing here logs.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from relaygate.store.api import FAN_OUT_BATCH
from relaygate.store.ids import new_webhook_id
from relaygate.store.models import (
    Attempt,
    AttemptResult,
    ClaimedDelivery,
    Delivery,
    Webhook,
)
from relaygate.store.sqlite.core import Concern
from relaygate.store.states import DOMAIN_EVENT_TYPES, WEBHOOK_EVENT_TYPES, DeliveryState


def _row_webhook(row: sqlite3.Row) -> Webhook:
    return Webhook(
        id=row["id"],
        account_id=row["account_id"],
        url=row["url"],
        events=tuple(row["events"].split()),
        created_at=row["created_at"],
        removed_at=row["removed_at"],
        previous_secret_expires_at=row["previous_secret_expires_at"],
    )


def _row_delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        id=row["id"],
        webhook_id=row["webhook_id"],
        event_id=row["event_id"],
        account_id=row["account_id"],
        message_id=row["message_id"],
        event_type=row["event_type"],
        state=row["state"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        replays=row["replays"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _row_attempt(row: sqlite3.Row) -> Attempt:
    return Attempt(
        delivery_id=row["delivery_id"],
        attempt=row["attempt"],
        at=row["at"],
        status=row["status"],
        outcome=row["outcome"],
        error=row["error"],
        duration_ms=row["duration_ms"],
        id=row["id"],
        response=row["response"],
        next_attempt_at=row["next_attempt_at"],
    )


class SqliteWebhooks(Concern):
    """The webhook tables. Sync methods for the CLI, async ones for the dispatcher."""

    # -- endpoints ------------------------------------------------------------------------------
    def create(self, *, account_id: int, url: str, events: Sequence[str], secret: str) -> Webhook:
        """Register an endpoint. ``url`` must already be validated; ``secret`` is the caller's."""
        bad = sorted(set(events) - set(WEBHOOK_EVENT_TYPES))
        if bad:
            raise ValueError(f"unknown event type(s): {', '.join(bad)}")
        wanted = " ".join(t for t in WEBHOOK_EVENT_TYPES if t in set(events))
        webhook_id = new_webhook_id()
        now = self.clock.now()

        def fn(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO webhooks (id, account_id, url, events, secret, from_event_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, (SELECT COALESCE(MAX(id), 0) FROM events), ?)",
                (webhook_id, account_id, url, wanted, secret, now),
            )

        self._write(fn)
        created = self.get(webhook_id)
        assert created is not None
        return created

    def get(self, webhook_id: str) -> Webhook | None:
        rows = self._read("SELECT * FROM webhooks WHERE id = ?", (webhook_id,))
        return _row_webhook(rows[0]) if rows else None

    def all(self, *, account_id: int | None = None, include_removed: bool = False) -> list[Webhook]:
        where, params = ["1 = 1"], []
        if account_id is not None:
            where.append("account_id = ?")
            params.append(account_id)
        if not include_removed:
            where.append("removed_at IS NULL")
        rows = self._read(
            f"SELECT * FROM webhooks WHERE {' AND '.join(where)} ORDER BY created_at, id", params
        )
        return [_row_webhook(r) for r in rows]

    def reveal_secret(self, webhook_id: str) -> str | None:
        rows = self._read("SELECT secret FROM webhooks WHERE id = ?", (webhook_id,))
        return str(rows[0][0]) if rows else None

    def live_secrets(self, webhook_id: str) -> tuple[str, ...]:
        """The secrets a delivery is signed with now: current first, then one still in grace."""
        rows = self._read(
            "SELECT secret, previous_secret, previous_secret_expires_at FROM webhooks WHERE id = ?",
            (webhook_id,),
        )
        return _live_secrets(rows[0], self.clock.now()) if rows else ()

    def update(
        self, webhook_id: str, *, url: str | None = None, events: Sequence[str] | None = None
    ) -> Webhook | None:
        """Change a live endpoint's URL (validated already) and/or event types (empty: all);
        None when it is removed or unknown. Deliveries already made keep their endpoint."""
        sets: list[str] = []
        params: list[Any] = []
        if url is not None:
            sets.append("url = ?")
            params.append(url)
        if events is not None:
            bad = sorted(set(events) - set(WEBHOOK_EVENT_TYPES))
            if bad:
                raise ValueError(f"unknown event type(s): {', '.join(bad)}")
            sets.append("events = ?")
            params.append(" ".join(t for t in WEBHOOK_EVENT_TYPES if t in set(events)))
        if not sets:
            found = self.get(webhook_id)
            return found if found is not None and found.removed_at is None else None
        count = self._write(
            lambda c: (
                c.execute(
                    f"UPDATE webhooks SET {', '.join(sets)} WHERE id = ? AND removed_at IS NULL",
                    (*params, webhook_id),
                ).rowcount
            )
        )
        return self.get(webhook_id) if count else None

    def rotate_secret(self, webhook_id: str, *, new_secret: str, grace: float) -> Webhook | None:
        """Make ``new_secret`` current; the old one keeps signing for ``grace`` seconds."""
        now = self.clock.now()
        count = self._write(
            lambda c: (
                c.execute(
                    "UPDATE webhooks SET previous_secret = secret, previous_secret_expires_at = ?,"
                    " secret = ? WHERE id = ? AND removed_at IS NULL",
                    (now + grace if grace > 0 else None, new_secret, webhook_id),
                ).rowcount
            )
        )
        return self.get(webhook_id) if count else None

    def remove(self, webhook_id: str) -> bool:
        """Stop an endpoint: no new deliveries; its pending ones are abandoned."""
        now = self.clock.now()

        def fn(c: sqlite3.Connection) -> int:
            count = c.execute(
                "UPDATE webhooks SET removed_at = ? WHERE id = ? AND removed_at IS NULL",
                (now, webhook_id),
            ).rowcount
            if count:
                c.execute(
                    "UPDATE webhook_deliveries SET state = 'abandoned', last_error = 'webhook removed',"
                    " updated_at = ? WHERE webhook_id = ? AND state = 'pending'",
                    (now, webhook_id),
                )
            return int(count)

        return bool(self._write(fn))

    def counts(self, webhook_id: str) -> dict[str, int]:
        rows = self._read(
            "SELECT state, COUNT(*) FROM webhook_deliveries WHERE webhook_id = ? GROUP BY state",
            (webhook_id,),
        )
        found = {str(r[0]): int(r[1]) for r in rows}
        return {s.value: found.get(s.value, 0) for s in DeliveryState}

    # -- reading deliveries and attempts --------------------------------------------------------
    def delivery(self, delivery_id: int) -> Delivery | None:
        rows = self._read("SELECT * FROM webhook_deliveries WHERE id = ?", (delivery_id,))
        return _row_delivery(rows[0]) if rows else None

    def deliveries(
        self, *, webhook_id: str | None = None, state: str | None = None, limit: int = 50
    ) -> list[Delivery]:
        """Most recent first."""
        where, params = ["1 = 1"], []
        if webhook_id is not None:
            where.append("webhook_id = ?")
            params.append(webhook_id)
        if state is not None:
            where.append("state = ?")
            params.append(state)
        rows = self._read(
            f"SELECT * FROM webhook_deliveries WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        return [_row_delivery(r) for r in rows]

    def attempts(self, delivery_id: int) -> list[Attempt]:
        rows = self._read(
            "SELECT * FROM webhook_attempts WHERE delivery_id = ? ORDER BY attempt", (delivery_id,)
        )
        return [_row_attempt(r) for r in rows]

    def recent_attempts(
        self, webhook_id: str, *, limit: int = 50, before: int | None = None
    ) -> list[Attempt]:
        """The webhook's most recent attempts, newest first (ids below ``before`` if given)."""
        rows = self._read(
            "SELECT a.* FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id"
            " WHERE d.webhook_id = ? AND a.id < ? ORDER BY a.id DESC LIMIT ?",
            (webhook_id, before if before is not None else 2**62, limit),
        )
        return [_row_attempt(r) for r in rows]

    def attempt(self, attempt_id: int) -> Attempt | None:
        rows = self._read("SELECT * FROM webhook_attempts WHERE id = ?", (attempt_id,))
        return _row_attempt(rows[0]) if rows else None

    def next_due(self) -> float | None:
        """The earliest time something is due: a pending delivery or an expiring lease."""
        rows = self._read(
            "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE state = 'pending'"
        )
        active = self._read(
            "SELECT MIN(lease_expires_at) FROM webhook_deliveries WHERE state = 'active'"
        )
        candidates = [v for v in (rows[0][0], active[0][0]) if v is not None]
        return min(candidates) if candidates else None

    def anything_due(self, now: float) -> bool:
        """Whether a claim could find work: a due pending delivery or an expired lease."""
        return bool(
            self._read(
                "SELECT 1 FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ?"
                " UNION ALL SELECT 1 FROM webhook_deliveries WHERE state = 'active'"
                " AND lease_expires_at <= ? LIMIT 1",
                (now, now),
            )
        )

    def cursor(self) -> int:
        return int(self._read("SELECT last_event_id FROM dispatch_cursor WHERE id = 1")[0][0])

    def events_waiting(self) -> bool:
        """Whether events exist beyond the fan-out cursor (cheap: one index probe)."""
        rows = self._read(
            "SELECT 1 FROM events WHERE id > (SELECT last_event_id FROM dispatch_cursor WHERE id = 1) LIMIT 1"
        )
        return bool(rows)

    # -- operator actions -----------------------------------------------------------------------
    def replay(self, delivery_id: int) -> bool:
        """Put a finished (succeeded or abandoned) delivery back, due now, with a fresh schedule."""
        now = self.clock.now()
        return bool(
            self._write(
                lambda c: (
                    c.execute(
                        "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, replays = replays + 1,"
                        " next_attempt_at = ?, updated_at = ? WHERE id = ? AND state IN ('succeeded', 'abandoned')"
                        " AND webhook_id IN (SELECT id FROM webhooks WHERE removed_at IS NULL)",
                        (now, now, delivery_id),
                    ).rowcount
                )
            )
        )

    def replay_abandoned(self, *, webhook_id: str | None = None) -> int:
        """Replay every abandoned delivery (of one webhook, or of all live ones)."""
        now = self.clock.now()
        scope, params = ("AND webhook_id = ?", (webhook_id,)) if webhook_id else ("", ())
        return int(
            self._write(
                lambda c: (
                    c.execute(
                        "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, replays = replays + 1,"
                        f" next_attempt_at = ?, updated_at = ? WHERE state = 'abandoned' {scope}"
                        " AND webhook_id IN (SELECT id FROM webhooks WHERE removed_at IS NULL)",
                        (now, now, *params),
                    ).rowcount
                )
            )
        )

    def release_dead_owners(self, is_dead: Callable[[str], bool]) -> int:
        """Put back at once the leases of owners known to be dead (a restart on the same host)."""
        owners = [
            str(r[0])
            for r in self._read(
                "SELECT DISTINCT lease_owner FROM webhook_deliveries WHERE state = 'active'"
            )
            if r[0]
        ]
        dead = [o for o in owners if is_dead(o)]
        if not dead:
            return 0
        now = self.clock.now()
        return int(self._write(lambda c: _release(c, dead, None, now)))

    # -- the dispatcher's hot path (group commit) ------------------------------------------------
    def _at(self, now: float | None) -> float:
        """The time a lease or attempt is judged by: the store's clock unless a caller (a
        test, a replay of history) says otherwise."""
        return self.clock.now() if now is None else now

    async def fan_out(
        self, *, now: float | None = None, limit: int = FAN_OUT_BATCH
    ) -> tuple[int, bool]:
        """Fan out up to ``limit`` events. Returns (deliveries created, whether more events wait)."""
        at = self._at(now)
        return await self.writer.run(lambda c: fan_out(c, now=at, limit=limit))

    def fan_out_sync(
        self, *, now: float | None = None, limit: int = FAN_OUT_BATCH
    ) -> tuple[int, bool]:
        at = self._at(now)
        return self._write(lambda c: fan_out(c, now=at, limit=limit))

    async def claim(
        self,
        owner: str,
        *,
        now: float | None = None,
        limit: int,
        per_endpoint: int,
        lease_seconds: float,
    ) -> list[ClaimedDelivery]:
        at = self._at(now)
        return await self.writer.run(
            lambda c: claim(
                c,
                owner,
                now=at,
                limit=limit,
                per_endpoint=per_endpoint,
                lease_seconds=lease_seconds,
            )
        )

    async def record(self, owner: str, result: AttemptResult, *, now: float | None = None) -> bool:
        """Record one attempt. False when the lease was lost (nothing recorded)."""
        at = self._at(now)
        return await self.writer.run(lambda c: record(c, owner, result, now=at))

    def record_sync(self, owner: str, result: AttemptResult, *, now: float | None = None) -> bool:
        at = self._at(now)
        return self._write(lambda c: record(c, owner, result, now=at))

    async def release(
        self, owner: str, delivery_ids: Sequence[int], *, now: float | None = None
    ) -> int:
        """Give leased deliveries back (shutdown), due now, without counting an attempt."""
        at = self._at(now)
        ids = list(delivery_ids)
        return await self.writer.run(lambda c: _release(c, [owner], ids, at))


# -- the statements (each runs inside the caller's transaction) -----------------------------------


def _live_secrets(row: sqlite3.Row, now: float) -> tuple[str, ...]:
    found = [str(row["secret"])]
    prev, until = row["previous_secret"], row["previous_secret_expires_at"]
    if prev and until is not None and until > now:
        found.append(str(prev))
    return tuple(found)


def fan_out(conn: sqlite3.Connection, *, now: float, limit: int) -> tuple[int, bool]:
    """One exactly-once fan-out step; see the module docstring. Returns (created, more waiting)."""
    cursor = int(
        conn.execute("SELECT last_event_id FROM dispatch_cursor WHERE id = 1").fetchone()[0]
    )
    upto_row = conn.execute(
        "SELECT MAX(id), COUNT(*) FROM (SELECT id FROM events WHERE id > ? ORDER BY id LIMIT ?)",
        (cursor, limit),
    ).fetchone()
    if upto_row[0] is None:
        return 0, False
    upto = int(upto_row[0])
    marks = ",".join("?" * len(WEBHOOK_EVENT_TYPES))
    created = conn.execute(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, account_id, message_id, event_type,"
        " state, attempts, next_attempt_at, created_at, updated_at)"
        " SELECT w.id, e.id, e.account_id, e.message_id, e.type, 'pending', 0, ?, ?, ?"
        " FROM events e JOIN webhooks w ON w.account_id = e.account_id AND w.removed_at IS NULL"
        "   AND e.id > w.from_event_id"
        "   AND (w.events = '' OR instr(' ' || w.events || ' ', ' ' || e.type || ' ') > 0)"
        f" WHERE e.id > ? AND e.id <= ? AND e.type IN ({marks})"
        " ORDER BY e.id, w.id"
        " ON CONFLICT (webhook_id, event_id) DO NOTHING",
        (now, now, now, cursor, upto, *WEBHOOK_EVENT_TYPES),
    ).rowcount
    # Events that are not about a message (a domain's moves): only to endpoints that name them.
    domain_marks = ",".join("?" * len(DOMAIN_EVENT_TYPES))
    created += conn.execute(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, account_id, message_id, event_type,"
        " state, attempts, next_attempt_at, created_at, updated_at)"
        " SELECT w.id, e.id, e.account_id, NULL, e.type, 'pending', 0, ?, ?, ?"
        " FROM events e JOIN webhooks w ON w.account_id = e.account_id AND w.removed_at IS NULL"
        "   AND e.id > w.from_event_id AND instr(' ' || w.events || ' ', ' domain ') > 0"
        f" WHERE e.id > ? AND e.id <= ? AND e.type IN ({domain_marks})"
        " ORDER BY e.id, w.id"
        " ON CONFLICT (webhook_id, event_id) DO NOTHING",
        (now, now, now, cursor, upto, *DOMAIN_EVENT_TYPES),
    ).rowcount
    conn.execute(
        "UPDATE dispatch_cursor SET last_event_id = ? WHERE id = 1 AND last_event_id = ?",
        (upto, cursor),
    )
    return int(created), int(upto_row[1]) >= limit


def claim(
    conn: sqlite3.Connection,
    owner: str,
    *,
    now: float,
    limit: int,
    per_endpoint: int,
    lease_seconds: float,
) -> list[ClaimedDelivery]:
    """Lease up to ``limit`` due deliveries, at most ``per_endpoint`` active per endpoint."""
    # 1. Leases that ran out (their dispatcher died) go back, due now; no attempt is counted.
    conn.execute(
        "UPDATE webhook_deliveries SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL,"
        " next_attempt_at = ?, updated_at = ? WHERE state = 'active' AND lease_expires_at <= ?",
        (now, now, now),
    )
    # 2. Candidates per live endpoint, each bounded by its free slots (an index range per endpoint,
    #    so a large backlog costs nothing here). Held back: a delivery whose message has an earlier
    #    event for this endpoint in flight or not yet tried once.
    endpoints = conn.execute(
        "SELECT w.id, (SELECT COUNT(*) FROM webhook_deliveries a WHERE a.webhook_id = w.id"
        " AND a.state = 'active') AS busy FROM webhooks w WHERE w.removed_at IS NULL"
    ).fetchall()
    candidates: list[tuple[float, int]] = []
    for ep in endpoints:
        free = per_endpoint - int(ep["busy"])
        if free <= 0:
            continue
        candidates.extend(
            (float(r[1]), int(r[0]))
            for r in conn.execute(
                "SELECT d.id, d.next_attempt_at FROM webhook_deliveries d"
                " WHERE d.webhook_id = ? AND d.state = 'pending' AND d.next_attempt_at <= ?"
                " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.webhook_id = d.webhook_id"
                "   AND p.message_id = d.message_id AND p.id < d.id"
                "   AND (p.state = 'active' OR (p.state = 'pending' AND p.attempts = 0)))"
                " ORDER BY d.next_attempt_at, d.id LIMIT ?",
                (ep["id"], now, free),
            )
        )
    if not candidates:
        return []
    chosen = [i for _, i in sorted(candidates)[:limit]]
    # 3. The one guarded statement that takes the leases.
    marks = ",".join("?" * len(chosen))
    rows = conn.execute(
        "UPDATE webhook_deliveries SET state = 'active', lease_owner = ?, lease_expires_at = ?,"
        f" updated_at = ? WHERE id IN ({marks}) AND state = 'pending'"
        " RETURNING id, webhook_id, event_id, attempts",
        (owner, now + lease_seconds, now, *chosen),
    ).fetchall()
    # 4. What the dispatcher needs to build and sign each one, read in the same transaction.
    claimed: list[ClaimedDelivery] = []
    hooks: dict[str, sqlite3.Row] = {}
    messages: dict[str, sqlite3.Row | None] = {}
    for row in sorted(rows, key=lambda r: int(r["id"])):
        hook = hooks.get(row["webhook_id"])
        if hook is None:
            hook = conn.execute(
                "SELECT id, url, secret, previous_secret, previous_secret_expires_at FROM webhooks WHERE id = ?",
                (row["webhook_id"],),
            ).fetchone()
            hooks[row["webhook_id"]] = hook
        event = conn.execute("SELECT * FROM events WHERE id = ?", (row["event_id"],)).fetchone()
        mid = event["message_id"]
        message = None
        if mid is not None:
            if mid not in messages:
                messages[mid] = conn.execute(
                    "SELECT header_message_id, tags FROM messages WHERE id = ?", (mid,)
                ).fetchone()
            message = messages[mid]
        if event["recipient_id"] is not None:
            rcpts = conn.execute(
                "SELECT address FROM recipients WHERE id = ?", (event["recipient_id"],)
            ).fetchall()
        elif mid is not None:
            rcpts = conn.execute(
                "SELECT address FROM recipients WHERE message_id = ? ORDER BY id", (mid,)
            ).fetchall()
        else:
            rcpts = []
        claimed.append(
            ClaimedDelivery(
                id=int(row["id"]),
                webhook_id=str(row["webhook_id"]),
                url=str(hook["url"]),
                secrets=_live_secrets(hook, now),
                attempts=int(row["attempts"]),
                event_id=int(event["id"]),
                event_type=str(event["type"]),
                event_created_at=float(event["created_at"]),
                event_data=json.loads(event["data"]),
                account_id=int(event["account_id"]),
                message_id=mid,
                header_message_id=str(message["header_message_id"]) if message else "",
                tags=tuple(json.loads(message["tags"])) if message else (),
                recipients=tuple(str(r[0]) for r in rcpts),
            )
        )
    return claimed


def record(conn: sqlite3.Connection, owner: str, result: AttemptResult, *, now: float) -> bool:
    """Compare-and-set the delivery out of ``active`` (with our lease) and add its attempt row."""
    if result.ok:
        state, next_at = DeliveryState.SUCCEEDED, now
    elif result.next_attempt_at is None:
        state, next_at = DeliveryState.ABANDONED, now
    else:
        state, next_at = DeliveryState.PENDING, result.next_attempt_at
    row = conn.execute(
        "UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?,"
        " last_status = ?, last_error = ?, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?"
        " WHERE id = ? AND state = 'active' AND lease_owner = ? RETURNING id",
        (
            state.value,
            next_at,
            result.status,
            result.error[:500],
            now,
            result.delivery_id,
            owner,
        ),
    ).fetchone()
    if row is None:
        return False
    conn.execute(
        "INSERT INTO webhook_attempts (delivery_id, attempt, at, status, outcome, error,"
        " duration_ms, response, next_attempt_at)"
        " VALUES (?, (SELECT COALESCE(MAX(attempt), 0) + 1 FROM webhook_attempts WHERE delivery_id = ?),"
        " ?, ?, ?, ?, ?, ?, ?)",
        (
            result.delivery_id,
            result.delivery_id,
            now,
            result.status,
            result.outcome,
            result.error[:500],
            result.duration_ms,
            result.response.encode("utf-8")[:512].decode("utf-8", "ignore"),
            None if state is not DeliveryState.PENDING else next_at,
        ),
    )
    return True


def _release(
    conn: sqlite3.Connection, owners: Sequence[str], ids: Sequence[int] | None, now: float
) -> int:
    count = 0
    for owner in owners:
        if ids is None:
            count += conn.execute(
                "UPDATE webhook_deliveries SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL,"
                " next_attempt_at = ?, updated_at = ? WHERE state = 'active' AND lease_owner = ?",
                (now, now, owner),
            ).rowcount
        else:
            for delivery_id in ids:
                count += conn.execute(
                    "UPDATE webhook_deliveries SET state = 'pending', lease_owner = NULL,"
                    " lease_expires_at = NULL, next_attempt_at = ?, updated_at = ?"
                    " WHERE id = ? AND state = 'active' AND lease_owner = ?",
                    (now, now, delivery_id, owner),
                ).rowcount
    return count
