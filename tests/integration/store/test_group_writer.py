"""The group writer's bulk jobs: answered in the batch, in arrival order with the plain jobs,
and a broken bulk handler fails its batch (nobody told "committed") without killing the writer."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from relaygate.errors import StoreUnavailable
from relaygate.store.sqlite.db import connect
from relaygate.store.sqlite.writer import GroupWriter


@pytest.fixture
def writer(tmp_path: Path) -> Any:
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
    return [(True, item.upper()) for item in items]


def _one(conn: sqlite3.Connection, item: str) -> str:
    conn.execute("INSERT INTO log (what) VALUES (?)", (item,))
    return item.upper()


async def one_batch(w: GroupWriter, *jobs: Any) -> list[Any]:
    """Run ``jobs`` (awaitables of run/run_bulk) as one batch: the writer is held on a job of
    its own until all of them are queued."""
    gate = threading.Event()
    held = asyncio.ensure_future(w.run(lambda c: gate.wait(10)))
    while not w._queue.empty():  # until the writer has taken the holding job
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.01)
    tasks = [asyncio.ensure_future(j) for j in jobs]
    await asyncio.sleep(0)  # each task runs up to its queue.put
    gate.set()
    await held
    return list(await asyncio.gather(*tasks, return_exceptions=True))


def _rows(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT what FROM log ORDER BY n")]
    finally:
        conn.close()


async def test_bulk_items_run_where_the_first_arrived(writer: Any) -> None:
    w, path = writer
    results = await one_batch(
        w,
        w.run(_note("plain-1")),
        w.run_bulk(_many, _one, "bulk-a"),
        w.run(_note("plain-2")),
        w.run_bulk(_many, _one, "bulk-b"),
    )
    assert results[1] == "BULK-A" and results[3] == "BULK-B"
    assert _rows(path) == ["plain-1", "bulk-a", "bulk-b", "plain-2"]


async def test_a_broken_bulk_handler_fails_its_batch_and_the_writer_goes_on(writer: Any) -> None:
    w, path = writer

    def short(conn: sqlite3.Connection, items: list[str]) -> list[tuple[bool, Any]]:
        conn.execute("INSERT INTO log (what) VALUES ('half')")
        return []  # a bug: no answer for the items

    results = await one_batch(w, w.run(_note("same batch")), w.run_bulk(short, _one, "x"))
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert _rows(path) == []  # nothing of that batch was kept
    assert await w.run(_note("after")) is not None
    assert _rows(path) == ["after"]


async def test_an_integrity_error_in_bulk_runs_the_items_one_by_one(writer: Any) -> None:
    w, path = writer

    def clash(conn: sqlite3.Connection, items: list[str]) -> list[tuple[bool, Any]]:
        conn.execute("INSERT INTO log (n, what) VALUES (1, 'a'), (1, 'b')")
        return [(True, None) for _ in items]

    results = await one_batch(w, w.run_bulk(clash, _one, "p"), w.run_bulk(clash, _one, "q"))
    assert results == ["P", "Q"]
    assert w.bulk_fallbacks == 1
    assert _rows(path) == ["p", "q"]
