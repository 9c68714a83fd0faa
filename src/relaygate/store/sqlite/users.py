"""Dashboard users and their server-side sessions (SQLite).

Trust: the store keeps what it is handed: an argon2id hash (never a password), a TOTP secret,
and a session's id, which is the SHA-256 of the cookie's token (the token itself never reaches
the store). Nothing here decides whether a password is right or a session too old.
"""

from __future__ import annotations

import sqlite3

from relaygate.errors import RequestError
from relaygate.store.models import User, UserSession
from relaygate.store.sqlite.core import Concern

SESSION_STAGES = ("signed_in", "second_factor")


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        account_id=row["account_id"],
        operator=bool(row["operator"]),
        created_at=row["created_at"],
        password_hash=row["password_hash"],
        totp_secret=row["totp_secret"],
        disabled_at=row["disabled_at"],
        last_sign_in_at=row["last_sign_in_at"],
        password_changed_at=row["password_changed_at"],
    )


def _session(row: sqlite3.Row) -> UserSession:
    return UserSession(
        id=row["id"],
        user_id=row["user_id"],
        created_at=row["created_at"],
        seen_at=row["seen_at"],
        csrf=row["csrf"],
        stage=row["stage"],
        account_id=row["account_id"],
    )


class SqliteUsers(Concern):
    def create(
        self, email: str, *, account_id: int | None, operator: bool, password_hash: str
    ) -> User:
        address = email.strip().lower()
        if not address or "@" not in address or len(address) > 254:
            raise RequestError(400, f"{email!r} is not an e-mail address")
        if operator == (account_id is not None):
            raise RequestError(400, "a user is either an operator or one account's user")
        if not password_hash:
            raise RequestError(400, "a user needs a password")
        now = self.clock.now()

        def insert(c: sqlite3.Connection) -> int:
            taken = c.execute("SELECT id FROM users WHERE email = ?", (address,)).fetchone()
            if taken is not None:
                raise RequestError(409, f"a user {address} exists already (id {taken[0]})")
            if (
                account_id is not None
                and c.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone()
                is None
            ):
                raise RequestError(404, f"no account {account_id}")
            cur = c.execute(
                "INSERT INTO users (email, account_id, operator, password_hash, created_at,"
                " password_changed_at) VALUES (?, ?, ?, ?, ?, ?)",
                (address, account_id, int(operator), password_hash, now, now),
            )
            return int(cur.lastrowid or 0)

        user = self.get(self._write(insert))
        assert user is not None
        return user

    def get(self, user_id: int) -> User | None:
        rows = self._read("SELECT * FROM users WHERE id = ?", (user_id,))
        return _user(rows[0]) if rows else None

    def by_email(self, email: str) -> User | None:
        rows = self._read("SELECT * FROM users WHERE email = ?", (email.strip().lower(),))
        return _user(rows[0]) if rows else None

    def all(self, account_id: int | None = None) -> list[User]:
        if account_id is None:
            rows = self._read("SELECT * FROM users ORDER BY id")
        else:
            rows = self._read("SELECT * FROM users WHERE account_id = ? ORDER BY id", (account_id,))
        return [_user(r) for r in rows]

    def set_password(self, user_id: int, password_hash: str) -> bool:
        if not password_hash:
            raise RequestError(400, "a user needs a password")
        now = self.clock.now()
        return bool(
            self._write(
                lambda c: (
                    c.execute(
                        "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?",
                        (password_hash, now, user_id),
                    ).rowcount
                )
            )
        )

    def set_totp(self, user_id: int, secret: str) -> bool:
        return bool(
            self._write(
                lambda c: (
                    c.execute(
                        "UPDATE users SET totp_secret = ? WHERE id = ?", (secret, user_id)
                    ).rowcount
                )
            )
        )

    def signed_in(self, user_id: int) -> None:
        now = self.clock.now()
        self._write(
            lambda c: c.execute("UPDATE users SET last_sign_in_at = ? WHERE id = ?", (now, user_id))
        )

    def disable(self, user_id: int) -> bool:
        now = self.clock.now()

        def change(c: sqlite3.Connection) -> bool:
            moved = c.execute(
                "UPDATE users SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL",
                (now, user_id),
            ).rowcount
            c.execute("DELETE FROM dashboard_sessions WHERE user_id = ?", (user_id,))
            return bool(moved)

        return self._write(change)

    def enable(self, user_id: int) -> bool:
        return bool(
            self._write(
                lambda c: (
                    c.execute(
                        "UPDATE users SET disabled_at = NULL WHERE id = ? AND disabled_at IS NOT NULL",
                        (user_id,),
                    ).rowcount
                )
            )
        )


class SqliteSessions(Concern):
    def open(
        self, user_id: int, *, session_id: str, csrf: str, stage: str = "signed_in"
    ) -> UserSession:
        if stage not in SESSION_STAGES:
            raise RequestError(400, f"unknown session stage {stage!r}")
        now = self.clock.now()

        def insert(c: sqlite3.Connection) -> None:
            live = c.execute(
                "SELECT 1 FROM users WHERE id = ? AND disabled_at IS NULL", (user_id,)
            ).fetchone()
            if live is None:
                raise RequestError(404, f"no active user {user_id}")
            c.execute(
                "INSERT INTO dashboard_sessions (id, user_id, csrf, stage, created_at, seen_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, user_id, csrf, stage, now, now),
            )

        self._write(insert)
        found = self.get(session_id)
        assert found is not None
        return found

    def get(self, session_id: str) -> UserSession | None:
        rows = self._read(
            "SELECT s.* FROM dashboard_sessions s JOIN users u ON u.id = s.user_id"
            " WHERE s.id = ? AND u.disabled_at IS NULL",
            (session_id,),
        )
        return _session(rows[0]) if rows else None

    def touch(self, session_id: str) -> bool:
        now = self.clock.now()
        return bool(
            self._write(
                lambda c: (
                    c.execute(
                        "UPDATE dashboard_sessions SET seen_at = ? WHERE id = ?", (now, session_id)
                    ).rowcount
                )
            )
        )

    def promote(self, session_id: str, *, new_id: str, csrf: str) -> UserSession | None:
        now = self.clock.now()
        moved = self._write(
            lambda c: (
                c.execute(
                    "UPDATE dashboard_sessions SET id = ?, csrf = ?, stage = 'signed_in', seen_at = ?"
                    " WHERE id = ? AND stage = 'second_factor'",
                    (new_id, csrf, now, session_id),
                ).rowcount
            )
        )
        return self.get(new_id) if moved else None

    def switch(self, session_id: str, account_id: int | None) -> bool:
        def change(c: sqlite3.Connection) -> int:
            if (
                account_id is not None
                and c.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone()
                is None
            ):
                raise RequestError(404, f"no account {account_id}")
            return c.execute(
                "UPDATE dashboard_sessions SET account_id = ? WHERE id = ?",
                (account_id, session_id),
            ).rowcount

        return bool(self._write(change))

    def end(self, session_id: str) -> bool:
        return bool(
            self._write(
                lambda c: (
                    c.execute("DELETE FROM dashboard_sessions WHERE id = ?", (session_id,)).rowcount
                )
            )
        )

    def end_all_of(self, user_id: int, *, but: str | None = None) -> int:
        return int(
            self._write(
                lambda c: (
                    c.execute(
                        "DELETE FROM dashboard_sessions WHERE user_id = ? AND id IS NOT ?",
                        (user_id, but),
                    ).rowcount
                )
            )
        )

    def purge(self, *, seen_before: float, created_before: float) -> int:
        return int(
            self._write(
                lambda c: (
                    c.execute(
                        "DELETE FROM dashboard_sessions WHERE seen_at < ? OR created_at < ?",
                        (seen_before, created_before),
                    ).rowcount
                )
            )
        )
