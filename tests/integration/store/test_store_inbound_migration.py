"""Schema 9 on a store that already holds reports: what was unmatched stays unmatched, the rest
counts as applied, pending rows stay pending, and every row gets its size."""

from __future__ import annotations

import json
from pathlib import Path

from relaygate.store.sqlite import SqliteStore as Store
from relaygate.store.sqlite import db


def test_reports_kept_before_schema_9_get_an_outcome(tmp_path: Path) -> None:
    path = tmp_path / "relaygate.sqlite3"
    conn = db.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    for version, name, sql in db._migrations():
        if version >= 9:
            continue
        for statement in db._split(sql):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, name))
    rows = [("in_a", 1.0, 1, b"applied"), ("in_u", 2.0, 1, b"unmatched"), ("in_p", 3.0, 0, b"new")]
    for inbound_id, at, processed, data in rows:
        conn.execute(
            "INSERT INTO inbound (id, received_at, mail_from, rcpts, peer, data, processed)"
            " VALUES (?, ?, '', '[]', '192.0.2.1', ?, ?)",
            (inbound_id, at, data, processed),
        )
    conn.execute(
        "INSERT INTO events (account_id, type, created_at, data)"
        " VALUES (0, 'inbound_unmatched', 2.0, ?)",
        (json.dumps({"inbound_id": "in_u", "kind": "bounce"}),),
    )
    conn.close()

    store = Store(path).open()
    try:
        got = {r.id: (r.status, r.reason, r.size, r.processed_at) for r in store.inbound.reports()}
        assert got == {
            "in_a": ("applied", "", 7, 1.0),
            "in_u": ("unmatched", "no_token", 9, 2.0),
            "in_p": ("pending", "", 3, None),
        }
        assert [m.id for m in store.inbound.pending()] == ["in_p"]
    finally:
        store.close()
