"""API key actions: create (a key gets only scopes its creator holds, API.md §14), list
(never a secret), revoke."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from relaygate.clock import iso, iso_or_none
from relaygate.errors import NotFound
from relaygate.manage import fields
from relaygate.manage.actor import Actor
from relaygate.manage.audit import record
from relaygate.policy import check_grantable, check_scopes
from relaygate.store.api import Store
from relaygate.store.models import ApiKey

MAX_NAME = 200


def create_key(
    store: Store, actor: Actor, *, name: str = "", scopes: Iterable[str] = ("email:send",)
) -> tuple[ApiKey, str]:
    """A new key of the actor's account and its secret (shown once; only a hash is kept)."""
    actor.require()
    name = fields.text(name, "name", max_len=MAX_NAME)
    wanted = check_scopes(
        fields.strings(list(scopes) if isinstance(scopes, tuple) else scopes, "scopes")
    )
    check_grantable(actor.scopes, wanted)
    key, secret = store.keys.create(actor.account_id, scopes=wanted, name=name)
    record(store, actor, "key.create", key.id, {"name": name, "scopes": wanted})
    return key, secret


def list_keys(store: Store, actor: Actor) -> list[ApiKey]:
    """The account's keys (revoked ones too), oldest first."""
    actor.require()
    return store.keys.all(actor.account_id)


def get_key(store: Store, actor: Actor, key_id: str) -> ApiKey:
    """One key of the actor's account; ``NotFound`` for no such key or another account's."""
    actor.require()
    key = store.keys.get(key_id) if isinstance(key_id, str) and len(key_id) <= 100 else None
    if key is None or key.account_id != actor.account_id:
        raise NotFound(f"no key {key_id}")
    return key


def revoke_key(store: Store, actor: Actor, key_id: str) -> ApiKey:
    """Revoke a key (a 401 from the next request on); revoking a revoked key changes nothing."""
    get_key(store, actor, key_id)
    if store.keys.revoke(key_id):
        record(store, actor, "key.revoke", key_id)
    return get_key(store, actor, key_id)


def key_json(key: ApiKey) -> dict[str, Any]:
    """A key as the API and ``--json`` show it (never the secret)."""
    return {
        "id": key.id,
        "account_id": key.account_id,
        "name": key.name,
        "scopes": list(key.scopes),
        "hint": key.hint,
        "created_at": iso(key.created_at),
        "revoked": key.revoked_at is not None,
        "revoked_at": iso_or_none(key.revoked_at),
    }
