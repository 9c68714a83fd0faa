"""What every concern of the SQLite backend shares: one connection per thread for reads and
the command line's writes, the group-commit writer for the hot paths, the policy cache, and
the store's clock.

``read`` and ``write`` are the only ways the concern modules run SQL outside the writer; both
translate sqlite3's failures (through ``db``). ``write`` also keeps the policy cache honest:
it empties this process's cache and, when the transaction moved ``policy_generation``, tells
every other process through the stamp.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from relaygate.clock import Clock, SystemClock
from relaygate.errors import StoreUnavailable
from relaygate.store.sqlite import db
from relaygate.store.sqlite.policycache import PolicyCache
from relaygate.store.sqlite.writer import REQUEST_LOCK_WAIT, GroupWriter

T = TypeVar("T")


class Core:
    """The database file, its connections, its writer and its policy cache (one per process)."""

    def __init__(self, path: Path, *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.clock: Clock = clock or SystemClock()
        self._local = threading.local()
        self.writer = GroupWriter(self.path)
        self.policy = PolicyCache(self.clock, Path(f"{self.path}-policy"))
        self._policy_generation: int | None = None

    def open(self) -> None:
        """Create/migrate the database. Idempotent."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db.migrate(self.conn())

    def close(self) -> None:
        self.writer.stop()
        self.policy.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = db.connect(self.path)
            self._local.conn = conn
        return conn

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        # db.translated(), spelled out: this runs several times per request.
        try:
            return list(self.conn().execute(sql, params))
        except sqlite3.Error as exc:
            if db.fault(exc):
                raise db.unavailable(exc) from exc
            raise

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(conn)`` in its own transaction on this thread's connection (not grouped)."""
        conn = self.conn()
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
            self.write(lambda c: c.execute("CREATE TABLE IF NOT EXISTS _probe (x)"))
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


class Concern:
    """Base of each concern's class: the shared core's helpers bound once (no extra lookups on
    the hot paths)."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.clock = core.clock
        self.policy = core.policy
        self.writer = core.writer
        self._read = core.read
        self._write = core.write
