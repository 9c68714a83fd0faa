"""``relaygate account create|list|set``: accounts, their plan, daily quota, rate limit and tracking."""

from __future__ import annotations

import argparse
from typing import Any

from relaygate.clock import iso
from relaygate.commands.common import add_account, add_command, add_noun, open_store, out, table
from relaygate.policy import PLANS
from relaygate.store.models import Account


def account_data(a: Account) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "plan": a.plan,
        "daily_quota": a.daily_quota,
        "rate_limit": a.rate_limit,
        "track_opens": bool(a.track_opens),
        "track_clicks": bool(a.track_clicks),
        "created_at": iso(a.created_at),
    }


def cmd_create(args: argparse.Namespace) -> int:
    store = open_store(args)
    a = store.accounts.create(
        args.name, plan=args.plan, daily_quota=args.daily_quota, rate_limit=args.rate_limit
    )
    out(args, account_data(a), f"account {a.id} ({a.name}, {a.plan}) created")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = open_store(args)
    rows = store.accounts.all()
    out(
        args,
        [account_data(a) for a in rows],
        lambda: table(
            ["id", "name", "plan", "daily_quota", "rate_limit"],
            [[a.id, a.name, a.plan, a.daily_quota, a.rate_limit] for a in rows],
        ),
    )
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    store = open_store(args)
    fields: dict[str, Any] = {}
    for name in ("plan", "daily_quota", "rate_limit", "track_opens", "track_clicks"):
        value = getattr(args, name, None)
        if value is not None:
            fields[name] = int(value) if isinstance(value, bool) else value
    a = store.accounts.update(args.account, **fields)
    out(args, account_data(a), f"account {a.id} updated")
    return 0


def register(sub: Any) -> None:
    acc = add_noun(sub, "account", "accounts")
    sp = add_command(acc, "create", cmd_create, "create an account")
    sp.add_argument("name")
    sp.add_argument("--plan", default="trial", choices=PLANS)
    sp.add_argument("--daily-quota", type=int, default=10_000)
    sp.add_argument("--rate-limit", type=int, default=100)
    add_command(acc, "list", cmd_list, "list accounts")
    sp = add_command(acc, "set", cmd_set, "change an account")
    add_account(sp, required=True, flag="account")
    sp.add_argument("--plan", choices=PLANS)
    sp.add_argument("--daily-quota", type=int)
    sp.add_argument("--rate-limit", type=int)
    sp.add_argument("--track-opens", action=argparse.BooleanOptionalAction, default=None)
    sp.add_argument("--track-clicks", action=argparse.BooleanOptionalAction, default=None)
