"""Schema 15 on a store that has events already: the daily counters start from what the events
say (the same numbers the triggers keep from then on)."""

from __future__ import annotations

from pathlib import Path

from relaygate.clock import FakeClock, utc_day
from relaygate.store.ids import new_message_id
from relaygate.store.models import NewMessage, NewRecipient, Outcome
from relaygate.store.sqlite import SqliteStore as Store


def test_the_counters_are_filled_from_the_events_kept(tmp_path: Path, clock: FakeClock) -> None:
    store = Store(tmp_path / "relaygate.sqlite3", clock=clock).open()
    account = store.accounts.create("a", plan="paid").id
    for n in range(3):
        mid = new_message_id()
        store.admission.admit_sync(
            NewMessage(
                id=mid,
                account_id=account,
                channel="http",
                from_addr="app@example.com",
                sender_domain="example.com",
                subject="s",
                header_message_id=f"<{mid}@example.com>",
                tags=(),
                body=b"x",
                recipients=(
                    NewRecipient(address=f"r{n}@d.test", kind="to"),
                    NewRecipient(address=f"s{n}@d.test", kind="to", suppressed="manual"),
                ),
                check_suppressions=False,
            )
        )
    for state in ("deferred", "deferred", "delivered"):
        claimed = store.queue.claim_sync("w", limit=10, lease_seconds=60)
        store.queue.record_sync(
            "w",
            [
                Outcome(recipient_id=c.id, state=state, response="x", next_attempt_at=clock.now())
                for c in claimed
                if c.address.startswith("r0") or state == "delivered"
            ],
        )
        store.queue.release_dead_owners(lambda owner: True)
    day = utc_day(clock.now())
    kept = store.usage.days(account, first=day, last=day)
    assert [(d.accepted, d.suppressed, d.deferred, d.delivered) for d in kept] == [(3, 3, 1, 3)]
    conn = store.core.conn()
    conn.execute("DROP TABLE usage_days")
    for name in [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'usage_%'"
        )
    ]:
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DELETE FROM schema_migrations WHERE version = 15")
    store.close()
    again = Store(tmp_path / "relaygate.sqlite3", clock=clock).open()
    try:
        assert again.usage.days(account, first=day, last=day) == kept
    finally:
        again.close()
