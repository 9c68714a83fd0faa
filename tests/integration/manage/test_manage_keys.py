"""Key actions on a real store: the scope an action needs, the §14 rule that a key grants only
scopes it holds, another account's key is not found, and each change in the audit log."""

from __future__ import annotations

import pytest

from relaygate.errors import Forbidden, Invalid, NotFound
from relaygate.manage import ADMIN, Actor
from relaygate.manage.audit import entry_json, list_entries
from relaygate.manage.keys import create_key, get_key, key_json, list_keys, revoke_key
from relaygate.store.sqlite import SqliteStore as Store


def admin_actor(store: Store, *scopes: str) -> Actor:
    account = store.accounts.create("acme", plan="paid")
    key, _ = store.keys.create(account.id, scopes=["account:admin", *scopes])
    return Actor.of_key(key, "198.51.100.7")


def test_create_list_revoke_and_the_audit_trail(store: Store) -> None:
    actor = admin_actor(store, "email:send")
    key, secret = create_key(store, actor, name="ci", scopes=["email:send"])
    assert secret.startswith("sk_live_") and store.keys.authenticate(secret) is not None
    assert key.scopes == ("email:send",) and key.account_id == actor.account_id
    assert key.id in [k.id for k in list_keys(store, actor)]
    assert secret not in str([key_json(k) for k in list_keys(store, actor)])
    revoked = revoke_key(store, actor, key.id)
    assert revoked.revoked_at is not None and store.keys.authenticate(secret) is None
    assert key_json(revoked)["revoked_at"].endswith("Z")
    revoke_key(store, actor, key.id)  # again: nothing changes, nothing more is logged
    entries, following = list_entries(store, actor)
    assert following is None
    assert [(e.action, e.target, e.actor, e.address) for e in entries] == [
        ("key.revoke", key.id, actor.who, "198.51.100.7"),
        ("key.create", key.id, actor.who, "198.51.100.7"),
    ]
    assert entries[1].detail == {"name": "ci", "scopes": ["email:send"]}
    assert secret not in str([entry_json(e) for e in entries])


def test_a_key_grants_only_scopes_it_holds(store: Store) -> None:
    actor = admin_actor(store, "email:send")
    with pytest.raises(Forbidden) as info:
        create_key(store, actor, scopes=["email:send", "email:read"])
    assert info.value.status == 403 and "email:read" in info.value.detail
    made, _ = create_key(store, actor, scopes=["account:admin", "email:send"])
    assert made.scopes == ("account:admin", "email:send")
    assert made.id in [k.id for k in list_keys(store, actor)]
    assert len(store.audit.list(actor.account_id)) == 1  # the refusal changed nothing


def test_the_command_line_holds_every_scope(store: Store) -> None:
    account = store.accounts.create("ops", plan="paid")
    key, _ = create_key(store, Actor.cli(account.id), scopes=["account:admin"])
    assert key.scopes == ("account:admin",)
    (entry,) = store.audit.list(account.id)
    assert (entry.actor, entry.address) == ("cli", "")


@pytest.mark.parametrize("scopes", [["email:send"], ["email:read"], ["email:send", "email:read"]])
def test_actions_need_account_admin(store: Store, scopes: list[str]) -> None:
    account = store.accounts.create("plain", plan="paid")
    key, _ = store.keys.create(account.id, scopes=scopes)
    actor = Actor.of_key(key)
    for action in (
        lambda: create_key(store, actor, scopes=["email:send"]),
        lambda: list_keys(store, actor),
        lambda: revoke_key(store, actor, key.id),
        lambda: list_entries(store, actor),
    ):
        with pytest.raises(Forbidden) as info:
            action()
        assert info.value.status == 403 and "account:admin" in info.value.detail
    assert store.keys.get(key.id) is not None and store.keys.get(key.id).revoked_at is None  # type: ignore[union-attr]


def test_another_accounts_key_is_not_found(store: Store) -> None:
    actor = admin_actor(store)
    other = store.accounts.create("other", plan="paid")
    theirs, secret = store.keys.create(other.id)
    for action in (
        lambda: get_key(store, actor, theirs.id),
        lambda: revoke_key(store, actor, theirs.id),
    ):
        with pytest.raises(NotFound) as info:
            action()
        assert info.value.status == 404
    assert store.keys.authenticate(secret) is not None
    with pytest.raises(NotFound):
        revoke_key(store, actor, "key_nonexistent")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"scopes": []}, "scopes"),
        ({"scopes": ["email:everything"]}, "scopes"),
        ({"name": "x" * 201}, "name"),
        ({"name": "tab\there"}, "name"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    store: Store, fields: dict[str, object], field: str
) -> None:
    actor = admin_actor(store)
    before = list_keys(store, actor)
    with pytest.raises(Invalid) as info:
        create_key(store, actor, **fields)  # type: ignore[arg-type]
    assert info.value.status == 400 and info.value.field == field and field in info.value.detail
    assert list_keys(store, actor) == before and store.audit.list(actor.account_id) == []


def test_audit_pages_with_a_cursor(store: Store) -> None:
    actor = admin_actor(store)
    made = [create_key(store, actor, name=f"k{n}", scopes=[ADMIN])[0] for n in range(5)]
    page, cursor = list_entries(store, actor, limit=2)
    seen = [e.target for e in page]
    while cursor is not None:
        page, cursor = list_entries(store, actor, limit=2, cursor=cursor)
        seen += [e.target for e in page]
    assert seen == [k.id for k in reversed(made)]
    for bad in ("x", "-1"):
        with pytest.raises(Invalid) as info:
            list_entries(store, actor, cursor=bad)
        assert info.value.field == "cursor"
    with pytest.raises(Invalid):
        list_entries(store, actor, limit=0)
