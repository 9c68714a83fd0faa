"""The store interface: every SQL statement relaygate runs lives behind this class.

Callers never see sqlite3. Admin operations (CLI) are synchronous; the hot path (admission,
claiming, recording outcomes) goes through the group-commit writer and is awaited. Every
recipient state change is a guarded compare-and-set (``WHERE state = ?``) whose row count is
checked, and writes its event row in the same transaction.

Trust: API key secrets arrive here only to be hashed (SHA-256; the secrets are 190+ bits of
randomness, so a fast hash is right) and compared with ``hmac.compare_digest``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import mmap
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from relaygate.clock import Clock, SystemClock, utc_day
from relaygate.compose.templates import Template
from relaygate.errors import IdempotentReplay, IllegalTransition, RequestError, StoreUnavailable
from relaygate.store import db
from relaygate.store.models import (
    Account,
    ApiKey,
    Claimed,
    Event,
    Identity,
    Limits,
    NewMessage,
    NewRecipient,
    Outcome,
    PreparedBody,
)
from relaygate.store.states import State, allowed
from relaygate.store.writer import REQUEST_LOCK_WAIT, GroupWriter

log = logging.getLogger("relaygate.store")
PLANS = ("free", "trial", "paid")
SCOPES = ("email:send", "email:read")
T = TypeVar("T")
IDEMPOTENCY_WINDOW = 86400.0
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_key_secret() -> str:
    return "sk_live_" + "".join(secrets.choice(_B62) for _ in range(40))


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(16)


def _row_account(row: sqlite3.Row) -> Account:
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


def _row_key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        account_id=row["account_id"],
        name=row["name"],
        scopes=tuple(row["scopes"].split()),
        hint=row["hint"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


def _row_identity(row: sqlite3.Row) -> Identity:
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


def _row_event(row: sqlite3.Row) -> Event:
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


def _store_prepared(conn: sqlite3.Connection, p: PreparedBody) -> bool:
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
    conn.execute("UPDATE bodies SET data = ? WHERE message_id = ?", (p.data, p.message_id))
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
#: tenth of an SMTP submission: each statement after a group commit re-reads the WAL index.
POLICY_TTL = 1.0
_POLICY_MAX = 10_000
_STAMP_BYTES = 8
_MISS = object()


class PolicyCache:
    """Small TTL cache for the policy reads above, dropped whenever the stamp changes.

    The stamp is 8 bytes in a file next to the database, mapped into memory: checking it is a
    memory read (a ``stat`` per lookup released the GIL to the writer thread and cost 7 % of
    SMTP throughput); a change writes 8 new random bytes (no read-modify-write to race)."""

    def __init__(
        self,
        clock: Clock,
        stamp: Path | None = None,
        *,
        ttl: float = POLICY_TTL,
        max_entries: int = _POLICY_MAX,
    ) -> None:
        self.clock = clock
        self.stamp = stamp
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._map: mmap.mmap | None = None
        self._mapped = stamp is None  # tried (or nothing to try)
        self._seen = b""
        self._generation = 0  # moved by every clear(): a put after it is dropped

    def _attach(self) -> None:
        """Map the stamp (made, 8 zero bytes, when missing: a reader needs no write access)."""
        self._mapped = True
        assert self.stamp is not None
        try:
            if not self.stamp.exists() or self.stamp.stat().st_size < _STAMP_BYTES:
                fd = os.open(self.stamp, os.O_WRONLY | os.O_CREAT, 0o644)
                try:
                    size = os.fstat(fd).st_size
                    if size < _STAMP_BYTES:
                        os.pwrite(fd, bytes(_STAMP_BYTES - size), size)
                finally:
                    os.close(fd)
            with open(self.stamp, "rb") as f:
                self._map = mmap.mmap(f.fileno(), _STAMP_BYTES, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            log.warning(
                "policy stamp unavailable; the cache relies on its TTL", extra={"error": str(exc)}
            )

    def _stamp(self) -> bytes:
        if not self._mapped:
            self._attach()
        try:
            return self._map[:_STAMP_BYTES] if self._map is not None else b""
        except ValueError:  # closed under us (Store.close): the TTL alone
            return b""

    def get(self, key: tuple[Any, ...]) -> tuple[Any, tuple[bytes, int]]:
        """The cached value (or ``_MISS``) and the token to ``put`` what is read instead."""
        stamp = self._stamp()
        if stamp != self._seen:  # some Store changed the policy since: forget everything
            self.clear()
            self._seen = stamp
        token = (stamp, self._generation)
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self.clock.now():
            return _MISS, token
        return entry[1], token

    def put(self, key: tuple[Any, ...], value: Any, token: tuple[bytes, int]) -> None:
        """Remember ``value``, read after ``get`` gave ``token`` — unless the policy changed in
        between (the stamp moved, or a write of this process cleared the cache): then the
        value may predate the change, and the next lookup reads again."""
        if self.ttl <= 0 or token != (self._stamp(), self._generation):
            return
        if len(self._entries) >= self.max_entries:
            self._entries = {}
        self._entries[key] = (self.clock.now() + self.ttl, value)

    def clear(self) -> None:
        self._generation += 1
        self._entries = {}

    def changed(self) -> None:
        """Tell every process sharing the store (this one too). Best effort: a process that
        cannot write the stamp (another user) leaves the others to the TTL."""
        self.clear()
        if self.stamp is None:
            return
        try:
            fd = os.open(self.stamp, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                os.pwrite(fd, secrets.token_bytes(_STAMP_BYTES), 0)
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("cannot write the policy stamp", extra={"error": str(exc)})

    def close(self) -> None:
        self._mapped = self.stamp is None  # a Store used again maps the stamp again
        if self._map is not None:
            self._map.close()
            self._map = None


class Store:
    """relaygate's durable state. One instance per process; thread-safe for reads."""

    def __init__(self, path: Path, *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.clock: Clock = clock or SystemClock()
        self._local = threading.local()
        self.writer = GroupWriter(self.path)
        self._migrated = False
        self.policy = PolicyCache(self.clock, Path(f"{self.path}-policy"))
        self._policy_generation: int | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def open(self) -> Store:
        """Create/migrate the database. Idempotent."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._conn()
        db.migrate(conn)
        self._migrated = True
        return self

    def start_writer(self) -> None:
        self.writer.start()

    def close(self) -> None:
        self.writer.stop()
        self.policy.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = db.connect(self.path)
            self._local.conn = conn
        return conn

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        # db.translated(), spelled out: this runs several times per request.
        try:
            return list(self._conn().execute(sql, params))
        except sqlite3.IntegrityError:
            raise
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            raise StoreUnavailable(f"store unavailable: {exc}") from exc

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn()
        self.policy.clear()
        generation = None
        try:
            with db.transaction(conn):
                result = fn(conn)
                generation = self._generation(conn)
        finally:
            self.policy.clear()  # also what a reader cached while this ran
        if generation is None or generation != self._policy_generation:
            self._policy_generation = generation
            self.policy.changed()
        return result

    @staticmethod
    def _generation(conn: sqlite3.Connection) -> int | None:
        """``policy_generation`` (None before schema 8 exists: then any write counts)."""
        try:
            row = conn.execute("SELECT n FROM policy_generation WHERE id = 1").fetchone()
        except sqlite3.OperationalError:
            return None
        return int(row[0]) if row else None

    def writable(self) -> bool:
        """A cheap probe that the store accepts a write (blocks up to the busy timeout)."""
        try:
            self._write(lambda c: c.execute("CREATE TABLE IF NOT EXISTS _probe (x)"))
        except Exception:
            return False
        return True

    async def probe(self) -> bool:
        """Readiness: the writer commits a probe within ``REQUEST_LOCK_WAIT`` (never blocks the
        event loop; False when the store is busy or failing)."""
        try:
            await self.writer.run(
                lambda c: c.execute("CREATE TABLE IF NOT EXISTS _probe (x)"),
                wait=REQUEST_LOCK_WAIT,
            )
        except StoreUnavailable:
            return False
        return True

    # -- accounts ---------------------------------------------------------------------------
    def create_account(
        self, name: str, *, plan: str = "trial", daily_quota: int = 10_000, rate_limit: int = 100
    ) -> Account:
        if plan not in PLANS:
            raise RequestError(400, f"plan must be one of {', '.join(PLANS)}")
        if not name.strip():
            raise RequestError(400, "account name must not be empty")
        if daily_quota < 0 or rate_limit < 1:
            raise RequestError(400, "daily quota must be >= 0 and rate limit >= 1")
        now = self.clock.now()
        new_id = self._write(
            lambda c: (
                c.execute(
                    "INSERT INTO accounts (name, plan, daily_quota, rate_limit, created_at) VALUES (?, ?, ?, ?, ?)",
                    (name, plan, daily_quota, rate_limit, now),
                ).lastrowid
            )
        )
        account = self.get_account(int(new_id or 0))
        assert account is not None
        return account

    def get_account(self, account_id: int) -> Account | None:
        key = ("account", account_id)
        found, token = self.policy.get(key)
        if found is not _MISS:
            return found  # type: ignore[no-any-return]
        rows = self._read("SELECT * FROM accounts WHERE id = ?", (account_id,))
        account = _row_account(rows[0]) if rows else None
        self.policy.put(key, account, token)
        return account

    def list_accounts(self) -> list[Account]:
        return [_row_account(r) for r in self._read("SELECT * FROM accounts ORDER BY id")]

    def update_account(self, account_id: int, **fields: Any) -> Account:
        allowed_fields = {
            "plan",
            "daily_quota",
            "rate_limit",
            "track_opens",
            "track_clicks",
            "name",
        }
        bad = set(fields) - allowed_fields
        if bad:
            raise RequestError(400, f"unknown account fields: {', '.join(sorted(bad))}")
        if "plan" in fields and fields["plan"] not in PLANS:
            raise RequestError(400, f"plan must be one of {', '.join(PLANS)}")
        if fields:
            assignments = ", ".join(f"{k} = ?" for k in fields)
            self._write(
                lambda c: c.execute(
                    f"UPDATE accounts SET {assignments} WHERE id = ?",
                    (*fields.values(), account_id),
                )
            )
        account = self.get_account(account_id)
        if account is None:
            raise RequestError(404, f"no account {account_id}")
        return account

    # -- API keys ---------------------------------------------------------------------------
    def create_key(
        self, account_id: int, *, scopes: Iterable[str] = ("email:send",), name: str = ""
    ) -> tuple[ApiKey, str]:
        scope_list = sorted(set(scopes))
        for scope in scope_list:
            if scope not in SCOPES:
                raise RequestError(400, f"unknown scope {scope!r}; scopes are {', '.join(SCOPES)}")
        if not scope_list:
            raise RequestError(400, "a key needs at least one scope")
        if self.get_account(account_id) is None:
            raise RequestError(404, f"no account {account_id}")
        secret = new_key_secret()
        key_id = "key_" + secrets.token_hex(8)
        now = self.clock.now()
        self._write(
            lambda c: c.execute(
                "INSERT INTO api_keys (id, account_id, name, scopes, secret_hash, hint, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key_id,
                    account_id,
                    name,
                    " ".join(scope_list),
                    hash_secret(secret),
                    secret[:12] + "…" + secret[-4:],
                    now,
                ),
            )
        )
        key = self.get_key(key_id)
        assert key is not None
        return key, secret

    def get_key(self, key_id: str) -> ApiKey | None:
        rows = self._read("SELECT * FROM api_keys WHERE id = ?", (key_id,))
        return _row_key(rows[0]) if rows else None

    def list_keys(self, account_id: int | None = None) -> list[ApiKey]:
        if account_id is None:
            rows = self._read("SELECT * FROM api_keys ORDER BY created_at, id")
        else:
            rows = self._read(
                "SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at, id", (account_id,)
            )
        return [_row_key(r) for r in rows]

    def revoke_key(self, key_id: str) -> bool:
        now = self.clock.now()
        count = self._write(
            lambda c: (
                c.execute(
                    "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                    (now, key_id),
                ).rowcount
            )
        )
        return bool(count)

    def authenticate(self, secret: str) -> tuple[ApiKey, Account] | None:
        """The live key and its account for ``secret``, or None (unknown or revoked)."""
        if not secret or len(secret) > 200:
            return None
        digest = hash_secret(secret)
        cached, token = self.policy.get(("key", digest))
        if cached is not _MISS:
            return cached  # type: ignore[no-any-return]
        rows = self._read(
            "SELECT k.id, k.account_id, k.name, k.scopes, k.secret_hash, k.hint, k.created_at, k.revoked_at,"
            " a.name AS a_name, a.plan, a.daily_quota, a.rate_limit, a.track_opens, a.track_clicks, a.created_at AS a_created"
            " FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.secret_hash = ?",
            (digest,),
        )
        if (
            not rows
            or not hmac.compare_digest(rows[0]["secret_hash"], digest)
            or rows[0]["revoked_at"] is not None
        ):
            return None
        r = rows[0]
        account = Account(
            id=r["account_id"],
            name=r["a_name"],
            plan=r["plan"],
            daily_quota=r["daily_quota"],
            rate_limit=r["rate_limit"],
            track_opens=bool(r["track_opens"]),
            track_clicks=bool(r["track_clicks"]),
            created_at=r["a_created"],
        )
        found = (_row_key(r), account)
        self.policy.put(
            ("key", digest), found, token
        )  # only live keys: failures are not remembered
        return found

    # -- identities -------------------------------------------------------------------------
    def add_identity(self, account_id: int, value: str, *, verified: bool = False) -> Identity:
        value = value.strip().lower().rstrip(".")
        kind = "address" if "@" in value else "domain"
        if self.get_account(account_id) is None:
            raise RequestError(404, f"no account {account_id}")
        now = self.clock.now()
        token = secrets.token_urlsafe(24)
        status = "verified" if verified else "pending"

        def fn(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO identities (account_id, kind, value, status, token, created_at, verified_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (account_id, value) DO UPDATE SET status = CASE WHEN excluded.status = 'verified' THEN 'verified' ELSE identities.status END,"
                " verified_at = COALESCE(identities.verified_at, excluded.verified_at)",
                (account_id, kind, value, status, token, now, now if verified else None),
            )

        self._write(fn)
        rows = self._read(
            "SELECT * FROM identities WHERE account_id = ? AND value = ?", (account_id, value)
        )
        return _row_identity(rows[0])

    def list_identities(self, account_id: int | None = None) -> list[Identity]:
        if account_id is None:
            rows = self._read("SELECT * FROM identities ORDER BY id")
        else:
            rows = self._read(
                "SELECT * FROM identities WHERE account_id = ? ORDER BY id", (account_id,)
            )
        return [_row_identity(r) for r in rows]

    def set_identity_status(self, identity_id: int, status: str) -> None:
        now = self.clock.now()
        self._write(
            lambda c: c.execute(
                "UPDATE identities SET status = ?, verified_at = CASE WHEN ? = 'verified' THEN ? ELSE verified_at END WHERE id = ?",
                (status, status, now, identity_id),
            )
        )

    def sender_allowed(self, account_id: int, address: str) -> bool:
        """True when ``address`` is a verified identity of the account (exact, or at a verified domain)."""
        addr = address.lower()
        key = ("sender", account_id, addr)
        found, token = self.policy.get(key)
        if found is not _MISS:
            return bool(found)
        domain = addr.rpartition("@")[2]
        rows = self._read(
            "SELECT 1 FROM identities WHERE account_id = ? AND status = 'verified' AND"
            " ((kind = 'address' AND value = ?) OR (kind = 'domain' AND value = ?)) LIMIT 1",
            (account_id, addr, domain),
        )
        self.policy.put(key, bool(rows), token)
        return bool(rows)

    # -- admission (hot path, group commit) -------------------------------------------------
    async def admit(self, message: NewMessage, *, limits: bool = True) -> Limits:
        """Commit a message and its recipients durably; returns after the commit.

        Checks the daily quota and per-second rate limit inside the same transaction, so the
        limits hold across processes sharing the store. Raises RequestError(429) when exceeded.
        """
        now = self.clock.now()
        if message.idempotency is None and not message.recipient_bodies:
            return await self.writer.run_bulk(
                self._admit_many, self._admit_item, (message, now, limits), wait=REQUEST_LOCK_WAIT
            )
        return await self.writer.run(
            lambda conn: self._admit(conn, message, now, limits), wait=REQUEST_LOCK_WAIT
        )

    def admit_sync(self, message: NewMessage, *, limits: bool = True) -> Limits:
        now = self.clock.now()
        return self._write(lambda conn: self._admit(conn, message, now, limits))

    def _admit(
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
                for row in conn.execute(
                    _suppressed_sql(len(lowered)), (m.account_id, *lowered, now)
                )
            }
            m = dataclasses.replace(
                m,
                recipients=tuple(
                    dataclasses.replace(r, suppressed=found.get(low))
                    for r, low in zip(m.recipients, lowered, strict=True)
                ),
            )
        live = sum(1 for r in m.recipients if r.suppressed is None)
        limits = self._consume(conn, account, live, now) if check_limits else _no_limits(account)
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
        return self._admit(conn, *item)

    def _admit_many(
        self, conn: sqlite3.Connection, items: list[tuple[NewMessage, float, bool]]
    ) -> list[tuple[bool, Any]]:
        """``_admit`` for a batch's plain admissions (no Idempotency-Key, no tracked bodies) at
        once: the same checks in the same order, answered per item, then a few multi-row
        statements for all the accepted ones (see GroupWriter.run_bulk). The usage counters are
        read once, counted here and written back once: this transaction holds the write lock,
        so nobody else moves them meanwhile. A refused item counts nothing, as in ``_admit``."""
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
                    dataclasses.replace(r, suppressed=_in_force(found.get(r.address.lower()), now))
                    for r in recipients
                )
            live = sum(1 for r in recipients if r.suppressed is None)
            rate_limit, quota = account
            if not check_limits:
                outcomes.append((True, _limits(rate_limit, quota, 0, 0)))
                accepted.append((m, now, recipients))
                continue
            second, day = (m.account_id, int(now)), (m.account_id, utc_day(now))
            requests = seconds.get(second, 0) + 1
            if requests > rate_limit:
                outcomes.append((False, _rate_refusal(rate_limit)))
                continue
            used = days.get(day, 0) + live
            if used > quota:
                outcomes.append(
                    (False, _quota_refusal(rate_limit, quota, requests, used, live, now))
                )
                continue
            seconds[second], days[day] = requests, used
            if requests == 1 and second[1] % 64 == 0:  # _consume's clean-up, on its schedule
                clean_before = max(clean_before or 0, second[1] - 60)
            touched_seconds.add(second)
            touched_days.add(day)
            outcomes.append((True, _limits(rate_limit, quota, requests, used)))
            accepted.append((m, now, recipients))
        if touched_seconds:
            _insert_rows(
                conn,
                "INSERT INTO usage_second (account_id, second, requests) VALUES {}"
                " ON CONFLICT (account_id, second) DO UPDATE SET requests = excluded.requests",
                [(a, sec, seconds[(a, sec)]) for a, sec in sorted(touched_seconds)],
            )
        if clean_before is not None:
            conn.execute("DELETE FROM usage_second WHERE second < ?", (clean_before,))
        if touched_days:
            _insert_rows(
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
        separate = len(params) + sum(len(x) + 2 for _, x in lookups) > _MAX_PARAMS
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
                for start in range(0, len(lowered), _MAX_PARAMS - 2):
                    part = lowered[start : start + _MAX_PARAMS - 2]
                    suppressed[account_id].update(
                        (row[0], (row[1], row[2]))
                        for row in conn.execute(
                            _suppressed_sql(len(part)), (account_id, *part, earliest[account_id])
                        )
                    )
        return found_accounts, seconds, days, suppressed

    @staticmethod
    def _insert_messages(
        conn: sqlite3.Connection, accepted: list[tuple[NewMessage, float, tuple[NewRecipient, ...]]]
    ) -> None:
        """The rows ``_admit`` writes for an accepted message, for many messages at once."""
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
        _insert_rows(conn, f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES {{}}", messages)
        _insert_rows(conn, "INSERT INTO bodies (message_id, data) VALUES {}", bodies)
        if tags:
            _insert_rows(
                conn,
                "INSERT OR IGNORE INTO message_tags (message_id, account_id, tag) VALUES {}",
                tags,
            )
        _insert_rows(
            conn,
            f"INSERT INTO recipients ({_RECIPIENT_COLUMNS}) VALUES {{}}",
            recipients,
        )
        # each recipient's first event, with the id SQLite just gave the recipient (in
        # recipient order, as _admit writes them)
        _insert_rows(
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
        if requests > rate_limit:
            raise _rate_refusal(rate_limit)
        used = conn.execute(
            "INSERT INTO usage_daily (account_id, day, recipients) VALUES (?, ?, ?)"
            " ON CONFLICT (account_id, day) DO UPDATE SET recipients = recipients + excluded.recipients"
            " RETURNING recipients",
            (account["id"], day, count),
        ).fetchone()[0]
        if used > quota:
            raise _quota_refusal(rate_limit, quota, requests, used, count, now)
        if requests == 1 and second % 64 == 0:
            conn.execute("DELETE FROM usage_second WHERE second < ?", (second - 60,))
        return _limits(rate_limit, quota, requests, used)

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
        return _limits(account.rate_limit, account.daily_quota, requests, used)

    # -- delivery (claim / lease / outcomes) -------------------------------------------------
    async def claim(
        self, owner: str, *, limit: int, lease_seconds: float, max_lease_losses: int = 5
    ) -> list[Claimed]:
        now = self.clock.now()
        claimed: list[Claimed] = await self.writer.run(
            lambda c: self._claim(c, owner, limit, lease_seconds, max_lease_losses, now)
        )
        return claimed

    async def claim_message(
        self, owner: str, message_id: str, *, lease_seconds: float
    ) -> list[Claimed]:
        """Lease every pending recipient of one message now (smarthost synchronous hand-off)."""
        now = self.clock.now()
        claimed: list[Claimed] = await self.writer.run(
            lambda c: self._claim(
                c, owner, 1000, lease_seconds, 1_000_000, now, message_id=message_id
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
    ) -> list[Claimed]:
        # 1. Leases that expired (their worker died) go back to the queue, or to held after repeated losses.
        stale = conn.execute(
            "SELECT id, lease_losses FROM recipients WHERE state = 'active' AND lease_expires_at <= ?",
            (now,),
        ).fetchall()
        for row in stale:
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
                _store_prepared(c, prepared)
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
            elif dst is State.BOUNCED and o.data.get("bounce_type") == "hard":
                row = conn.execute(
                    "SELECT account_id, address FROM recipients WHERE id = ?", (o.recipient_id,)
                ).fetchone()
                add_suppression(
                    conn,
                    account_id=row[0],
                    address=row[1],
                    reason=str(o.data.get("reason", "undefined")),
                    source="bounce",
                    bounce_type="hard",
                    event_id=None,
                    now=now,
                )
        return lost

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

    def set_state(
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
            "SELECT b.data, m.signed FROM bodies b JOIN messages m ON m.id = b.message_id WHERE b.message_id = ?",
            (message_id,),
        )
        if not rows:
            raise KeyError(message_id)
        return bytes(rows[0][0]), bool(rows[0][1])

    def next_due(self) -> float | None:
        rows = self._read(
            "SELECT MIN(next_attempt_at) FROM recipients WHERE state IN ('queued', 'deferred')"
        )
        active = self._read("SELECT MIN(lease_expires_at) FROM recipients WHERE state = 'active'")
        candidates = [v for v in (rows[0][0], active[0][0]) if v is not None]
        return min(candidates) if candidates else None

    # -- reading back -----------------------------------------------------------------------
    def message(self, message_id: str, *, account_id: int | None = None) -> dict[str, Any] | None:
        rows = self._read("SELECT * FROM messages WHERE id = ?", (message_id,))
        if not rows or (account_id is not None and rows[0]["account_id"] != account_id):
            return None
        m = rows[0]
        recipients = self._read(
            "SELECT * FROM recipients WHERE message_id = ? ORDER BY id", (message_id,)
        )
        events = [
            _row_event(r)
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

    def list_messages(
        self,
        account_id: int,
        *,
        tag: str | None = None,
        status: str | None = None,
        recipient: str | None = None,
        since: float | None = None,
        limit: int = 50,
        before: tuple[float, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first. ``before`` is the (created_at, id) of the last item of the previous page."""
        where: list[str] = ["m.account_id = ?"]
        params: list[Any] = [account_id]
        if tag:
            where.append(
                "EXISTS (SELECT 1 FROM message_tags t WHERE t.message_id = m.id AND t.tag = ?)"
            )
            params.append(tag)
        if status:
            wanted = ("queued", "active") if status == "queued" else (status,)
            marks = ",".join("?" * len(wanted))
            where.append(
                f"EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND r.state IN ({marks}))"
            )
            params.extend(wanted)
        if recipient:
            where.append(
                "EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND r.address = ? COLLATE NOCASE)"
            )
            params.append(recipient)
        if since is not None:
            where.append("m.created_at >= ?")
            params.append(since)
        if before is not None:
            where.append("(m.created_at < ? OR (m.created_at = ? AND m.id < ?))")
            params.extend([before[0], before[0], before[1]])
        rows = self._read(
            f"SELECT m.* FROM messages m WHERE {' AND '.join(where)} ORDER BY m.created_at DESC, m.id DESC LIMIT ?",
            (*params, limit),
        )
        out = []
        for m in rows:
            states = [
                r[0]
                for r in self._read(
                    "SELECT state FROM recipients WHERE message_id = ? ORDER BY id", (m["id"],)
                )
            ]
            out.append(
                {
                    "id": m["id"],
                    "from": m["from_addr"],
                    "subject": m["subject"],
                    "tags": json.loads(m["tags"]),
                    "created_at": m["created_at"],
                    "states": states,
                }
            )
        return out

    def recipients_of(self, message_id: str) -> list[sqlite3.Row]:
        return self._read(
            "SELECT * FROM recipients WHERE message_id = ? ORDER BY id", (message_id,)
        )

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
        return [_row_event(r) for r in rows]

    def oldest_pending(self) -> float | None:
        rows = self._read(
            "SELECT MIN(queued_at) FROM recipients WHERE state IN ('queued', 'deferred', 'active')"
        )
        return rows[0][0] if rows and rows[0][0] is not None else None

    # -- account templates ----------------------------------------------------------------
    def get_template(self, account_id: int, slug: str) -> Template | None:
        key = ("template", account_id, slug)
        found, token = self.policy.get(key)
        if found is not _MISS:
            return found  # type: ignore[no-any-return]
        rows = self._read(
            "SELECT * FROM templates WHERE account_id = ? AND slug = ?", (account_id, slug)
        )
        template = None
        if rows:
            r = rows[0]
            template = Template(
                slug=r["slug"], subject=r["subject"], html=r["html"], text=r["text"]
            )
        self.policy.put(key, template, token)
        return template

    def list_templates(self, account_id: int) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT slug, source, created_at, updated_at FROM templates WHERE account_id = ? ORDER BY slug",
            (account_id,),
        )
        return [dict(r) for r in rows]

    def save_template(
        self, account_id: int, template: Template, *, source: str = "created"
    ) -> None:
        now = self.clock.now()
        self._write(
            lambda c: c.execute(
                "INSERT INTO templates (account_id, slug, subject, html, text, source, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (account_id, slug) DO UPDATE SET subject = excluded.subject, html = excluded.html, text = excluded.text,"
                " source = excluded.source, updated_at = excluded.updated_at",
                (
                    account_id,
                    template.slug,
                    template.subject,
                    template.html,
                    template.text,
                    source,
                    now,
                    now,
                ),
            )
        )

    def delete_template(self, account_id: int, slug: str) -> bool:
        return bool(
            self._write(
                lambda c: (
                    c.execute(
                        "DELETE FROM templates WHERE account_id = ? AND slug = ?",
                        (account_id, slug),
                    ).rowcount
                )
            )
        )

    # -- suppression list ---------------------------------------------------------------------
    def suppressed(self, account_id: int, addresses: Sequence[str]) -> dict[str, str]:
        """The subset of ``addresses`` on the account's (unexpired) suppression list → reason."""
        if not addresses:
            return {}
        lowered = [a.lower() for a in addresses]
        rows = self._read(_suppressed_sql(len(lowered)), (account_id, *lowered, self.clock.now()))
        return {r[0]: r[1] for r in rows}

    def suppress(
        self,
        account_id: int,
        address: str,
        *,
        reason: str,
        source: str,
        bounce_type: str = "hard",
        event_id: int | None = None,
        expires_at: float | None = None,
    ) -> None:
        now = self.clock.now()
        self._write(
            lambda c: add_suppression(
                c,
                account_id=account_id,
                address=address,
                reason=reason,
                source=source,
                bounce_type=bounce_type,
                event_id=event_id,
                now=now,
                expires_at=expires_at,
            )
        )

    def unsuppress(self, account_id: int, address: str) -> bool:
        return bool(
            self._write(
                lambda c: (
                    c.execute(
                        "DELETE FROM suppressions WHERE account_id = ? AND address = ?",
                        (account_id, address.lower()),
                    ).rowcount
                )
            )
        )

    def list_suppressions(
        self, account_id: int | None = None, *, limit: int = 1000, after: str = ""
    ) -> list[dict[str, Any]]:
        if account_id is None:
            rows = self._read(
                "SELECT * FROM suppressions WHERE address > ? ORDER BY account_id, address LIMIT ?",
                (after, limit),
            )
        else:
            rows = self._read(
                "SELECT * FROM suppressions WHERE account_id = ? AND address > ? ORDER BY address LIMIT ?",
                (account_id, after, limit),
            )
        return [dict(r) for r in rows]

    # -- queue operations (operator) -------------------------------------------------------
    def queue_list(
        self, *, state: str | None = None, domain: str | None = None, limit: int = 100
    ) -> list[sqlite3.Row]:
        where, params = ["1 = 1"], []
        if state:
            where.append("r.state = ?")
            params.append(state)
        else:
            where.append("r.state IN ('queued', 'active', 'deferred', 'held')")
        if domain:
            where.append("r.domain = ?")
            params.append(domain.lower().rstrip("."))
        return self._read(
            "SELECT r.id, r.message_id, r.address, r.domain, r.state, r.attempts, r.queued_at, r.next_attempt_at,"
            " r.last_response, m.from_addr FROM recipients r JOIN messages m ON m.id = r.message_id"
            f" WHERE {' AND '.join(where)} ORDER BY r.next_attempt_at, r.id LIMIT ?",
            (*params, limit),
        )

    def select_recipients(
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
    ) -> int:
        """retry (due now) | hold | release | delete (bounce as deleted by the operator), in chunks."""
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


def _rate_refusal(rate_limit: int) -> RequestError:
    return RequestError(
        429,
        f"rate limit exceeded: {rate_limit} requests per second",
        headers=_limit_headers(rate_limit, 0, 1, retry_after=1),
    )


def _quota_refusal(
    rate_limit: int, quota: int, requests: int, used: int, count: int, now: float
) -> RequestError:
    retry = max(1, int(86400 - (now % 86400)) + 1)
    return RequestError(
        429,
        f"daily quota exceeded: {used - count} of {quota} recipients used today, this request has {count}",
        headers=_limit_headers(rate_limit, rate_limit - requests + 1, 1, retry_after=retry),
    )


def _suppressed_event_data(reason: str) -> dict[str, Any]:
    return {
        "reason": "suppressed",
        "bounce_type": "hard",
        "diagnostic": f"recipient is suppressed: {reason}",
        "status": "5.7.1",
        "smtp_response": "",
    }


#: Rows per multi-row INSERT: SQLite before 3.32 allows 999 parameters per statement.
_MAX_PARAMS = 999


def _insert_rows(conn: sqlite3.Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """``sql`` (with ``{}`` where the VALUES tuples go) for all ``rows``, in as few statements as
    the parameter limit allows."""
    if not rows:
        return
    width = len(rows[0])
    per = max(1, _MAX_PARAMS // width)
    one = "(" + ",".join("?" * width) + ")"
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        conn.execute(sql.format(",".join([one] * len(chunk))), [v for row in chunk for v in row])


def _in_force(entry: tuple[str, float | None] | None, now: float) -> str | None:
    """The reason of a suppression list entry still in force at ``now``."""
    if entry is None or (entry[1] is not None and entry[1] <= now):
        return None
    return entry[0]


def _suppressed_sql(count: int) -> str:
    """Which of ``count`` lowercased addresses are on an account's (unexpired) suppression list."""
    marks = ",".join("?" * count)
    return (
        f"SELECT address, reason, expires_at FROM suppressions WHERE account_id = ? AND address IN ({marks})"
        " AND (expires_at IS NULL OR expires_at > ?)"
    )


def _limit_headers(
    limit: int, remaining: int, reset: int, *, retry_after: int | None = None
) -> dict[str, str]:
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, remaining)),
        "X-RateLimit-Reset": str(reset),
    }
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return headers


def limit_headers(limits: Limits) -> dict[str, str]:
    return _limit_headers(limits.rate_limit, limits.rate_remaining, limits.rate_reset)


def _no_limits(account: sqlite3.Row) -> Limits:
    return _limits(account["rate_limit"], account["daily_quota"], 0, 0)


def _limits(rate_limit: int, quota: int, requests: int, used: int) -> Limits:
    """The limits an answer reports after ``requests`` this second and ``used`` recipients today."""
    return Limits(
        rate_limit=rate_limit,
        rate_remaining=max(0, rate_limit - requests),
        rate_reset=1,
        quota=quota,
        quota_remaining=max(0, quota - used),
    )
