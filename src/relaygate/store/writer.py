"""Group commit: many writers' work in one SQLite transaction, each answered after the commit.

A dedicated thread owns one write connection. ``await writer.run(fn)`` queues ``fn(conn)``; the
thread takes everything queued (up to ``max_batch``), runs each function inside its own SAVEPOINT
(so one caller's error rolls back only its own work), commits once with ``synchronous=FULL``, and
only then resolves each caller's future. If the commit fails every caller in the batch gets
``StoreUnavailable`` and nothing of the batch is kept: nobody is ever told "committed" for work
that is not on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from relaygate.errors import StoreUnavailable
from relaygate.store.db import connect

T = TypeVar("T")
log = logging.getLogger("relaygate.store")

_Job = tuple[Callable[[sqlite3.Connection], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class GroupWriter:
    def __init__(self, path: Path, *, max_batch: int = 256) -> None:
        self._path = path
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        self.checkpoint_interval = 1.0
        self.batches = 0
        self.jobs = 0
        self.checkpoints = 0

    def start(self) -> None:
        if self._thread is None:
            self._stop_checkpoints.clear()
            self._thread = threading.Thread(target=self._loop, name="relaygate-writer", daemon=True)
            self._thread.start()
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="relaygate-checkpoint", daemon=True
            )
            self._checkpointer.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None
        if self._checkpointer is not None:
            self._stop_checkpoints.set()
            self._checkpointer.join(timeout=30)
            self._checkpointer = None

    def _checkpoint_loop(self) -> None:
        """WAL checkpoints off the commit path: the writer connection never checkpoints (a
        checkpoint fsyncs the database file and would stall every waiting commit); this thread
        copies committed WAL frames back in PASSIVE mode, which never blocks the writer."""
        conn: sqlite3.Connection | None = None
        seen = -1
        while True:
            stopping = self._stop_checkpoints.wait(self.checkpoint_interval)
            if self.batches != seen or stopping:
                seen = self.batches
                try:
                    if conn is None:
                        conn = connect(self._path)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except (sqlite3.Error, StoreUnavailable) as exc:
                    log.warning("checkpoint failed", extra={"error": str(exc)})
                    if conn is not None:
                        with contextlib.suppress(sqlite3.Error):
                            conn.close()
                    conn = None
            if stopping:
                break
        if conn is not None:
            conn.close()

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in the next group transaction; returns after the commit."""
        if self._thread is None:
            raise StoreUnavailable("store writer is not running")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, loop, fut))
        return await fut

    # -- the writer thread ------------------------------------------------------------------
    def _loop(self) -> None:
        conn: sqlite3.Connection | None = None
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            if conn is None:
                try:
                    conn = connect(self._path)
                    conn.execute("PRAGMA wal_autocheckpoint = 0")
                except StoreUnavailable as exc:
                    self._fail(batch, exc)
                    continue
            conn = self._commit_batch(conn, batch)
        if conn is not None:
            conn.close()

    def _commit_batch(
        self, conn: sqlite3.Connection, batch: list[_Job]
    ) -> sqlite3.Connection | None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for i, (fn, _loop, _fut) in enumerate(batch):
                conn.execute(f"SAVEPOINT job{i}")
                try:
                    result = fn(conn)
                except Exception as exc:
                    conn.execute(f"ROLLBACK TO job{i}")
                    conn.execute(f"RELEASE job{i}")
                    if isinstance(
                        exc, sqlite3.OperationalError | sqlite3.DatabaseError
                    ) and not isinstance(exc, sqlite3.IntegrityError):
                        raise
                    outcomes.append((False, exc))
                else:
                    conn.execute(f"RELEASE job{i}")
                    outcomes.append((True, result))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            log.error("group commit failed", extra={"error": str(exc), "jobs": len(batch)})
            self._fail(batch, StoreUnavailable(f"store unavailable: {exc}"))
            with contextlib.suppress(sqlite3.Error):
                conn.close()
            return None  # reconnect for the next batch
        self.batches += 1
        self.jobs += len(batch)
        _answer(
            [
                (loop, fut, ok, value)
                for (_fn, loop, fut), (ok, value) in zip(batch, outcomes, strict=True)
            ]
        )
        return conn

    @staticmethod
    def _fail(batch: list[_Job], exc: Exception) -> None:
        _answer([(loop, fut, False, exc) for _fn, loop, fut in batch])


_Answer = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", bool, Any]


def _answer(answers: list[_Answer]) -> None:
    """Resolve the futures, one wake-up per event loop for the whole batch (not one per job)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Answer]] = {}
    for answer in answers:
        by_loop.setdefault(answer[0], []).append(answer)
    for loop, group in by_loop.items():
        loop.call_soon_threadsafe(_resolve_all, group)


def _resolve_all(group: list[_Answer]) -> None:
    for _loop, fut, ok, value in group:
        _resolve(fut, ok, value)


def _resolve(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
