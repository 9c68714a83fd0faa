"""Accounts and API keys (SQLite).

Trust: API key secrets arrive here only to be hashed (``ids.hash_secret``) and compared with
``hmac.compare_digest``; the secret of a new key leaves once, to the caller of ``Keys.create``.
"""

from __future__ import annotations

import hmac
import sqlite3
from collections.abc import Iterable
from typing import Any

from relaygate.errors import RequestError
from relaygate.policy import check_account_fields, check_plan, check_scopes
from relaygate.store.ids import hash_secret, new_key_id, new_key_secret
from relaygate.store.models import Account, ApiKey
from relaygate.store.sqlite.core import Concern, Core
from relaygate.store.sqlite.policycache import MISS
from relaygate.store.sqlite.rows import row_account, row_key


def _name_free(c: sqlite3.Connection, name: str, *, but: int | None = None) -> None:
    """409 when another account has ``name`` (checked in the write transaction; the unique index
    of schema 12 stands behind it)."""
    taken = c.execute(
        "SELECT id FROM accounts WHERE name = ? AND id IS NOT ?", (name, but)
    ).fetchone()
    if taken is not None:
        raise RequestError(409, f"an account named {name!r} exists already (id {taken[0]})")


class SqliteAccounts(Concern):
    def create(
        self, name: str, *, plan: str = "trial", daily_quota: int = 10_000, rate_limit: int = 100
    ) -> Account:
        check_plan(plan)
        check_account_fields(name=name, daily_quota=daily_quota, rate_limit=rate_limit)
        now = self.clock.now()

        def insert(c: sqlite3.Connection) -> int | None:
            _name_free(c, name)
            return c.execute(
                "INSERT INTO accounts (name, plan, daily_quota, rate_limit, created_at) VALUES (?, ?, ?, ?, ?)",
                (name, plan, daily_quota, rate_limit, now),
            ).lastrowid

        new_id = self._write(insert)
        account = self.get(int(new_id or 0))
        assert account is not None
        return account

    def get(self, account_id: int) -> Account | None:
        key = ("account", account_id)
        found, token = self.policy.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        rows = self._read("SELECT * FROM accounts WHERE id = ?", (account_id,))
        account = row_account(rows[0]) if rows else None
        self.policy.put(key, account, token)
        return account

    def all(self) -> list[Account]:
        return [row_account(r) for r in self._read("SELECT * FROM accounts ORDER BY id")]

    def update(self, account_id: int, **fields: Any) -> Account:
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
        if "plan" in fields:
            check_plan(fields["plan"])
        check_account_fields(
            name=fields.get("name"),
            daily_quota=fields.get("daily_quota"),
            rate_limit=fields.get("rate_limit"),
        )
        if fields:
            assignments = ", ".join(f"{k} = ?" for k in fields)

            def change(c: sqlite3.Connection) -> None:
                if "name" in fields:
                    _name_free(c, fields["name"], but=account_id)
                c.execute(
                    f"UPDATE accounts SET {assignments} WHERE id = ?",
                    (*fields.values(), account_id),
                )

            self._write(change)
        account = self.get(account_id)
        if account is None:
            raise RequestError(404, f"no account {account_id}")
        return account


class SqliteKeys(Concern):
    def __init__(self, core: Core, accounts: SqliteAccounts) -> None:
        super().__init__(core)
        self._accounts = accounts

    def create(
        self, account_id: int, *, scopes: Iterable[str] = ("email:send",), name: str = ""
    ) -> tuple[ApiKey, str]:
        scope_list = check_scopes(scopes)
        if self._accounts.get(account_id) is None:
            raise RequestError(404, f"no account {account_id}")
        secret = new_key_secret()
        key_id = new_key_id()
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
        key = self.get(key_id)
        assert key is not None
        return key, secret

    def get(self, key_id: str) -> ApiKey | None:
        rows = self._read("SELECT * FROM api_keys WHERE id = ?", (key_id,))
        return row_key(rows[0]) if rows else None

    def all(self, account_id: int | None = None) -> list[ApiKey]:
        if account_id is None:
            rows = self._read("SELECT * FROM api_keys ORDER BY created_at, id")
        else:
            rows = self._read(
                "SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at, id", (account_id,)
            )
        return [row_key(r) for r in rows]

    def revoke(self, key_id: str) -> bool:
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
        if cached is not MISS:
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
        found = (row_key(r), account)
        self.policy.put(
            ("key", digest), found, token
        )  # only live keys: failures are not remembered
        return found
