"""Admission (SQLite): a message and its recipients committed in one transaction, with the
daily quota and the per-second rate limit decided inside it (``relaygate.policy``'s rules on
the counters this transaction holds), so the limits hold across processes sharing the store.

The hot path. ``admit`` hands plain admissions (no Idempotency-Key, no tracked bodies) to the
group-commit writer as bulk jobs: ``admit_batch`` checks a batch's items in arrival order in
Python after one read of everything they need, then writes all the accepted ones with a few
multi-row statements (each statement's step gives the GIL away; see ``writer``). Anything else,
and a bulk that fails, goes through ``admit_one`` one message per SAVEPOINT. Both write identical
rows (a differential test holds them to it).
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import sqlite3
from typing import Any

from relaygate.clock import utc_day
from relaygate.errors import IdempotentReplay, RequestError
from relaygate.policy import Limits, check_quota, check_rate, limits_after
from relaygate.store.models import Account, NewMessage, NewRecipient, UsageDay
from relaygate.store.sqlite.core import Concern
from relaygate.store.sqlite.rows import (
    MAX_PARAMS,
    in_force,
    insert_event,
    insert_rows,
    suppressed_sql,
)
from relaygate.store.sqlite.writer import REQUEST_LOCK_WAIT
from relaygate.store.states import State

IDEMPOTENCY_WINDOW = 86400.0


class SqliteAdmission(Concern):
    async def admit(self, message: NewMessage, *, limits: bool = True) -> Limits:
        """Commit a message and its recipients durably; returns after the commit.

        Checks the daily quota and per-second rate limit inside the same transaction, so the
        limits hold across processes sharing the store. Raises LimitExceeded (429) when exceeded.
        """
        now = self.clock.now()
        if message.idempotency is None and not message.recipient_bodies:
            return await self.writer.run_bulk(
                self.admit_batch, self._admit_item, (message, now, limits), wait=REQUEST_LOCK_WAIT
            )
        return await self.writer.run(
            lambda conn: self.admit_one(conn, message, now, limits), wait=REQUEST_LOCK_WAIT
        )

    def admit_sync(self, message: NewMessage, *, limits: bool = True) -> Limits:
        now = self.clock.now()
        return self._write(lambda conn: self.admit_one(conn, message, now, limits))

    def admit_one(
        self, conn: sqlite3.Connection, m: NewMessage, now: float, check_limits: bool
    ) -> Limits:
        account = conn.execute("SELECT * FROM accounts WHERE id = ?", (m.account_id,)).fetchone()
        if account is None:
            raise RequestError(401, "unknown account")
        if m.idempotency is not None:
            key, digest = m.idempotency
            seen = conn.execute(
                "SELECT message_id, request_hash FROM idempotency WHERE account_id = ? AND key = ? AND created_at > ?",
                (m.account_id, key, now - IDEMPOTENCY_WINDOW),
            ).fetchone()
            if seen is not None:
                if hmac.compare_digest(seen["request_hash"], digest):
                    raise IdempotentReplay(seen["message_id"])
                raise RequestError(
                    409, "Idempotency-Key was already used with a different request body"
                )
            conn.execute(
                "INSERT OR REPLACE INTO idempotency (account_id, key, request_hash, message_id, created_at) VALUES (?, ?, ?, ?, ?)",
                (m.account_id, key, digest, m.id, now),
            )
        if m.check_suppressions and m.recipients:
            lowered = [r.address.lower() for r in m.recipients]
            found = {
                row[0]: row[1]
                for row in conn.execute(suppressed_sql(len(lowered)), (m.account_id, *lowered, now))
            }
            m = dataclasses.replace(
                m,
                recipients=tuple(
                    dataclasses.replace(r, suppressed=found.get(low))
                    for r, low in zip(m.recipients, lowered, strict=True)
                ),
            )
        live = sum(1 for r in m.recipients if r.suppressed is None)
        limits = (
            self._consume(conn, account, live, now)
            if check_limits
            else limits_after(account["rate_limit"], account["daily_quota"], 0, 0)
        )
        conn.execute(
            f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _message_row(m, now),
        )
        conn.execute("INSERT INTO bodies (message_id, data) VALUES (?, ?)", (m.id, m.body))
        if m.recipient_bodies:
            if len(m.recipient_bodies) != len(m.recipients):
                raise ValueError("one body per recipient is needed for a tracked message")
            conn.execute("UPDATE messages SET tracked = 1 WHERE id = ?", (m.id,))
            conn.executemany(
                "INSERT INTO recipient_bodies (message_id, ordinal, data) VALUES (?, ?, ?)",
                [(m.id, i, data) for i, data in enumerate(m.recipient_bodies)],
            )
        if m.tags:
            conn.executemany(
                "INSERT OR IGNORE INTO message_tags (message_id, account_id, tag) VALUES (?, ?, ?)",
                [(m.id, m.account_id, t) for t in m.tags],
            )
        for ordinal, r in enumerate(m.recipients):
            state = State.SUPPRESSED if r.suppressed else State.QUEUED
            rid = conn.execute(
                f"INSERT INTO recipients ({_RECIPIENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _recipient_row(m, r, state, now, ordinal),
            ).lastrowid
            if r.suppressed:
                insert_event(
                    conn,
                    account_id=m.account_id,
                    message_id=m.id,
                    recipient_id=rid,
                    type_="bounce",
                    now=now,
                    state_to=state.value,
                    data=_suppressed_event_data(r.suppressed),
                )
            else:
                insert_event(
                    conn,
                    account_id=m.account_id,
                    message_id=m.id,
                    recipient_id=rid,
                    type_="queued",
                    now=now,
                    state_to=state.value,
                    data={"channel": m.channel},
                )
        return limits

    def _admit_item(self, conn: sqlite3.Connection, item: tuple[NewMessage, float, bool]) -> Limits:
        return self.admit_one(conn, *item)

    def admit_batch(
        self, conn: sqlite3.Connection, items: list[tuple[NewMessage, float, bool]]
    ) -> list[tuple[bool, Any]]:
        """``admit_one`` for a batch's plain admissions (no Idempotency-Key, no tracked bodies) at
        once: the same checks in the same order, answered per item, then a few multi-row
        statements for all the accepted ones (see GroupWriter.run_bulk). The usage counters are
        read once, counted here and written back once: this transaction holds the write lock,
        so nobody else moves them meanwhile. A refused item counts nothing, as in ``admit_one``."""
        accounts, seconds, days, suppressed = self._batch_reads(conn, items)
        touched_seconds: set[tuple[int, int]] = set()
        clean_before: int | None = None
        touched_days: set[tuple[int, str]] = set()
        outcomes: list[tuple[bool, Any]] = []
        accepted: list[tuple[NewMessage, float, tuple[NewRecipient, ...]]] = []
        for m, now, check_limits in items:
            account = accounts.get(m.account_id)
            if account is None:
                outcomes.append((False, RequestError(401, "unknown account")))
                continue
            recipients = m.recipients
            if m.check_suppressions:
                found = suppressed.get(m.account_id, {})
                recipients = tuple(
                    dataclasses.replace(r, suppressed=in_force(found.get(r.address.lower()), now))
                    for r in recipients
                )
            live = sum(1 for r in recipients if r.suppressed is None)
            rate_limit, quota = account
            if not check_limits:
                outcomes.append((True, limits_after(rate_limit, quota, 0, 0)))
                accepted.append((m, now, recipients))
                continue
            second, day = (m.account_id, int(now)), (m.account_id, utc_day(now))
            requests = seconds.get(second, 0) + 1
            refusal = check_rate(rate_limit, requests)
            if refusal is not None:
                outcomes.append((False, refusal))
                continue
            used = days.get(day, 0) + live
            refusal = check_quota(rate_limit, quota, requests, used, live, now)
            if refusal is not None:
                outcomes.append((False, refusal))
                continue
            seconds[second], days[day] = requests, used
            if requests == 1 and second[1] % 64 == 0:  # _consume's clean-up, on its schedule
                clean_before = max(clean_before or 0, second[1] - 60)
            touched_seconds.add(second)
            touched_days.add(day)
            outcomes.append((True, limits_after(rate_limit, quota, requests, used)))
            accepted.append((m, now, recipients))
        if touched_seconds:
            insert_rows(
                conn,
                "INSERT INTO usage_second (account_id, second, requests) VALUES {}"
                " ON CONFLICT (account_id, second) DO UPDATE SET requests = excluded.requests",
                [(a, sec, seconds[(a, sec)]) for a, sec in sorted(touched_seconds)],
            )
        if clean_before is not None:
            conn.execute("DELETE FROM usage_second WHERE second < ?", (clean_before,))
        if touched_days:
            insert_rows(
                conn,
                "INSERT INTO usage_daily (account_id, day, recipients) VALUES {}"
                " ON CONFLICT (account_id, day) DO UPDATE SET recipients = excluded.recipients",
                [(a, d, days[(a, d)]) for a, d in sorted(touched_days)],
            )
        if accepted:
            self._insert_messages(conn, accepted)
        return outcomes

    @staticmethod
    def _batch_reads(
        conn: sqlite3.Connection, items: list[tuple[NewMessage, float, bool]]
    ) -> tuple[
        dict[int, tuple[int, int]],
        dict[tuple[int, int], int],
        dict[tuple[int, str], int],
        dict[int, dict[str, tuple[str, float | None]]],
    ]:
        """Everything the batch's checks read, in one statement when its parameters fit (each
        statement is a trip through the GIL): account → (rate limit, daily quota); (account,
        second) → requests; (account, UTC day) → recipients; account → suppressed address →
        reason, for the items that ask."""
        accounts = sorted({m.account_id for m, _, _ in items})
        counted = [(m.account_id, now) for m, now, check in items if check]
        secs = sorted({int(now) for _, now in counted})
        day_keys = sorted({utc_day(now) for _, now in counted})
        a_marks = ",".join("?" * len(accounts))
        parts = [
            f"SELECT 'a', id, NULL, rate_limit, daily_quota FROM accounts WHERE id IN ({a_marks})"
        ]
        params: list[Any] = list(accounts)
        if counted:
            parts.append(
                f"SELECT 's', account_id, second, requests, NULL FROM usage_second"
                f" WHERE account_id IN ({a_marks}) AND second IN ({','.join('?' * len(secs))})"
            )
            parts.append(
                f"SELECT 'd', account_id, day, recipients, NULL FROM usage_daily"
                f" WHERE account_id IN ({a_marks}) AND day IN ({','.join('?' * len(day_keys))})"
            )
            params += [*accounts, *secs, *accounts, *day_keys]
        wanted: dict[int, set[str]] = {}
        earliest: dict[int, float] = {}
        for m, now, _ in items:
            if m.check_suppressions and m.recipients:
                wanted.setdefault(m.account_id, set()).update(
                    r.address.lower() for r in m.recipients
                )
                earliest[m.account_id] = min(now, earliest.get(m.account_id, now))
        lookups = [(a, sorted(addresses)) for a, addresses in wanted.items()]
        separate = len(params) + sum(len(x) + 2 for _, x in lookups) > MAX_PARAMS
        if not separate:
            for account_id, lowered in lookups:
                parts.append(
                    f"SELECT 'x', account_id, address, reason, expires_at FROM suppressions"
                    f" WHERE account_id = ? AND address IN ({','.join('?' * len(lowered))})"
                    " AND (expires_at IS NULL OR expires_at > ?)"
                )
                params += [account_id, *lowered, earliest[account_id]]
        found_accounts: dict[int, tuple[int, int]] = {}
        seconds: dict[tuple[int, int], int] = {}
        days: dict[tuple[int, str], int] = {}
        suppressed: dict[int, dict[str, tuple[str, float | None]]] = {a: {} for a in wanted}
        for kind, k1, k2, v1, v2 in conn.execute(" UNION ALL ".join(parts), params):
            if kind == "a":
                found_accounts[k1] = (v1, v2)
            elif kind == "s":
                seconds[(k1, k2)] = v1
            elif kind == "d":
                days[(k1, k2)] = v1
            else:
                suppressed[k1][k2] = (v1, v2)
        if separate:  # a batch with many recipients: the suppression list on its own
            for account_id, lowered in lookups:
                for start in range(0, len(lowered), MAX_PARAMS - 2):
                    part = lowered[start : start + MAX_PARAMS - 2]
                    suppressed[account_id].update(
                        (row[0], (row[1], row[2]))
                        for row in conn.execute(
                            suppressed_sql(len(part)), (account_id, *part, earliest[account_id])
                        )
                    )
        return found_accounts, seconds, days, suppressed

    @staticmethod
    def _insert_messages(
        conn: sqlite3.Connection, accepted: list[tuple[NewMessage, float, tuple[NewRecipient, ...]]]
    ) -> None:
        """The rows ``admit_one`` writes for an accepted message, for many messages at once."""
        messages: list[tuple[Any, ...]] = []
        bodies: list[tuple[Any, ...]] = []
        tags: list[tuple[Any, ...]] = []
        recipients: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        for m, now, rcpts in accepted:
            messages.append(_message_row(m, now))
            bodies.append((m.id, m.body))
            tags.extend((m.id, m.account_id, t) for t in m.tags)
            for ordinal, r in enumerate(rcpts):
                state = State.SUPPRESSED if r.suppressed else State.QUEUED
                recipients.append(_recipient_row(m, r, state, now, ordinal))
                if r.suppressed:
                    kind, data = "bounce", _suppressed_event_data(r.suppressed)
                else:
                    kind, data = "queued", {"channel": m.channel}
                events.append((m.id, ordinal, kind, json.dumps(data, separators=(",", ":"))))
        insert_rows(conn, f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES {{}}", messages)
        insert_rows(conn, "INSERT INTO bodies (message_id, data) VALUES {}", bodies)
        if tags:
            insert_rows(
                conn,
                "INSERT OR IGNORE INTO message_tags (message_id, account_id, tag) VALUES {}",
                tags,
            )
        insert_rows(
            conn,
            f"INSERT INTO recipients ({_RECIPIENT_COLUMNS}) VALUES {{}}",
            recipients,
        )
        # each recipient's first event, with the id SQLite just gave the recipient (in
        # recipient order, as _admit writes them)
        insert_rows(
            conn,
            "WITH e (message_id, ordinal, type, data) AS (VALUES {})"
            " INSERT INTO events (account_id, message_id, recipient_id, type, state_from,"
            " state_to, created_at, data)"
            " SELECT r.account_id, r.message_id, r.id, e.type, NULL, r.state, r.queued_at, e.data"
            " FROM e JOIN recipients r ON r.message_id = e.message_id AND r.ordinal = e.ordinal"
            " ORDER BY r.id",
            events,
        )

    def _consume(
        self, conn: sqlite3.Connection, account: sqlite3.Row, count: int, now: float
    ) -> Limits:
        """Count this request and its recipients; 429 when over. The caller's savepoint (or
        transaction) rolls the increments back with the refusal, so a refused request counts nothing."""
        second = int(now)
        day = utc_day(now)
        rate_limit, quota = account["rate_limit"], account["daily_quota"]
        requests = conn.execute(
            "INSERT INTO usage_second (account_id, second, requests) VALUES (?, ?, 1)"
            " ON CONFLICT (account_id, second) DO UPDATE SET requests = requests + 1 RETURNING requests",
            (account["id"], second),
        ).fetchone()[0]
        refusal = check_rate(rate_limit, requests)
        if refusal is not None:
            raise refusal
        used = conn.execute(
            "INSERT INTO usage_daily (account_id, day, recipients) VALUES (?, ?, ?)"
            " ON CONFLICT (account_id, day) DO UPDATE SET recipients = recipients + excluded.recipients"
            " RETURNING recipients",
            (account["id"], day, count),
        ).fetchone()[0]
        refusal = check_quota(rate_limit, quota, requests, used, count, now)
        if refusal is not None:
            raise refusal
        if requests == 1 and second % 64 == 0:
            conn.execute("DELETE FROM usage_second WHERE second < ?", (second - 60,))
        return limits_after(rate_limit, quota, requests, used)


class SqliteUsage(Concern):
    def current_limits(self, account: Account) -> Limits:
        now = self.clock.now()
        rows = self._read(
            "SELECT requests FROM usage_second WHERE account_id = ? AND second = ?",
            (account.id, int(now)),
        )
        requests = rows[0][0] if rows else 0
        day_rows = self._read(
            "SELECT recipients FROM usage_daily WHERE account_id = ? AND day = ?",
            (account.id, utc_day(now)),
        )
        used = day_rows[0][0] if day_rows else 0
        return limits_after(account.rate_limit, account.daily_quota, requests, used)

    def days(self, account_id: int, *, first: str, last: str) -> list[UsageDay]:
        rows = self._read(
            f"SELECT {', '.join(_USAGE_COLUMNS)} FROM usage_days"
            " WHERE account_id = ? AND day BETWEEN ? AND ? ORDER BY day",
            (account_id, first, last),
        )
        return [UsageDay(**dict(zip(_USAGE_COLUMNS, r, strict=True))) for r in rows]

    async def count_request(self, account_id: int) -> Limits:
        now = self.clock.now()
        return await self.writer.run(
            lambda conn: _count_request(conn, account_id, now), wait=REQUEST_LOCK_WAIT
        )


def _count_request(conn: sqlite3.Connection, account_id: int, now: float) -> Limits:
    """One request this second for the account (the writer's savepoint undoes a refusal)."""
    account = conn.execute(
        "SELECT rate_limit, daily_quota FROM accounts WHERE id = ?", (account_id,)
    ).fetchone()
    if account is None:
        raise RequestError(401, "unknown account")
    requests = conn.execute(
        "INSERT INTO usage_second (account_id, second, requests) VALUES (?, ?, 1)"
        " ON CONFLICT (account_id, second) DO UPDATE SET requests = requests + 1 RETURNING requests",
        (account_id, int(now)),
    ).fetchone()[0]
    refusal = check_rate(account["rate_limit"], requests)
    if refusal is not None:
        raise refusal
    day = conn.execute(
        "SELECT recipients FROM usage_daily WHERE account_id = ? AND day = ?",
        (account_id, utc_day(now)),
    ).fetchone()
    return limits_after(
        account["rate_limit"], account["daily_quota"], requests, day[0] if day else 0
    )


_USAGE_COLUMNS = (
    "day",
    "accepted",
    "delivered",
    "deferred",
    "bounced",
    "complained",
    "suppressed",
    "opened",
    "clicked",
)
_MESSAGE_COLUMNS = (
    "id, account_id, channel, from_addr, sender_domain, subject, header_message_id, tags, size,"
    " created_at"
)
_RECIPIENT_COLUMNS = (
    "message_id, account_id, address, domain, kind, state, queued_at, next_attempt_at,"
    " updated_at, ordinal"
)


def _message_row(m: NewMessage, now: float) -> tuple[Any, ...]:
    """A ``messages`` row, in ``_MESSAGE_COLUMNS`` order."""
    tags = json.dumps(list(m.tags))
    return (
        m.id,
        m.account_id,
        m.channel,
        m.from_addr,
        m.sender_domain,
        m.subject,
        m.header_message_id,
        tags,
        len(m.body),
        now,
    )


def _recipient_row(
    m: NewMessage, r: NewRecipient, state: State, now: float, ordinal: int
) -> tuple[Any, ...]:
    """A ``recipients`` row, in ``_RECIPIENT_COLUMNS`` order."""
    domain = r.address.rpartition("@")[2].lower()
    return (m.id, m.account_id, r.address, domain, r.kind, state.value, now, now, now, ordinal)


def _suppressed_event_data(reason: str) -> dict[str, Any]:
    return {
        "reason": "suppressed",
        "bounce_type": "hard",
        "diagnostic": f"recipient is suppressed: {reason}",
        "status": "5.7.1",
        "smtp_response": "",
    }
