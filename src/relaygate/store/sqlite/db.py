"""SQLite connections, numbered migrations, and the one place sqlite3 errors are translated
(``fault`` decides what is the database's failure, ``unavailable`` makes the ``StoreUnavailable``;
``translated``, the reads of ``core`` and the group-commit writer all go through them).

Every connection runs in WAL mode with ``synchronous=FULL``: a commit has reached stable storage
when ``commit()`` returns. Migrations are ``migrations/NNN_name.sql`` applied in order, each in
its own transaction, recorded in ``schema_migrations``; they run on every start and are idempotent.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

from relaygate.errors import StoreUnavailable
from relaygate.store.sqlite.idnfix import canonical_addresses

#: How long a statement waits for another connection's lock before the store is "unavailable".
#: RELAYGATE_SQLITE_BUSY_TIMEOUT_MS overrides it (fault tests make it short).
BUSY_TIMEOUT_MS = int(os.environ.get("RELAYGATE_SQLITE_BUSY_TIMEOUT_MS", "10000"))


def connect(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with relaygate's pragmas; autocommit off (explicit BEGIN)."""
    try:
        conn = sqlite3.connect(
            str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        if readonly:
            conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot open the store: {exc}") from exc
    return conn


def fault(exc: BaseException) -> bool:
    """Whether ``exc`` is the database failing (locked, disk full, read-only, I/O, corrupt):
    retry later. An IntegrityError is the caller's own (a broken constraint), not a fault."""
    return isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError) and not isinstance(
        exc, sqlite3.IntegrityError
    )


def busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "the write lock is held elsewhere" (retry in a moment)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.OperationalError) and (
        (code is not None and code & 0xFF == sqlite3.SQLITE_BUSY)
        or "database is locked" in str(exc)
    )


def unavailable(exc: BaseException) -> StoreUnavailable:
    """The project's error for a database fault (or for a batch that failed with one)."""
    return StoreUnavailable(f"store unavailable: {exc}")


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Turn sqlite3's operational failures (locked, disk full, read-only, I/O) into StoreUnavailable."""
    try:
        yield
    except sqlite3.Error as exc:
        if fault(exc):
            raise unavailable(exc) from exc
        raise


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any exception."""
    with translated():
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("relaygate.store.sqlite").joinpath("migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:3].isdigit():
            found.append((int(name[:3]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


#: Data steps SQL cannot do, run after the migration of that version, in its transaction.
_PYTHON_STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {11: canonical_addresses}


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply every migration not yet applied. Returns the names applied now."""
    applied_now: list[str] = []
    with translated():
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for version, name, sql in _migrations():
            if version in done:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split(sql):
                    conn.execute(statement)
                step = _PYTHON_STEPS.get(version)
                if step is not None:
                    step(conn)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (version, name)
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            applied_now.append(name)
    return applied_now


def _split(sql: str) -> list[str]:
    """Split a migration into statements (no semicolons inside our string literals); a
    statement ends at the first semicolon where SQLite sees a complete one, so a
    ``CREATE TRIGGER … BEGIN …; END`` keeps the semicolons of its body."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    statements: list[str] = []
    pending = ""
    for part in "\n".join(lines).split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            text = pending.strip().removesuffix(";").strip()
            if text:
                statements.append(text)
            pending = ""
    if pending.strip().removesuffix(";").strip():
        statements.append(pending.strip().removesuffix(";").strip())
    return statements
