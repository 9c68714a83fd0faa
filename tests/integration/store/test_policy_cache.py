"""The policy cache: what one process read of keys, accounts, identities and templates.

A change counts at once, made through the same Store or by another process (another Store on
the same file, as the CLI is); an edit no Store made (the sqlite3 shell) within ``POLICY_TTL``
on the injected clock."""

from __future__ import annotations

import sqlite3
from typing import Any

from relaygate.clock import FakeClock
from relaygate.compose.templates import Template
from relaygate.store.sqlite import SqliteStore as Store
from relaygate.store.sqlite.policycache import POLICY_TTL


def other_process(store: Store, clock: FakeClock) -> Store:
    return Store(store.path, clock=clock).open()


def test_changes_through_the_same_store_count_at_once(store: Store, sender: dict[str, Any]) -> None:
    account = sender["account"]
    assert store.keys.authenticate(sender["secret"]) is not None
    assert store.identities.sender_allowed(account.id, "app@example.com")
    assert store.accounts.get(account.id).plan == "paid"  # type: ignore[union-attr]
    store.keys.revoke(sender["key"].id)
    identity = store.identities.all(account.id)[0]
    store.identities.set_status(identity.id, "failed")
    store.accounts.update(account.id, plan="free")
    assert store.keys.authenticate(sender["secret"]) is None
    assert not store.identities.sender_allowed(account.id, "app@example.com")
    assert store.accounts.get(account.id).plan == "free"  # type: ignore[union-attr]


def test_another_process_changes_count_at_once(
    store: Store, clock: FakeClock, sender: dict[str, Any]
) -> None:
    account = sender["account"]
    assert store.keys.authenticate(sender["secret"]) is not None
    assert store.identities.sender_allowed(account.id, "app@example.com")
    assert store.accounts.get(account.id).plan == "paid"  # type: ignore[union-attr]
    assert store.templates.get(account.id, "hello") is None
    assert store.keys.authenticate(sender["secret"]) is not None  # from the cache now
    cli = other_process(store, clock)
    try:
        cli.keys.revoke(sender["key"].id)
        assert store.keys.authenticate(sender["secret"]) is None
        cli.identities.set_status(cli.identities.all(account.id)[0].id, "failed")
        assert not store.identities.sender_allowed(account.id, "app@example.com")
        cli.accounts.update(account.id, plan="free")
        assert store.accounts.get(account.id).plan == "free"  # type: ignore[union-attr]
        template = Template(slug="hello", subject="Hi", html="<p>hi</p>", text="")
        cli.templates.save(account.id, template)
        found = store.templates.get(account.id, "hello")
        assert found is not None and found.subject == "Hi"
    finally:
        cli.close()


def test_an_edit_no_store_made_counts_within_the_ttl(
    store: Store, clock: FakeClock, sender: dict[str, Any]
) -> None:
    assert store.keys.authenticate(sender["secret"]) is not None
    shell = sqlite3.connect(store.path)
    with shell:
        shell.execute("UPDATE api_keys SET revoked_at = 1 WHERE id = ?", (sender["key"].id,))
    shell.close()
    assert store.keys.authenticate(sender["secret"]) is not None  # remembered: the decision
    clock.advance(POLICY_TTL)
    assert store.keys.authenticate(sender["secret"]) is None


def test_the_generation_moves_with_every_policy_table(store: Store, sender: dict[str, Any]) -> None:
    """Schema 8's triggers: any write to the four tables moves it; a message does not."""
    conn = store.core.conn()

    def generation() -> int:
        return int(conn.execute("SELECT n FROM policy_generation").fetchone()[0])

    before = generation()
    store.accounts.create("other")
    store.keys.create(sender["account"].id)
    store.identities.add(sender["account"].id, "other.example")
    store.templates.save(sender["account"].id, Template(slug="t", subject="s", html="h", text=""))
    store.templates.delete(sender["account"].id, "t")
    assert generation() == before + 5
    store.suppressions.add(sender["account"].id, "x@dest.test", reason="manual", source="manual")
    assert generation() == before + 5


def test_failed_authentications_are_not_remembered(store: Store, sender: dict[str, Any]) -> None:
    for i in range(50):
        assert store.keys.authenticate(f"sk_live_wrong{i}") is None
    assert not any(key[0] == "key" for key in store.core.policy._entries)


def test_a_value_read_before_a_change_is_not_remembered_after_it(
    store: Store, clock: FakeClock, sender: dict[str, Any]
) -> None:
    """A reader that looked up before a change and puts after it (another thread, or another
    process's change) must not leave the old value cached."""
    key = ("key", "x")
    _, token = store.core.policy.get(key)
    store.accounts.update(sender["account"].id, plan="trial")  # a write of this process
    store.core.policy.put(key, "old", token)
    assert store.core.policy.get(key)[0] != "old"
    _, token = store.core.policy.get(key)
    cli = other_process(store, clock)
    try:
        cli.accounts.update(sender["account"].id, plan="paid")  # another process's
    finally:
        cli.close()
    store.core.policy.put(key, "old", token)
    assert store.core.policy.get(key)[0] != "old"
    _, token = store.core.policy.get(key)
    store.core.policy.put(key, "new", token)  # nothing changed in between: remembered
    assert store.core.policy.get(key)[0] == "new"


def test_a_closed_store_maps_the_stamp_again_when_used(
    store: Store, clock: FakeClock, sender: dict[str, Any]
) -> None:
    reader = other_process(store, clock)
    assert reader.keys.authenticate(sender["secret"]) is not None
    reader.close()
    assert reader.keys.authenticate(sender["secret"]) is not None
    store.keys.revoke(sender["key"].id)
    assert reader.keys.authenticate(sender["secret"]) is None  # it watches the stamp again
    reader.close()
