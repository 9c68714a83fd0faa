"""The group writer while another connection holds SQLite's write lock: each job waits its own
``wait`` for the lock, a job a client waits on is refused (StoreUnavailable) at its wait's end
even behind a job that waits longer, jobs queued meanwhile are judged the same way, and what
was refused is not written once the lock is free.

The lock is a real second connection in ``BEGIN IMMEDIATE``; the waits are real time by nature
(SQLite's busy handler), kept to fractions of a second. Nothing here sleeps to let time pass.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relaygate.errors import StoreUnavailable
from relaygate.store.sqlite.db import connect
from relaygate.store.sqlite.writer import GroupWriter


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[tuple[GroupWriter, Path]]:
    path = tmp_path / "w.db"
    conn = connect(path)
    conn.execute("CREATE TABLE log (n INTEGER PRIMARY KEY, what TEXT)")
    conn.close()
    w = GroupWriter(path)
    w.start()
    yield w, path
    w.stop()


def _note(what: str) -> Any:
    return lambda c: c.execute("INSERT INTO log (what) VALUES (?)", (what,)).lastrowid


def _many(conn: sqlite3.Connection, items: list[str]) -> list[tuple[bool, Any]]:
    conn.execute(f"INSERT INTO log (what) VALUES {','.join(['(?)'] * len(items))}", items)
    return [(True, item) for item in items]


def _one(conn: sqlite3.Connection, item: str) -> str:
    conn.execute("INSERT INTO log (what) VALUES (?)", (item,))
    return item


async def test_short_waits_are_refused_behind_a_long_one_and_nothing_refused_is_written(
    writer: tuple[GroupWriter, Path],
) -> None:
    w, path = writer
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        patient = asyncio.ensure_future(w.run(_note("patient"), wait=60))
        with pytest.raises(StoreUnavailable, match="busy"):
            await w.run(_note("hasty"), wait=0.2)
        # queued while the writer is already waiting for the lock on the patient job's behalf
        with pytest.raises(StoreUnavailable, match="busy"):
            await w.run_bulk(_many, _one, "bulk", wait=0.2)
        assert not patient.done()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert await patient == 1
    assert await w.run(_note("after"), wait=0.2) == 2
    check = sqlite3.connect(path)
    try:
        assert [r[0] for r in check.execute("SELECT what FROM log ORDER BY n")] == [
            "patient",
            "after",
        ]
    finally:
        check.close()


async def test_every_waiting_job_is_refused_when_the_lock_stays_held(
    writer: tuple[GroupWriter, Path],
) -> None:
    w, path = writer
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        results = await asyncio.gather(
            *(w.run(_note(f"r{i}"), wait=0.1 * (i % 3)) for i in range(20)),
            return_exceptions=True,
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert all(isinstance(r, StoreUnavailable) for r in results), results
    assert await w.run(_note("free"), wait=0.2) == 1  # the writer goes on afterwards
