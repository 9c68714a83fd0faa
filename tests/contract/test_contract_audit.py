"""The audit log through the interface: entries kept as given, per account, newest first,
paged by id, seen by another process."""

from __future__ import annotations

from relaygate.clock import FakeClock
from relaygate.store import Store


def test_append_returns_the_entry_as_kept(store: Store, clock: FakeClock) -> None:
    entry = store.audit.append(
        7,
        actor="key:key_1",
        action="key.create",
        target="key_2",
        address="192.0.2.1",
        detail={"scopes": ["email:send"], "name": "ci"},
    )
    assert entry.id > 0 and entry.created_at == clock.now()
    (listed,) = store.audit.list(7)
    assert listed == entry
    assert (listed.actor, listed.action, listed.target, listed.address) == (
        "key:key_1",
        "key.create",
        "key_2",
        "192.0.2.1",
    )
    assert listed.detail == {"name": "ci", "scopes": ["email:send"]}


def test_defaults_and_accounts_apart(store: Store) -> None:
    store.audit.append(1, actor="cli", action="key.revoke", target="key_9")
    store.audit.append(2, actor="user:3", action="domain.add", target="example.com")
    (one,) = store.audit.list(1)
    assert (one.address, one.detail) == ("", {})
    assert [e.target for e in store.audit.list(2)] == ["example.com"]
    assert store.audit.list(3) == []


def test_newest_first_and_paged_by_id(store: Store, clock: FakeClock) -> None:
    for n in range(5):
        store.audit.append(1, actor="cli", action="key.create", target=f"key_{n}")
        clock.advance(1)
    first = store.audit.list(1, limit=2)
    assert [e.target for e in first] == ["key_4", "key_3"]
    second = store.audit.list(1, limit=2, before=first[-1].id)
    assert [e.target for e in second] == ["key_2", "key_1"]
    last = store.audit.list(1, limit=2, before=second[-1].id)
    assert [e.target for e in last] == ["key_0"]
    assert store.audit.list(1, before=last[-1].id) == []
    assert first[0].created_at > first[1].created_at


def test_another_process_sees_committed_entries(store: Store, another: Store) -> None:
    entry = store.audit.append(4, actor="cli", action="webhook.add", target="wh_1")
    assert another.audit.list(4) == [entry]
