"""Group commit: many writers' work in one SQLite transaction, each answered after the commit.

A dedicated thread owns one write connection. ``await writer.run(fn)`` queues ``fn(conn)``; the
thread takes everything queued (up to ``max_batch``), runs each function inside its own SAVEPOINT
(so one caller's error rolls back only its own work), commits once with ``synchronous=FULL``, and
only then resolves each caller's future. If the commit fails every caller in the batch gets
``StoreUnavailable`` and nothing of the batch is kept: nobody is ever told "committed" for work
that is not on disk.

``await writer.run_bulk(many, one, item)`` is for the hot path (admissions): the items of one
batch that share ``many`` are handed to it together, so it can write them with a few multi-row
statements (each statement's step gives the GIL away and waits to get it back, which made a
job's dozen statements the writer's main cost while the event loop was busy). ``many`` answers
each item itself (``(ok, value)``); if it raises, its work is rolled back and every item runs
through ``one`` in its own SAVEPOINT, as a ``run`` job would.

Waiting for the write lock (another process, e.g. an operator's ``sqlite3`` shell, holds it): the
writer asks for it in short slices (``PRAGMA busy_timeout`` of ``LOCK_SLICE_MS``) and, between
slices, fails with ``StoreUnavailable`` each job whose own wait is over and takes in the jobs
queued since. A job waits ``wait`` seconds: ``REQUEST_LOCK_WAIT`` (1.5 s) for work a client is
waiting on (admission: the answer is 503 / 451 well within 2 s), ``LOCK_WAIT`` (the store's busy
timeout) by default. These waits are real time by nature (the lock is another process's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from relaygate.errors import StoreUnavailable
from relaygate.store.sqlite.db import BUSY_TIMEOUT_MS, busy, connect, fault, unavailable

T = TypeVar("T")
log = logging.getLogger("relaygate.store")

Item = TypeVar("Item")
JobOutcome = tuple[bool, Any]  # (True, result) or (False, exception)
BulkMany = Callable[[sqlite3.Connection, list[Any]], list[JobOutcome]]
BulkOne = Callable[[sqlite3.Connection, Any], Any]

#: Default wait for the write lock, seconds (the store's busy timeout).
LOCK_WAIT = BUSY_TIMEOUT_MS / 1000
#: Wait for the write lock of work a client is waiting on (admission), seconds.
REQUEST_LOCK_WAIT = min(1.5, LOCK_WAIT)
#: One attempt at the write lock, milliseconds (SQLite's busy handler sleeps within it).
LOCK_SLICE_MS = 50


class _Bulk:
    """One item of a bulk job: ``many`` groups it with the others of its batch."""

    __slots__ = ("item", "many", "one")

    def __init__(self, many: BulkMany, one: BulkOne, item: Any) -> None:
        self.many = many
        self.one = one
        self.item = item

    def run_one(self, conn: sqlite3.Connection) -> Any:
        """This item alone (the fall-back when its bulk failed)."""
        return self.one(conn, self.item)


_Work = Callable[[sqlite3.Connection], Any] | _Bulk
#: (work, the caller's loop, its future, the monotonic time its wait for the lock ends)
_Job = tuple[_Work, asyncio.AbstractEventLoop, "asyncio.Future[Any]", float]


class GroupWriter:
    def __init__(self, path: Path, *, max_batch: int = 256) -> None:
        self._path = path
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        self._stopping = False
        self.checkpoint_interval = 1.0
        self.batches = 0
        self.jobs = 0
        self.checkpoints = 0
        self.bulk_fallbacks = 0

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

    async def run(self, fn: Callable[[sqlite3.Connection], T], *, wait: float = LOCK_WAIT) -> T:
        """Run ``fn(conn)`` in the next group transaction; returns after the commit. Raises
        StoreUnavailable when the write lock is not had within ``wait`` seconds."""
        if self._thread is None:
            raise StoreUnavailable("store writer is not running")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, loop, fut, time.monotonic() + wait))
        return await fut

    async def run_bulk(
        self,
        many: Callable[[sqlite3.Connection, list[Item]], list[JobOutcome]],
        one: Callable[[sqlite3.Connection, Item], T],
        item: Item,
        *,
        wait: float = LOCK_WAIT,
    ) -> T:
        """Like ``run(lambda conn: one(conn, item))``, with the batch's items of ``many`` together."""
        if self._thread is None:
            raise StoreUnavailable("store writer is not running")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put((_Bulk(many, one, item), loop, fut, time.monotonic() + wait))
        return await fut

    # -- the writer thread ------------------------------------------------------------------
    def _loop(self) -> None:
        conn: sqlite3.Connection | None = None
        self._stopping = False
        while not self._stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = self._take([first])
            if conn is None:
                try:
                    conn = connect(self._path)
                    conn.execute("PRAGMA wal_autocheckpoint = 0")
                    conn.execute(f"PRAGMA busy_timeout = {LOCK_SLICE_MS}")
                except StoreUnavailable as exc:
                    self._fail(batch, exc)
                    continue
            conn = self._commit_batch(conn, batch)
        if conn is not None:
            conn.close()

    def _take(self, batch: list[_Job]) -> list[_Job]:
        """``batch`` and what is queued behind it, up to ``max_batch`` (never blocks)."""
        while len(batch) < self._max_batch and not self._stopping:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._stopping = True
                break
            batch.append(item)
        return batch

    def _begin(self, conn: sqlite3.Connection, batch: list[_Job]) -> bool:
        """BEGIN IMMEDIATE for ``batch``, asked for in slices; between slices the jobs whose
        wait is over fail (StoreUnavailable) and newly queued jobs join (``batch`` is changed in
        place). False when no job is left (and no transaction was begun)."""
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return True
            except sqlite3.OperationalError as exc:
                if not busy(exc):
                    raise
            now = time.monotonic()
            over = [job for job in batch if job[3] <= now]
            if over:
                log.warning(
                    "store busy: the write lock is held elsewhere", extra={"jobs": len(over)}
                )
                self._fail(over, StoreUnavailable("store busy: the write lock is held elsewhere"))
                batch[:] = [job for job in batch if job[3] > now]
            self._take(batch)
            if not batch:
                return False

    def _commit_batch(
        self, conn: sqlite3.Connection, batch: list[_Job]
    ) -> sqlite3.Connection | None:
        try:
            if not self._begin(conn, batch):
                return conn
            outcomes: list[JobOutcome | None] = [None] * len(batch)
            bulks: dict[BulkMany, list[int]] = {}
            for i, (work, _loop, _fut, _until) in enumerate(batch):
                if isinstance(work, _Bulk):
                    bulks.setdefault(work.many, []).append(i)
            # in arrival order; a bulk group runs where its first item arrived
            for i, (work, _loop, _fut, _until) in enumerate(batch):
                if outcomes[i] is not None:
                    continue
                if not isinstance(work, _Bulk):
                    outcomes[i] = self._one(conn, i, work)
                    continue
                positions = bulks[work.many]
                answers = self._many(conn, work.many, batch, positions)
                for j, outcome in zip(positions, answers, strict=True):
                    outcomes[j] = outcome
            if any(o is None for o in outcomes):
                raise RuntimeError("a job of the batch has no outcome")
            conn.execute("COMMIT")
        except Exception as exc:  # sqlite3.Error, or a bug of ours: the whole batch fails
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                log.error("group commit failed", extra={"error": str(exc), "jobs": len(batch)})
            else:
                log.exception("group commit failed", extra={"jobs": len(batch)})
            self._fail(batch, unavailable(exc))
            with contextlib.suppress(sqlite3.Error):
                conn.close()
            return None  # reconnect for the next batch
        self.batches += 1
        self.jobs += len(batch)
        _answer(batch, [o for o in outcomes if o is not None])
        return conn

    @staticmethod
    def _one(
        conn: sqlite3.Connection, i: int, fn: Callable[[sqlite3.Connection], Any]
    ) -> JobOutcome:
        """``fn`` in its own SAVEPOINT: its error rolls back its work only (a database-level
        failure is raised: the whole batch fails)."""
        conn.execute(f"SAVEPOINT job{i}")
        try:
            result = fn(conn)
        except Exception as exc:
            conn.execute(f"ROLLBACK TO job{i}")
            conn.execute(f"RELEASE job{i}")
            if fault(exc):
                raise
            return (False, exc)
        conn.execute(f"RELEASE job{i}")
        return (True, result)

    def _many(
        self, conn: sqlite3.Connection, many: BulkMany, batch: list[_Job], positions: list[int]
    ) -> list[JobOutcome]:
        items = [batch[i][0] for i in positions]
        conn.execute("SAVEPOINT bulk")
        try:
            outcomes = many(conn, [b.item for b in items if isinstance(b, _Bulk)])
        except Exception as exc:
            conn.execute("ROLLBACK TO bulk")
            conn.execute("RELEASE bulk")
            if fault(exc):
                raise
            log.info("bulk write fell back to one by one", extra={"error": str(exc)})
            self.bulk_fallbacks += 1
            return [
                self._one(conn, i, b.run_one)
                for i, b in zip(positions, items, strict=True)
                if isinstance(b, _Bulk)
            ]
        if len(outcomes) != len(items):  # a bug: fails the whole batch (see _commit_batch)
            raise RuntimeError("a bulk writer must answer every item")
        conn.execute("RELEASE bulk")
        return outcomes

    @staticmethod
    def _fail(batch: list[_Job], exc: Exception) -> None:
        _answer(batch, [(False, exc)] * len(batch))


def _answer(batch: list[_Job], outcomes: list[JobOutcome]) -> None:
    """Hand each caller its result: one wake-up per event loop for the whole batch, not one per
    job (each ``call_soon_threadsafe`` writes to the loop's wake-up pipe)."""
    per_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for (_fn, loop, fut, _until), (ok, value) in zip(batch, outcomes, strict=True):
        per_loop.setdefault(loop, []).append((fut, ok, value))
    for loop, results in per_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve_all, results)
        except RuntimeError:  # that loop is closed: nobody is waiting any more
            pass


def _resolve_all(results: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for fut, ok, value in results:
        _resolve(fut, ok, value)


def _resolve(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
