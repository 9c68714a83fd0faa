"""Schema 10 on a store that already holds domains: failing rows become at_risk keeping the time
they started failing; the others keep their state; the new states are accepted."""

from __future__ import annotations

from pathlib import Path

from relaygate.store.sqlite import SqliteStore as Store
from relaygate.store.sqlite import db
from relaygate.store.states import DomainStatus


def test_failing_domains_become_at_risk_with_their_start_time(tmp_path: Path) -> None:
    path = tmp_path / "relaygate.sqlite3"
    conn = db.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    for version, name, sql in db._migrations():
        if version >= 10:
            continue
        for statement in db._split(sql):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, name))
    conn.execute(
        "INSERT INTO accounts (id, name, plan, daily_quota, rate_limit, created_at)"
        " VALUES (1, 'a', 'paid', 1000, 10, 1.0)"
    )
    rows = [
        (1, "failing.example", "failing", 500.0, 900.0),
        (2, "old.example", "failing", None, 700.0),  # failing before failing_since existed
        (3, "fine.example", "verified", None, 800.0),
        (4, "new.example", "pending", None, None),
    ]
    for ident_id, value, status, since, checked in rows:
        conn.execute(
            "INSERT INTO identities (id, account_id, kind, value, status, token, created_at,"
            " status_reason, failing_since, last_checked_at)"
            " VALUES (?, 1, 'domain', ?, ?, 't', 100.0, 'why', ?, ?)",
            (ident_id, value, status, since, checked),
        )
    conn.close()

    store = Store(path).open()
    try:
        got = {
            i.identity.value: (i.status, i.failing_since, i.status_reason)
            for i in store.identities.domains()
        }
        assert got == {
            "failing.example": (DomainStatus.AT_RISK, 500.0, "why"),
            "old.example": (DomainStatus.AT_RISK, 700.0, "why"),
            "fine.example": (DomainStatus.VERIFIED, None, "why"),
            "new.example": (DomainStatus.PENDING, None, "why"),
        }
        assert store.identities.sender_allowed(1, "x@failing.example")  # at risk: still sends
        assert not store.identities.sender_allowed(1, "x@new.example")
        store.identities.set_status(4, "asserted")
        assert store.identities.sender_allowed(1, "x@new.example")  # the policy cache saw it
    finally:
        store.close()
