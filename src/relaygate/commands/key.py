"""``relaygate key create|list|revoke``: API keys, through ``relaygate.manage.keys`` (the same
actions as the management API). A secret is shown once, at creation; the store keeps its hash."""

from __future__ import annotations

import argparse
from typing import Any

from relaygate.commands.common import (
    CliError,
    add_account,
    add_command,
    add_noun,
    open_store,
    out,
    table,
)
from relaygate.manage import Actor
from relaygate.manage.keys import create_key, key_json, list_keys, revoke_key
from relaygate.policy import SCOPES


def cmd_create(args: argparse.Namespace) -> int:
    store = open_store(args)
    key, secret = create_key(
        store, Actor.cli(args.account), name=args.name or "", scopes=args.scope or ["email:send"]
    )
    out(
        args,
        {**key_json(key), "key": secret},
        f"key {key.id} for account {key.account_id} ({' '.join(key.scopes)}):\n{secret}\n(shown once: store it now)",
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = open_store(args)
    accounts = [args.account] if args.account is not None else [a.id for a in store.accounts.all()]
    keys = [k for account in accounts for k in list_keys(store, Actor.cli(account))]
    data: list[dict[str, Any]] = [key_json(k) for k in keys]
    out(
        args,
        data,
        lambda: table(
            ["id", "account", "name", "scopes", "hint", "revoked"],
            [
                [
                    d["id"],
                    d["account_id"],
                    d["name"],
                    " ".join(d["scopes"]),
                    d["hint"],
                    d["revoked"],
                ]
                for d in data
            ],
        ),
    )
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    store = open_store(args)
    found = store.keys.get(args.id)
    if found is None:
        raise CliError(f"no key {args.id}")
    revoke_key(store, Actor.cli(found.account_id), args.id)
    out(args, {"id": args.id, "revoked": True}, f"key {args.id} revoked")
    return 0


def register(sub: Any) -> None:
    key = add_noun(sub, "key", "API keys")
    sp = add_command(key, "create", cmd_create, "create a key (the secret is shown once)")
    add_account(sp, required=True)
    sp.add_argument(
        "--scope",
        action="append",
        choices=SCOPES,
        help="email:send (default), email:read, account:admin (the management API); repeatable",
    )
    sp.add_argument("--name")
    sp = add_command(key, "list", cmd_list, "list keys (never their secrets)")
    add_account(sp, required=False)
    sp = add_command(key, "revoke", cmd_revoke, "revoke a key")
    sp.add_argument("id")
