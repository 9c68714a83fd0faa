"""``relaygate webhook …``: register endpoints, rotate their secrets, inspect and replay deliveries.

The actions are ``relaygate.events.endpoints``'s (``add`` goes through ``relaygate.manage.webhooks``,
as the management API does); this module parses and prints.

Secrets: a webhook's secret is printed by ``add`` (at creation), by ``rotate-secret`` (the new
one) and by ``show --reveal``; never otherwise, and ``list`` never carries it.
"""

from __future__ import annotations

import argparse
from typing import Any

from relaygate.clock import iso, iso_or_none
from relaygate.commands.common import (
    CliError,
    add_account,
    add_command,
    add_noun,
    load_settings,
    open_store,
    out,
    table,
)
from relaygate.events import endpoints
from relaygate.manage import Actor
from relaygate.manage.webhooks import create_webhook
from relaygate.settings import Settings
from relaygate.store import Store
from relaygate.store.ids import delivery_ref, parse_delivery_ref
from relaygate.store.states import WEBHOOK_EVENT_TYPES


def _open(args: argparse.Namespace) -> tuple[Settings, Store]:
    s = load_settings(args)
    return s, open_store(args, s)


def _when(ts: float | None) -> str:
    return iso(ts) if ts is not None else "-"


# -- commands -------------------------------------------------------------------------------------
def cmd_add(args: argparse.Namespace) -> int:
    s, store = _open(args)
    new = create_webhook(store, s, Actor.cli(args.account), args.url, args.event or [])
    w, secret, warnings = new.webhook, new.secret, list(new.warnings)
    data = {**endpoints.webhook_dict(w), "secret": secret, "warnings": warnings}

    def human() -> str:
        lines = [
            f"webhook {w.id} for account {w.account_id}: {w.url}",
            f"events: {' '.join(data['events'])}",
            f"secret: {secret}",
            "(shown now and by `webhook show --reveal`)",
        ]
        return "\n".join(lines + [f"warning: {x}" for x in warnings])

    out(args, data, human)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    _, store = _open(args)
    hooks = store.webhooks
    rows = [
        endpoints.webhook_dict(w)
        for w in hooks.all(account_id=args.account, include_removed=args.all)
    ]
    out(
        args,
        rows,
        lambda: table(
            ["id", "account", "url", "events", "removed"],
            [
                [r["id"], r["account_id"], r["url"], " ".join(r["events"]), r["removed"]]
                for r in rows
            ],
        ),
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    _, store = _open(args)
    hooks = store.webhooks
    w = endpoints.get(store, args.id)
    data = {**endpoints.webhook_dict(w), "deliveries": hooks.counts(w.id)}
    if args.reveal:
        data["secret"] = hooks.reveal_secret(w.id)

    def human() -> str:
        lines = [
            f"webhook {w.id} (account {w.account_id}){' REMOVED' if w.removed_at else ''}",
            f"url: {w.url}",
            f"events: {' '.join(data['events'])}",
            f"created: {_when(w.created_at)}",
            "deliveries: " + ", ".join(f"{k} {v}" for k, v in data["deliveries"].items()),
        ]
        if w.previous_secret_expires_at:
            lines.append(
                f"previous secret: makes X-SM-Signature until {_when(w.previous_secret_expires_at)}"
            )
        if args.reveal:
            lines.append(f"secret: {data['secret']}")
        return "\n".join(lines)

    out(args, data, human)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    _, store = _open(args)
    hooks = store.webhooks
    endpoints.get(store, args.id)
    removed = hooks.remove(args.id)
    out(
        args,
        {"id": args.id, "removed": True},
        f"webhook {args.id} {'removed' if removed else 'was already removed'}",
    )
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    _, store = _open(args)
    w, secret = endpoints.rotate_secret(store, args.id, grace=args.grace)
    until = w.previous_secret_expires_at
    data = {
        "id": w.id,
        "secret": secret,
        "previous_secret_expires_at": iso_or_none(until),
    }

    def human() -> str:
        if until is None:
            return (
                f"webhook {w.id}: new secret {secret}\n"
                "the previous secret no longer signs: every signature header uses the new one"
            )
        return (
            f"webhook {w.id}: new secret {secret}\n"
            f"until {iso(until)} X-SM-Signature is still made with the previous secret, and"
            " X-SM-Signature-V2 / webhook-signature carry one signature per secret;\n"
            f"from {iso(until)} every header uses the new secret only. A receiver that checks"
            " X-SM-Signature with one secret switches to the new one then (or accepts both"
            " until then)."
        )

    out(args, data, human)
    return 0


def cmd_attempts(args: argparse.Namespace) -> int:
    _, store = _open(args)
    hooks = store.webhooks
    delivery_id = parse_delivery_ref(args.id)
    if delivery_id is not None:
        d = hooks.delivery(delivery_id)
        if d is None:
            raise CliError(f"no webhook delivery {args.id}")
        attempts = hooks.attempts(delivery_id)
        data: Any = {
            "delivery": endpoints.delivery_dict(d),
            "attempts": [endpoints.attempt_dict(a) for a in attempts],
        }
        header = (
            f"delivery {delivery_ref(d.id)} of event {d.event_id} ({d.event_type}) to {d.webhook_id}: "
            f"{d.state}, {d.attempts} attempt(s)"
            + (f", next at {_when(d.next_attempt_at)}" if d.state == "pending" else "")
        )
    else:
        endpoints.get(store, args.id)
        attempts = hooks.recent_attempts(args.id, limit=args.limit)
        data = [endpoints.attempt_dict(a) for a in attempts]
        header = f"recent attempts of webhook {args.id}"
    rows = [
        [
            delivery_ref(a.delivery_id),
            a.attempt,
            _when(a.at),
            a.status or "-",
            a.outcome,
            a.duration_ms,
            a.error,
        ]
        for a in attempts
    ]
    out(
        args,
        data,
        lambda: (
            header
            + "\n"
            + table(["delivery", "attempt", "at", "status", "outcome", "ms", "error"], rows)
        ),
    )
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    _, store = _open(args)
    if args.abandoned:
        if args.delivery_id:
            raise CliError("give either a DELIVERY_ID or --abandoned, not both")
        count = endpoints.replay_abandoned(store, webhook_id=args.webhook)
        out(args, {"replayed": count}, f"{count} abandoned deliveries are due again")
        return 0
    if args.webhook:
        raise CliError("--webhook goes with --abandoned")
    if not args.delivery_id:
        raise CliError("give a DELIVERY_ID or --abandoned")
    delivery_id = parse_delivery_ref(args.delivery_id)
    if delivery_id is None:
        raise CliError(f"no webhook delivery {args.delivery_id}")
    endpoints.replay(store, delivery_id)
    out(
        args,
        {"replayed": 1, "id": delivery_ref(delivery_id)},
        f"delivery {delivery_ref(delivery_id)} is due again",
    )
    return 0


# -- parser ---------------------------------------------------------------------------------------
def register(sub: Any) -> None:
    hook = add_noun(sub, "webhook", "webhook endpoints and deliveries")
    sp = add_command(hook, "add", cmd_add, "register an endpoint (its secret is shown)")
    add_account(sp, required=True)
    sp.add_argument(
        "--event", action="append", choices=WEBHOOK_EVENT_TYPES, help="repeatable; default all"
    )
    sp.add_argument("url")
    sp = add_command(hook, "list", cmd_list, "list endpoints (never their secrets)")
    add_account(sp, required=False)
    sp.add_argument("--all", action="store_true", help="include removed endpoints")
    sp = add_command(hook, "show", cmd_show, "an endpoint and its delivery counts")
    sp.add_argument("id")
    sp.add_argument("--reveal", action="store_true", help="print the secret")
    sp = add_command(
        hook, "remove", cmd_remove, "stop an endpoint (its pending deliveries are abandoned)"
    )
    sp.add_argument("id")
    sp = add_command(
        hook,
        "rotate-secret",
        cmd_rotate,
        "new secret; X-SM-Signature stays on the old one for --grace seconds",
    )
    sp.add_argument("id")
    sp.add_argument(
        "--grace", type=float, default=endpoints.DEFAULT_GRACE, help="seconds (default 86400)"
    )
    sp = add_command(
        hook, "attempts", cmd_attempts, "attempts of a delivery (whd_N) or of a webhook (wh_…)"
    )
    sp.add_argument("id")
    sp.add_argument("--limit", type=int, default=50)
    sp = add_command(
        hook, "replay", cmd_replay, "send a finished delivery again, or every abandoned one"
    )
    sp.add_argument("delivery_id", nargs="?")
    sp.add_argument("--abandoned", action="store_true")
    sp.add_argument("--webhook", help="with --abandoned: only this webhook's")
