"""Schema 12 on a store whose accounts share names: the oldest keeps the name, later ones get
'<name> (<id>)', nothing else changes, and names are unique from then on."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaygate.errors import RequestError
from relaygate.store.sqlite import SqliteStore as Store
from relaygate.store.sqlite import db


def test_duplicate_names_are_told_apart_by_id(tmp_path: Path) -> None:
    path = tmp_path / "relaygate.sqlite3"
    conn = db.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    for version, name, sql in db._migrations():
        if version >= 12:
            continue
        for statement in db._split(sql):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, name))
    for account_id, name in ((1, "acme"), (2, "shop"), (3, "acme"), (4, "acme"), (5, "Acme")):
        conn.execute(
            "INSERT INTO accounts (id, name, plan, daily_quota, rate_limit, created_at)"
            " VALUES (?, ?, 'paid', 1000, 10, 1.0)",
            (account_id, name),
        )
    conn.close()

    store = Store(path).open()
    try:
        assert [(a.id, a.name, a.plan) for a in store.accounts.all()] == [
            (1, "acme", "paid"),
            (2, "shop", "paid"),
            (3, "acme (3)", "paid"),
            (4, "acme (4)", "paid"),
            (5, "Acme", "paid"),  # names are compared exactly
        ]
        with pytest.raises(RequestError) as refused:
            store.accounts.create("shop")
        assert refused.value.status == 409 and "id 2" in refused.value.detail
    finally:
        store.close()
