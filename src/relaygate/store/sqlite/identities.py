"""Sender identities, the domains' DNS check state, and DKIM key rows (SQLite).

A DKIM key row holds the key's public half and the *path* of its private key file, never the
private key itself. Every state change of a domain identity or a key is a guarded update
(``WHERE state = ?``) that writes its event row in the same transaction. The states are in
``relaygate.store.states`` (``DomainStatus``, ``KeyState``).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from pathlib import Path
from typing import Any

from relaygate.errors import RequestError
from relaygate.store.models import (
    DEFAULT_GRACE,
    Algorithm,
    Applied,
    CheckResult,
    DomainIdentity,
    Identity,
    StoredKey,
)
from relaygate.store.sqlite.accounts import SqliteAccounts
from relaygate.store.sqlite.core import Concern, Core
from relaygate.store.sqlite.policycache import MISS
from relaygate.store.sqlite.rows import insert_event, row_identity
from relaygate.store.states import DOMAIN_HELD, EVENT_FOR_DOMAIN_STATUS, DomainStatus, KeyState

_IDENTITY_COLUMNS = (
    "id, account_id, kind, value, status, token, created_at, verified_at,"
    " status_reason, failing_since, last_checked_at, last_check"
)


class SqliteIdentities(Concern):
    def __init__(self, core: Core, accounts: SqliteAccounts) -> None:
        super().__init__(core)
        self._accounts = accounts

    def add(self, account_id: int, value: str, *, verified: bool = False) -> Identity:
        value = value.strip().lower().rstrip(".")
        kind = "address" if "@" in value else "domain"
        if self._accounts.get(account_id) is None:
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
        return row_identity(rows[0])

    def all(self, account_id: int | None = None) -> list[Identity]:
        if account_id is None:
            rows = self._read("SELECT * FROM identities ORDER BY id")
        else:
            rows = self._read(
                "SELECT * FROM identities WHERE account_id = ? ORDER BY id", (account_id,)
            )
        return [row_identity(r) for r in rows]

    def remove(self, identity_id: int) -> bool:
        """Delete an identity (its account no longer sends from it); False if it was gone."""
        return bool(
            self._write(
                lambda c: c.execute("DELETE FROM identities WHERE id = ?", (identity_id,)).rowcount
            )
        )

    def set_status(self, identity_id: int, status: str) -> None:
        now = self.clock.now()
        self._write(
            lambda c: c.execute(
                "UPDATE identities SET status = ?, verified_at = CASE WHEN ? = 'verified' THEN ? ELSE verified_at END WHERE id = ?",
                (status, status, now, identity_id),
            )
        )

    def sender_allowed(self, account_id: int, address: str) -> bool:
        """True when ``address`` is an identity of the account that may send (exact, or at a
        domain that is verified, at_risk or asserted)."""
        addr = address.lower()
        key = ("sender", account_id, addr)
        found, token = self.policy.get(key)
        if found is not MISS:
            return bool(found)
        domain = addr.rpartition("@")[2]
        rows = self._read(
            "SELECT 1 FROM identities WHERE account_id = ?"
            " AND status IN ('verified', 'at_risk', 'asserted') AND"
            " ((kind = 'address' AND value = ?) OR (kind = 'domain' AND value = ?)) LIMIT 1",
            (account_id, addr, domain),
        )
        self.policy.put(key, bool(rows), token)
        return bool(rows)

    def domains(self, domain: str | None = None) -> list[DomainIdentity]:
        """Domain identities (of ``domain``, or all), oldest first."""
        if domain is None:
            rows = self._read(
                f"SELECT {_IDENTITY_COLUMNS} FROM identities WHERE kind = 'domain' ORDER BY id"
            )
        else:
            rows = self._read(
                f"SELECT {_IDENTITY_COLUMNS} FROM identities WHERE kind = 'domain' AND value = ? ORDER BY id",
                (domain,),
            )
        return [_row_domain_identity(r) for r in rows]

    def details(self, account_id: int | None = None) -> list[DomainIdentity]:
        """Every identity (domains and addresses) of the account, or of all accounts, by id."""
        if account_id is None:
            rows = self._read(f"SELECT {_IDENTITY_COLUMNS} FROM identities ORDER BY id")
        else:
            rows = self._read(
                f"SELECT {_IDENTITY_COLUMNS} FROM identities WHERE account_id = ? ORDER BY id",
                (account_id,),
            )
        return [_row_domain_identity(r) for r in rows]

    def move(
        self,
        identity_id: int,
        *,
        src: DomainStatus,
        dst: DomainStatus,
        reason: str,
        now: float,
    ) -> bool:
        """Guarded move of one identity ``src → dst`` with its event. False if it was not in ``src``."""
        return bool(self._write(lambda c: _move(c, identity_id, src, dst, reason, now)))

    def apply_check(self, result: CheckResult) -> Applied:
        """Apply one check's decisions in one transaction (key moves, statuses, events)."""
        return self._write(lambda c: _apply(c, result))

    def record_check_time(
        self, identity_ids: list[int], *, now: float, summary: dict[str, Any]
    ) -> None:
        """Note a check that changed nothing (a temporary DNS failure)."""
        text = json.dumps(summary, separators=(",", ":"))
        self._write(
            lambda c: c.executemany(
                "UPDATE identities SET last_checked_at = ?, last_check = ? WHERE id = ?",
                [(now, text, i) for i in identity_ids],
            )
        )


class SqliteDkimKeys(Concern):
    def insert(
        self,
        *,
        domain: str,
        selector: str,
        algorithm: Algorithm,
        private_path: Path,
        public_key: str,
        state: KeyState,
        now: float,
        grace: float = DEFAULT_GRACE,
    ) -> StoredKey:
        """Record a key generated on disk (its private half stays in ``private_path``)."""
        activated = now if state is KeyState.ACTIVE else None
        new_id = self._write(
            lambda c: (
                c.execute(
                    "INSERT INTO dkim_keys (domain, selector, algorithm, private_path, public_key, state,"
                    " created_at, activated_at, grace) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        domain,
                        selector,
                        algorithm,
                        str(private_path),
                        public_key,
                        state.value,
                        now,
                        activated,
                        grace,
                    ),
                ).lastrowid
            )
        )
        found = self.get(int(new_id or 0))
        assert found is not None
        return found

    def get(self, key_id: int) -> StoredKey | None:
        rows = self._read("SELECT * FROM dkim_keys WHERE id = ?", (key_id,))
        return _row_key(rows[0]) if rows else None

    def of_domain(self, domain: str, *, states: tuple[KeyState, ...] = ()) -> list[StoredKey]:
        """The keys of ``domain`` (in ``states``, or all), RSA first, oldest first."""
        sql = "SELECT * FROM dkim_keys WHERE domain = ?"
        params: list[Any] = [domain]
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            params.extend(s.value for s in states)
        sql += " ORDER BY algorithm = 'ed25519', id"
        return [_row_key(r) for r in self._read(sql, params)]

    def all(self) -> list[StoredKey]:
        return [
            _row_key(r)
            for r in self._read(
                "SELECT * FROM dkim_keys ORDER BY domain, algorithm = 'ed25519', id"
            )
        ]

    def selector_taken(self, domain: str, selector: str) -> bool:
        rows = self._read(
            "SELECT 1 FROM dkim_keys WHERE domain = ? AND selector = ? LIMIT 1", (domain, selector)
        )
        return bool(rows)

    def signing(self, domain: str) -> list[StoredKey]:
        """The keys to sign mail from ``domain`` with right now: the active RSA key, then the
        active Ed25519 key if there is one.

        A key the last DNS check found unpublished (missing or different) is left out, so
        relaygate never signs with a key receivers cannot find. The result is ``[]`` (send
        unsigned) unless a usable RSA key is in it: an Ed25519 signature alone is not verifiable
        by most receivers.
        """
        rows = self._read(
            "SELECT * FROM dkim_keys WHERE domain = ? AND state = 'active' AND published IS NOT 0"
            " ORDER BY algorithm = 'ed25519', activated_at DESC, id DESC",
            (domain.lower().rstrip("."),),
        )
        chosen: dict[str, StoredKey] = {}
        for row in rows:
            key = _row_key(row)
            chosen.setdefault(key.algorithm, key)
        if "rsa" not in chosen:
            return []
        return list(chosen.values())

    def activate_now(self, key_ids: list[int], *, now: float) -> None:
        """Make pending keys active at once (the operator asserted the domain), retiring none."""
        self._write(
            lambda c: c.executemany(
                "UPDATE dkim_keys SET state = 'active', activated_at = ? WHERE id = ? AND state = 'pending'",
                [(now, key_id) for key_id in key_ids],
            )
        )


def _row_key(row: sqlite3.Row) -> StoredKey:
    return StoredKey(
        id=row["id"],
        domain=row["domain"],
        selector=row["selector"],
        algorithm="rsa" if row["algorithm"] == "rsa" else "ed25519",
        private_path=Path(row["private_path"]),
        public_key=row["public_key"],
        state=KeyState(row["state"]),
        created_at=row["created_at"],
        activated_at=row["activated_at"],
        retire_after=row["retire_after"],
        grace=row["grace"],
        published=None if row["published"] is None else bool(row["published"]),
        checked_at=row["checked_at"],
    )


def _row_domain_identity(row: sqlite3.Row) -> DomainIdentity:
    return DomainIdentity(
        identity=Identity(
            id=row["id"],
            account_id=row["account_id"],
            kind=row["kind"],
            value=row["value"],
            status=row["status"],
            token=row["token"],
            created_at=row["created_at"],
            verified_at=row["verified_at"],
        ),
        status_reason=row["status_reason"],
        failing_since=row["failing_since"],
        last_checked_at=row["last_checked_at"],
        last_check=json.loads(row["last_check"] or "{}"),
    )


def _move(
    conn: sqlite3.Connection,
    identity_id: int,
    src: DomainStatus,
    dst: DomainStatus,
    reason: str,
    now: float,
    missing: bool | None = None,
) -> bool:
    """``missing``: the required records were (True) or were not (False) found; None (an
    operator's move) keeps ``failing_since`` as it is, except that verified clears it."""
    mode = -1 if missing is None else int(missing)
    row = conn.execute(
        "UPDATE identities SET status = ?, status_reason = ?,"
        " verified_at = CASE WHEN ? = 'verified' AND status != 'verified' THEN ? ELSE verified_at END,"
        " failing_since = CASE WHEN ? = 1 THEN COALESCE(failing_since, ?) WHEN ? = 0 THEN NULL"
        " WHEN ? = 'verified' THEN NULL ELSE failing_since END"
        " WHERE id = ? AND status = ? RETURNING account_id, value, failing_since",
        (dst.value, reason, dst.value, now, mode, now, mode, dst.value, identity_id, src.value),
    ).fetchone()
    if row is None:
        return False
    if src != dst:
        insert_event(
            conn,
            account_id=row["account_id"],
            message_id=None,
            recipient_id=None,
            type_=EVENT_FOR_DOMAIN_STATUS[dst],
            now=now,
            state_from=src.value,
            state_to=dst.value,
            data={
                "domain": row["value"],
                "status": dst.value,
                "previous_status": src.value,
                "reason": reason,
                "missing_since": row["failing_since"],
            },
        )
    return True


def _apply(conn: sqlite3.Connection, result: CheckResult) -> Applied:
    now = result.now
    for key_id, published in result.published.items():
        conn.execute(
            "UPDATE dkim_keys SET published = ?, checked_at = ? WHERE id = ?",
            (int(published), now, key_id),
        )
    owners = conn.execute(
        "SELECT id, account_id FROM identities WHERE kind = 'domain' AND value = ? ORDER BY id",
        (result.domain,),
    ).fetchall()
    account_id = owners[0]["account_id"] if owners else 0
    activated: list[StoredKey] = []
    retiring: list[StoredKey] = []
    retired: list[StoredKey] = []
    for key_id in result.activate:
        row = conn.execute(
            "UPDATE dkim_keys SET state = 'active', activated_at = ? WHERE id = ? AND state = 'pending'"
            " RETURNING *",
            (now, key_id),
        ).fetchone()
        if row is None:
            continue
        new = _row_key(row)
        activated.append(new)
        for old in conn.execute(
            "UPDATE dkim_keys SET state = 'retiring', retire_after = ?"
            " WHERE domain = ? AND algorithm = ? AND state = 'active' AND id != ? RETURNING *",
            (now + new.grace, new.domain, new.algorithm, new.id),
        ).fetchall():
            retiring.append(_row_key(old))
        _key_event(conn, account_id, "dkim_key_activated", new, now, retiring)
    for key_id in result.retire:
        row = conn.execute(
            "UPDATE dkim_keys SET state = 'retired' WHERE id = ? AND state = 'retiring' RETURNING *",
            (key_id,),
        ).fetchone()
        if row is not None:
            old = _row_key(row)
            retired.append(old)
            _key_event(conn, account_id, "dkim_key_retired", old, now, [])
    moved: dict[int, tuple[str, str]] = {}
    summary = json.dumps(result.summary, separators=(",", ":"))
    for identity_id, (status, reason) in result.statuses.items():
        current = conn.execute(
            "SELECT status FROM identities WHERE id = ?", (identity_id,)
        ).fetchone()
        if current is None:
            continue
        src = DomainStatus(current["status"])
        missing = identity_id in result.missing
        if status.value in DOMAIN_HELD and _held_by_another(conn, result.domain, identity_id):
            status, reason = src, f"domain {result.domain} is verified by another account"
        if _move(conn, identity_id, src, status, reason, now, missing) and src != status:
            moved[identity_id] = (src.value, status.value)
        conn.execute(
            "UPDATE identities SET last_checked_at = ?, last_check = ? WHERE id = ?",
            (now, summary, identity_id),
        )
    return Applied(
        moved=moved, activated=tuple(activated), retiring=tuple(retiring), retired=tuple(retired)
    )


def _held_by_another(conn: sqlite3.Connection, domain: str, identity_id: int) -> bool:
    """Whether another claim of ``domain`` holds it (one holder at most, API.md §11)."""
    marks = ", ".join("?" * len(DOMAIN_HELD))
    return (
        conn.execute(
            f"SELECT 1 FROM identities WHERE kind = 'domain' AND value = ? AND id != ?"
            f" AND status IN ({marks}) LIMIT 1",
            (domain, identity_id, *DOMAIN_HELD),
        ).fetchone()
        is not None
    )


def _key_event(
    conn: sqlite3.Connection,
    account_id: int,
    type_: str,
    key: StoredKey,
    now: float,
    replaced: list[StoredKey],
) -> None:
    if not account_id:
        return
    data: dict[str, Any] = {
        "domain": key.domain,
        "selector": key.selector,
        "algorithm": key.algorithm,
    }
    if replaced:
        data["replaced"] = [
            {"selector": k.selector, "retire_after": k.retire_after} for k in replaced
        ]
    if type_ == "dkim_key_retired":
        data["reason"] = (
            f"grace period over: the TXT record {key.selector}._domainkey.{key.domain}"
            " can be removed from DNS"
        )
    insert_event(
        conn,
        account_id=account_id,
        message_id=None,
        recipient_id=None,
        type_=type_,
        now=now,
        state_from=KeyState.PENDING.value if type_ == "dkim_key_activated" else "retiring",
        state_to=KeyState.ACTIVE.value if type_ == "dkim_key_activated" else "retired",
        data=data,
    )
