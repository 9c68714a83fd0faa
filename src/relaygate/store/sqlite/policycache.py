"""The policy cache: what this process read of the sending policy (an account row, an API key
found by its secret, a sender identity check, an account template), kept for ``POLICY_TTL``.

Decision: a change counts at once everywhere. One made through this process's store empties the
cache; one made by another process (the CLI revoking a key, removing an identity, changing a
plan) moves ``policy_generation`` (triggers, schema 8), and the writing store then rewrites the
stamp next to the database, which every cache checks (a memory read) before it answers. The
TTL only bounds what no store wrote (an edit with the sqlite3 shell). These reads were a tenth
of an SMTP submission: each statement after a group commit re-reads the WAL index.
"""

from __future__ import annotations

import logging
import mmap
import os
import secrets
from pathlib import Path
from typing import Any

from relaygate.clock import Clock

log = logging.getLogger("relaygate.store")

POLICY_TTL = 1.0
_POLICY_MAX = 10_000
_STAMP_BYTES = 8
MISS = object()


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
        """The cached value (or ``MISS``) and the token to ``put`` what is read instead."""
        stamp = self._stamp()
        if stamp != self._seen:  # some Store changed the policy since: forget everything
            self.clear()
            self._seen = stamp
        token = (stamp, self._generation)
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self.clock.now():
            return MISS, token
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
