"""The SQLite backend: the embedded default, one file in the state directory.

``SqliteStore`` implements ``relaygate.store.api.Store`` with one object per concern, each in
its own module; they share a ``core.Core`` (connections, the group-commit writer, the policy
cache, the clock). SQL and sqlite3 live only in this package; ``db`` is the one place its
errors are translated.
"""

from __future__ import annotations

from pathlib import Path

from relaygate.clock import Clock
from relaygate.store.sqlite.accounts import SqliteAccounts, SqliteKeys
from relaygate.store.sqlite.admission import SqliteAdmission, SqliteUsage
from relaygate.store.sqlite.audit import SqliteAudit
from relaygate.store.sqlite.core import Core
from relaygate.store.sqlite.identities import SqliteDkimKeys, SqliteIdentities
from relaygate.store.sqlite.inbound import SqliteInbound
from relaygate.store.sqlite.lists import SqliteSuppressions, SqliteTemplates
from relaygate.store.sqlite.messages import SqliteMessages
from relaygate.store.sqlite.queue import SqliteQueue
from relaygate.store.sqlite.status import SqliteStatus
from relaygate.store.sqlite.tracking import SqliteTracking
from relaygate.store.sqlite.users import SqliteSessions, SqliteUsers
from relaygate.store.sqlite.webhooks import SqliteWebhooks

__all__ = ["SqliteStore"]


class SqliteStore:
    """relaygate's durable state in one SQLite file. One instance per process; thread-safe for
    reads; the ``async`` writes go through the group-commit writer (``start_writer``)."""

    def __init__(self, path: Path, *, clock: Clock | None = None) -> None:
        self.core = Core(Path(path), clock=clock)
        self.path = self.core.path
        self.clock = self.core.clock
        self.accounts = SqliteAccounts(self.core)
        self.keys = SqliteKeys(self.core, self.accounts)
        self.identities = SqliteIdentities(self.core, self.accounts)
        self.dkim_keys = SqliteDkimKeys(self.core)
        self.templates = SqliteTemplates(self.core)
        self.suppressions = SqliteSuppressions(self.core)
        self.admission = SqliteAdmission(self.core)
        self.usage = SqliteUsage(self.core)
        self.queue = SqliteQueue(self.core)
        self.messages = SqliteMessages(self.core)
        self.webhooks = SqliteWebhooks(self.core)
        self.inbound = SqliteInbound(self.core)
        self.tracking = SqliteTracking(self.core)
        self.status = SqliteStatus(self.core)
        self.audit = SqliteAudit(self.core)
        self.users = SqliteUsers(self.core)
        self.sessions = SqliteSessions(self.core)

    def open(self) -> SqliteStore:
        """Create/migrate the database. Idempotent."""
        self.core.open()
        return self

    def start_writer(self) -> None:
        self.core.writer.start()

    def stop_writer(self) -> None:
        """Stop the group-commit writer (its async writes then fail: StoreUnavailable)."""
        self.core.writer.stop()

    def close(self) -> None:
        self.core.close()

    def writable(self) -> bool:
        return self.core.writable()

    async def probe(self) -> bool:
        return await self.core.probe()
