"""Schema 11 on a store written before the one domain normaliser: identities and suppressions
with Unicode or mixed-case domains are rewritten to A-labels; two spellings of one address
merge, keeping the stricter suppression and the identity further along."""

from __future__ import annotations

from pathlib import Path

from relaygate.store.sqlite import SqliteStore as Store
from relaygate.store.sqlite import db


def test_old_spellings_are_rewritten_and_merged(tmp_path: Path) -> None:
    path = tmp_path / "relaygate.sqlite3"
    conn = db.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    for version, name, sql in db._migrations():
        if version >= 11:
            continue
        for statement in db._split(sql):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, name))
    conn.execute(
        "INSERT INTO accounts (id, name, plan, daily_quota, rate_limit, created_at)"
        " VALUES (1, 'a', 'paid', 1000, 10, 1.0)"
    )
    identities = [
        (1, "address", "a@bücher.example", "pending"),
        (2, "address", "a@xn--bcher-kva.example", "pending"),
        (3, "address", "b@Straße.de", "verified"),
        (4, "domain", "plain.example", "verified"),
    ]
    for ident_id, kind, value, status in identities:
        conn.execute(
            "INSERT INTO identities (id, account_id, kind, value, status, token, created_at)"
            " VALUES (?, 1, ?, ?, ?, 't', 1.0)",
            (ident_id, kind, value, status),
        )
    conn.execute("UPDATE identities SET status = 'verified' WHERE id = 1")
    suppressions = [
        # two spellings of one address: the hard, permanent entry wins whatever its spelling
        ("sup@bücher.example", "userunknown", "hard", 10.0, None),
        ("sup@xn--bcher-kva.example", "mailboxfull", "soft", 20.0, 999.0),
        ("x@ΒΌΛΟΣ.com", "operator", "hard", 30.0, None),
        ("kept@plain.example", "operator", "hard", 40.0, None),
    ]
    for address, reason, kind, created, expires in suppressions:
        conn.execute(
            "INSERT INTO suppressions (account_id, address, reason, bounce_type, source,"
            " created_at, expires_at) VALUES (1, ?, ?, ?, 'test', ?, ?)",
            (address, reason, kind, created, expires),
        )
    conn.close()

    store = Store(path).open()
    try:
        got = {i.identity.value: i.identity.status for i in store.identities.details(1)}
        assert got == {
            "a@xn--bcher-kva.example": "verified",  # merged: the verified spelling's state
            "b@xn--strae-oqa.de": "verified",  # ß kept, not strasse.de
            "plain.example": "verified",
        }
        listed = {
            r.address: (r.reason, r.bounce_type, r.expires_at) for r in store.suppressions.all(1)
        }
        assert listed == {
            "sup@xn--bcher-kva.example": ("userunknown", "hard", None),
            "x@xn--nxasmq6b.com": ("operator", "hard", None),
            "kept@plain.example": ("operator", "hard", None),
        }
        assert store.suppressions.lookup(1, ["SUP@xn--bcher-kva.example"])
    finally:
        store.close()
