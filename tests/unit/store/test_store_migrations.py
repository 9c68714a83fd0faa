"""Migration files: split into statements as SQLite reads them."""

from __future__ import annotations

import sqlite3

from relaygate.store.sqlite import db


def test_migration_split_keeps_trigger_bodies_whole() -> None:
    sql = (
        "-- a comment\nCREATE TABLE t (x);\n"
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n"
        "  UPDATE t SET x = CASE WHEN x > 1 THEN 1 ELSE 0 END;\n"
        "  UPDATE t SET x = 2;\nEND;\nINSERT INTO t VALUES (1);\n"
    )
    parts = db._split(sql)
    assert [p.split()[0] for p in parts] == ["CREATE", "CREATE", "INSERT"]
    assert parts[1].endswith("END") and parts[1].count(";") == 2
    conn = sqlite3.connect(":memory:")
    for statement in parts:
        conn.execute(statement)
