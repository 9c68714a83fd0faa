"""The SQL of sending domains: DKIM key rows, domain identity check state, and their events.

Functions over a ``Store`` (its ``_read``/``_write`` helpers), so ``spool.py`` stays the lead's.
A DKIM key row holds the key's public half and the *path* of its private key file, never the
private key itself. Every state change of a domain identity or a key is a guarded update
(``WHERE state = ?``) that writes its event row in the same transaction.

Key states: ``pending`` (made, not yet seen in DNS) → ``active`` (signing) → ``retiring`` (replaced;
still published for a grace period) → ``retired`` (its record may be removed from DNS).
``published`` is what the last DNS check saw: NULL never checked, 1 found, 0 missing or different.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from relaygate.dkim.keys import Algorithm, DkimKey
from relaygate.store.models import Identity
from relaygate.store.spool import Store, insert_event

DEFAULT_GRACE = 7 * 86400.0
"""How long a replaced DKIM key stays published (signatures made with it still verify)."""


class KeyState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    RETIRING = "retiring"
    RETIRED = "retired"


class DomainStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    FAILING = "failing"


EVENT_FOR_STATUS = {
    DomainStatus.VERIFIED: "domain_verified",
    DomainStatus.FAILING: "domain_failing",
    DomainStatus.PENDING: "domain_pending",
}


@dataclass(frozen=True, kw_only=True)
class StoredKey:
    """A DKIM key row: public material, where the private key file is, and its lifecycle."""

    id: int
    domain: str
    selector: str
    algorithm: Algorithm
    private_path: Path
    public_key: str
    state: KeyState
    created_at: float
    activated_at: float | None = None
    retire_after: float | None = None
    grace: float = DEFAULT_GRACE
    published: bool | None = None
    checked_at: float | None = None

    def dkim_key(self) -> DkimKey:
        return DkimKey(
            domain=self.domain,
            selector=self.selector,
            algorithm=self.algorithm,
            private_path=self.private_path,
            public_key_b64=self.public_key,
        )


@dataclass(frozen=True, kw_only=True)
class DomainIdentity:
    """An identity row with the check state this module adds to it."""

    identity: Identity
    status_reason: str = ""
    failing_since: float | None = None
    last_checked_at: float | None = None
    last_check: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> DomainStatus:
        return DomainStatus(self.identity.status)


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """What one DNS check decided, applied atomically by ``apply_check``.

    ``published``: key id → whether its record was found (keys absent were not looked at).
    ``activate``: pending key ids to make active; any active key of the same algorithm becomes
    ``retiring`` with ``retire_after = now + the new key's grace``. ``retire``: retiring key ids
    whose grace has passed. ``statuses``: identity id → (new status, reason).
    """

    domain: str
    now: float
    published: dict[int, bool] = field(default_factory=dict)
    activate: tuple[int, ...] = ()
    retire: tuple[int, ...] = ()
    statuses: dict[int, tuple[DomainStatus, str]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Applied:
    """What ``apply_check`` changed: status moves (identity id → (from, to)) and key moves."""

    moved: dict[int, tuple[str, str]] = field(default_factory=dict)
    activated: tuple[StoredKey, ...] = ()
    retiring: tuple[StoredKey, ...] = ()
    retired: tuple[StoredKey, ...] = ()


_IDENTITY_COLUMNS = (
    "id, account_id, kind, value, status, token, created_at, verified_at,"
    " status_reason, failing_since, last_checked_at, last_check"
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


def _row_identity(row: sqlite3.Row) -> DomainIdentity:
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


# -- identities -------------------------------------------------------------------------------------
def domain_identities(store: Store, domain: str | None = None) -> list[DomainIdentity]:
    """Domain identities (of ``domain``, or all), oldest first."""
    if domain is None:
        rows = store._read(
            f"SELECT {_IDENTITY_COLUMNS} FROM identities WHERE kind = 'domain' ORDER BY id"
        )
    else:
        rows = store._read(
            f"SELECT {_IDENTITY_COLUMNS} FROM identities WHERE kind = 'domain' AND value = ? ORDER BY id",
            (domain,),
        )
    return [_row_identity(r) for r in rows]


def account_identities(store: Store, account_id: int) -> list[DomainIdentity]:
    return identities(store, account_id)


def identities(store: Store, account_id: int | None = None) -> list[DomainIdentity]:
    """Every identity (domains and addresses) of the account, or of all accounts, by id."""
    if account_id is None:
        rows = store._read(f"SELECT {_IDENTITY_COLUMNS} FROM identities ORDER BY id")
    else:
        rows = store._read(
            f"SELECT {_IDENTITY_COLUMNS} FROM identities WHERE account_id = ? ORDER BY id",
            (account_id,),
        )
    return [_row_identity(r) for r in rows]


def set_status(
    store: Store,
    identity_id: int,
    *,
    src: DomainStatus,
    dst: DomainStatus,
    reason: str,
    now: float,
) -> bool:
    """Guarded move of one identity ``src → dst`` with its event. False if it was not in ``src``."""
    return bool(store._write(lambda c: _move(c, identity_id, src, dst, reason, now)))


def _move(
    conn: sqlite3.Connection,
    identity_id: int,
    src: DomainStatus,
    dst: DomainStatus,
    reason: str,
    now: float,
) -> bool:
    row = conn.execute(
        "UPDATE identities SET status = ?, status_reason = ?,"
        " verified_at = CASE WHEN ? = 'verified' AND status != 'verified' THEN ? ELSE verified_at END,"
        " failing_since = CASE WHEN ? = 'failing' THEN COALESCE(failing_since, ?) ELSE NULL END"
        " WHERE id = ? AND status = ? RETURNING account_id, value",
        (dst.value, reason, dst.value, now, dst.value, now, identity_id, src.value),
    ).fetchone()
    if row is None:
        return False
    if src != dst:
        insert_event(
            conn,
            account_id=row["account_id"],
            message_id=None,
            recipient_id=None,
            type_=EVENT_FOR_STATUS[dst],
            now=now,
            state_from=src.value,
            state_to=dst.value,
            data={"domain": row["value"], "reason": reason},
        )
    return True


# -- keys ---------------------------------------------------------------------------------------------
def insert_key(
    store: Store, key: DkimKey, *, state: KeyState, now: float, grace: float = DEFAULT_GRACE
) -> StoredKey:
    """Record a key generated on disk (its private half stays in ``key.private_path``)."""
    activated = now if state is KeyState.ACTIVE else None
    new_id = store._write(
        lambda c: (
            c.execute(
                "INSERT INTO dkim_keys (domain, selector, algorithm, private_path, public_key, state,"
                " created_at, activated_at, grace) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key.domain,
                    key.selector,
                    key.algorithm,
                    str(key.private_path),
                    key.public_key_b64,
                    state.value,
                    now,
                    activated,
                    grace,
                ),
            ).lastrowid
        )
    )
    found = get_key(store, int(new_id or 0))
    assert found is not None
    return found


def get_key(store: Store, key_id: int) -> StoredKey | None:
    rows = store._read("SELECT * FROM dkim_keys WHERE id = ?", (key_id,))
    return _row_key(rows[0]) if rows else None


def keys_of(store: Store, domain: str, *, states: tuple[KeyState, ...] = ()) -> list[StoredKey]:
    """The keys of ``domain`` (in ``states``, or all), RSA first, oldest first."""
    sql = "SELECT * FROM dkim_keys WHERE domain = ?"
    params: list[Any] = [domain]
    if states:
        sql += f" AND state IN ({','.join('?' * len(states))})"
        params.extend(s.value for s in states)
    sql += " ORDER BY algorithm = 'ed25519', id"
    return [_row_key(r) for r in store._read(sql, params)]


def all_keys(store: Store) -> list[StoredKey]:
    return [
        _row_key(r)
        for r in store._read("SELECT * FROM dkim_keys ORDER BY domain, algorithm = 'ed25519', id")
    ]


def selector_taken(store: Store, domain: str, selector: str) -> bool:
    rows = store._read(
        "SELECT 1 FROM dkim_keys WHERE domain = ? AND selector = ? LIMIT 1", (domain, selector)
    )
    return bool(rows)


def active_keys(store: Store, domain: str) -> list[DkimKey]:
    """The keys to sign mail from ``domain`` with right now: the active RSA key, then the active
    Ed25519 key if there is one.

    A key the last DNS check found unpublished (missing or different) is left out, so relaygate
    never signs with a key receivers cannot find. The result is ``[]`` (send unsigned) unless a
    usable RSA key is in it: an Ed25519 signature alone is not verifiable by most receivers.
    """
    rows = store._read(
        "SELECT * FROM dkim_keys WHERE domain = ? AND state = 'active' AND published IS NOT 0"
        " ORDER BY algorithm = 'ed25519', activated_at DESC, id DESC",
        (domain.lower().rstrip("."),),
    )
    chosen: dict[str, DkimKey] = {}
    for row in rows:
        key = _row_key(row)
        chosen.setdefault(key.algorithm, key.dkim_key())
    if "rsa" not in chosen:
        return []
    return list(chosen.values())


def activate_now(store: Store, key_ids: list[int], *, now: float) -> None:
    """Make pending keys active at once (the operator asserted the domain), retiring none."""
    store._write(
        lambda c: c.executemany(
            "UPDATE dkim_keys SET state = 'active', activated_at = ? WHERE id = ? AND state = 'pending'",
            [(now, key_id) for key_id in key_ids],
        )
    )


def apply_check(store: Store, result: CheckResult) -> Applied:
    """Apply one check's decisions in one transaction (key moves, statuses, events)."""
    return store._write(lambda c: _apply(c, result))


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
        if _move(conn, identity_id, src, status, reason, now) and src != status:
            moved[identity_id] = (src.value, status.value)
        conn.execute(
            "UPDATE identities SET last_checked_at = ?, last_check = ? WHERE id = ?",
            (now, summary, identity_id),
        )
    return Applied(
        moved=moved, activated=tuple(activated), retiring=tuple(retiring), retired=tuple(retired)
    )


def record_check_time(
    store: Store, identity_ids: list[int], *, now: float, summary: dict[str, Any]
) -> None:
    """Note a check that changed nothing (a temporary DNS failure)."""
    text = json.dumps(summary, separators=(",", ":"))
    store._write(
        lambda c: c.executemany(
            "UPDATE identities SET last_checked_at = ?, last_check = ? WHERE id = ?",
            [(now, text, i) for i in identity_ids],
        )
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
