"""``relaygate key create|list|revoke``: API keys. A secret is shown once, at creation; the store keeps its hash."""

from __future__ import annotations

import argparse
from typing import Any

from relaygate.clock import iso
from relaygate.commands.common import (
    CliError,
    add_account,
    add_command,
    add_noun,
    open_store,
    out,
    table,
)
from relaygate.policy import SCOPES


def cmd_create(args: argparse.Namespace) -> int:
    store = open_store(args)
    key, secret = store.keys.create(
        args.account, scopes=args.scope or ["email:send"], name=args.name or ""
    )
    out(
        args,
        {
            "id": key.id,
            "key": secret,
            "account_id": key.account_id,
            "scopes": list(key.scopes),
            "name": key.name,
        },
        f"key {key.id} for account {key.account_id} ({' '.join(key.scopes)}):\n{secret}\n(shown once: store it now)",
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = open_store(args)
    keys = store.keys.all(args.account)
    data: list[dict[str, Any]] = [
        {
            "id": k.id,
            "account_id": k.account_id,
            "name": k.name,
            "scopes": list(k.scopes),
            "hint": k.hint,
            "created_at": iso(k.created_at),
            "revoked": k.revoked_at is not None,
        }
        for k in keys
    ]
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
    if not store.keys.revoke(args.id) and store.keys.get(args.id) is None:
        raise CliError(f"no key {args.id}")
    out(args, {"id": args.id, "revoked": True}, f"key {args.id} revoked")
    return 0


def register(sub: Any) -> None:
    key = add_noun(sub, "key", "API keys")
    sp = add_command(key, "create", cmd_create, "create a key (the secret is shown once)")
    add_account(sp, required=True)
    sp.add_argument("--scope", action="append", choices=SCOPES)
    sp.add_argument("--name")
    sp = add_command(key, "list", cmd_list, "list keys (never their secrets)")
    add_account(sp, required=False)
    sp = add_command(key, "revoke", cmd_revoke, "revoke a key")
    sp.add_argument("id")
