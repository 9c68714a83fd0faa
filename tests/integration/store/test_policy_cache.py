"""The policy cache: what one process read of keys, accounts, identities and templates.

A change made through the same Store counts at once; one made by another process (another
Store on the same file, as the CLI is) counts within ``POLICY_TTL`` on the injected clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from relaygate.clock import FakeClock
from relaygate.compose.templates import Template
from relaygate.store.spool import POLICY_TTL, Store


def other_process(store: Store, clock: FakeClock) -> Store:
    return Store(store.path, clock=clock).open()


def test_changes_through_the_same_store_count_at_once(store: Store, sender: dict[str, Any]) -> None:
    account = sender["account"]
    assert store.authenticate(sender["secret"]) is not None
    assert store.sender_allowed(account.id, "app@example.com")
    assert store.get_account(account.id).plan == "paid"  # type: ignore[union-attr]
    store.revoke_key(sender["key"].id)
    identity = store.list_identities(account.id)[0]
    store.set_identity_status(identity.id, "failing")
    store.update_account(account.id, plan="free")
    assert store.authenticate(sender["secret"]) is None
    assert not store.sender_allowed(account.id, "app@example.com")
    assert store.get_account(account.id).plan == "free"  # type: ignore[union-attr]


def test_another_process_changes_count_within_the_ttl(
    store: Store, clock: FakeClock, sender: dict[str, Any], tmp_path: Path
) -> None:
    account = sender["account"]
    assert store.authenticate(sender["secret"]) is not None
    assert store.sender_allowed(account.id, "app@example.com")
    assert store.get_account(account.id).plan == "paid"  # type: ignore[union-attr]
    assert store.get_template(account.id, "hello") is None
    cli = other_process(store, clock)
    try:
        cli.revoke_key(sender["key"].id)
        cli.set_identity_status(cli.list_identities(account.id)[0].id, "failing")
        cli.update_account(account.id, plan="free")
        cli.save_template(
            account.id, Template(slug="hello", subject="Hi", html="<p>hi</p>", text="")
        )
    finally:
        cli.close()
    # remembered for at most POLICY_TTL (the decision): still the old answers now ...
    assert store.authenticate(sender["secret"]) is not None
    assert store.sender_allowed(account.id, "app@example.com")
    assert store.get_template(account.id, "hello") is None
    clock.advance(POLICY_TTL)
    # ... the new ones once it has passed
    assert store.authenticate(sender["secret"]) is None
    assert not store.sender_allowed(account.id, "app@example.com")
    assert store.get_account(account.id).plan == "free"  # type: ignore[union-attr]
    found = store.get_template(account.id, "hello")
    assert found is not None and found.subject == "Hi"


def test_failed_authentications_are_not_remembered(store: Store, sender: dict[str, Any]) -> None:
    for i in range(50):
        assert store.authenticate(f"sk_live_wrong{i}") is None
    assert not any(key[0] == "key" for key in store.policy._entries)
