"""relaygate's durable state, behind one interface (``api.Store``) with a backend per database.

``open_store(settings)`` picks the backend (today SQLite in the state directory; PostgreSQL
comes with ``[store] url``) and returns it opened (schema created or upgraded). Callers use the
interface and the values of ``models`` / ``states`` only; SQL lives in a backend.
"""

from __future__ import annotations

from pathlib import Path

from relaygate.clock import Clock
from relaygate.settings import Settings
from relaygate.store.api import Store

__all__ = ["Store", "new_store", "open_store", "open_store_at"]


def new_store(settings: Settings, *, clock: Clock | None = None) -> Store:
    """The store the settings name, not opened yet (``Store.open`` creates or upgrades it)."""
    from relaygate.store.sqlite import SqliteStore

    return SqliteStore(settings.database, clock=clock)


def open_store(settings: Settings, *, clock: Clock | None = None) -> Store:
    """The store the settings name, opened (schema created or upgraded)."""
    return new_store(settings, clock=clock).open()


def open_store_at(path: Path, *, clock: Clock | None = None) -> Store:
    """The embedded SQLite store at ``path``, opened (tests and tools that hold a path)."""
    from relaygate.store.sqlite import SqliteStore

    return SqliteStore(path, clock=clock).open()
