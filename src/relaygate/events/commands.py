"""``relaygate webhook …``: register endpoints, rotate their secrets, inspect and replay deliveries.

A plugin of ``relaygate.cli`` (``register(subparsers)``). Every command honours ``--json``.

Secrets: a webhook's secret is printed by ``add`` (at creation), by ``rotate-secret`` (the new
one) and by ``show --reveal``; never otherwise, and ``list`` never carries it.

Registration checks the URL with ``ssrf.validate_url`` and, for a host name, resolves it through
the configured resolver (``[dns] nameservers``) and refuses it when any address is forbidden.
``[webhooks] allow_private`` admits http and private/loopback targets (development). A DNS
failure at this point is only a warning (the name may not be published yet): every send checks
the addresses again, so a name that later resolves to a forbidden address is refused then.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from relaygate.cli import CliError, load_settings, out
from relaygate.clock import iso
from relaygate.dnsresolver import make_resolver
from relaygate.errors import DeliveryDeferred
from relaygate.events.signing import new_secret
from relaygate.events.ssrf import UnsafeTarget, resolve_and_check, validate_url
from relaygate.settings import Settings
from relaygate.store.spool import Store
from relaygate.store.webhooks import (
    WEBHOOK_EVENT_TYPES,
    Attempt,
    Delivery,
    Webhook,
    WebhookStore,
    delivery_ref,
    parse_delivery_ref,
)

DEFAULT_GRACE = 24 * 3600.0


def _open(args: argparse.Namespace) -> tuple[Settings, WebhookStore]:
    s = load_settings(args)
    if not s.database.exists():
        raise CliError(
            f"{s.database}: no store yet (run `relaygate --config {args.config} init`)", 2
        )
    return s, WebhookStore(Store(s.database).open())


def _webhook(hooks: WebhookStore, webhook_id: str) -> Webhook:
    found = hooks.get(webhook_id)
    if found is None:
        raise CliError(f"no webhook {webhook_id}")
    return found


def _when(ts: float | None) -> str:
    return iso(ts) if ts is not None else "-"


def _hook_data(w: Webhook) -> dict[str, Any]:
    return {
        "id": w.id,
        "account_id": w.account_id,
        "url": w.url,
        "events": list(w.events) or list(WEBHOOK_EVENT_TYPES),
        "created_at": w.created_at,
        "removed": w.removed_at is not None,
        "previous_secret_expires_at": w.previous_secret_expires_at,
    }


def _delivery_data(d: Delivery) -> dict[str, Any]:
    return {
        "id": delivery_ref(d.id),
        "webhook_id": d.webhook_id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "message_id": d.message_id,
        "state": d.state,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "replays": d.replays,
    }


def _attempt_data(a: Attempt) -> dict[str, Any]:
    return {
        "delivery_id": delivery_ref(a.delivery_id),
        "attempt": a.attempt,
        "at": a.at,
        "status": a.status,
        "outcome": a.outcome,
        "error": a.error,
        "duration_ms": a.duration_ms,
    }


def check_target(url: str, settings: Settings) -> tuple[str, list[str]]:
    """The normalised URL and any warnings; raises CliError when the target is refused."""
    private = settings.webhooks.allow_private
    try:
        target = validate_url(url, allow_private=private, allow_http=private)
    except UnsafeTarget as exc:
        raise CliError(f"refused webhook URL: {exc.reason}") from None
    warnings: list[str] = []
    if target.ip is None:
        try:
            asyncio.run(
                resolve_and_check(target.host, make_resolver(settings), allow_private=private)
            )
        except UnsafeTarget as exc:
            raise CliError(f"refused webhook URL: {exc.reason}") from None
        except DeliveryDeferred as exc:
            warnings.append(
                f"could not check {target.host} now ({exc}); it is checked at every send"
            )
    return target.url, warnings


# -- commands -------------------------------------------------------------------------------------
def cmd_add(args: argparse.Namespace) -> int:
    s, hooks = _open(args)
    if hooks.store.get_account(args.account) is None:
        raise CliError(f"no account {args.account}")
    url, warnings = check_target(args.url, s)
    secret = new_secret()
    w = hooks.create(account_id=args.account, url=url, events=args.event or (), secret=secret)
    data = {**_hook_data(w), "secret": secret, "warnings": warnings}

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
    _, hooks = _open(args)
    rows = [
        _hook_data(w)
        for w in hooks.list_webhooks(account_id=args.account, include_removed=args.all)
    ]
    out(
        args,
        rows,
        lambda: _table(
            ["id", "account", "url", "events", "removed"],
            [
                [r["id"], r["account_id"], r["url"], " ".join(r["events"]), r["removed"]]
                for r in rows
            ],
        ),
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    _, hooks = _open(args)
    w = _webhook(hooks, args.id)
    data = {**_hook_data(w), "deliveries": hooks.counts(w.id)}
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
            lines.append(f"previous secret valid until {_when(w.previous_secret_expires_at)}")
        if args.reveal:
            lines.append(f"secret: {data['secret']}")
        return "\n".join(lines)

    out(args, data, human)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    _, hooks = _open(args)
    _webhook(hooks, args.id)
    removed = hooks.remove(args.id)
    out(
        args,
        {"id": args.id, "removed": True},
        f"webhook {args.id} {'removed' if removed else 'was already removed'}",
    )
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    _, hooks = _open(args)
    _webhook(hooks, args.id)
    if args.grace < 0:
        raise CliError("--grace must be >= 0 seconds")
    secret = new_secret()
    w = hooks.rotate_secret(args.id, new_secret=secret, grace=args.grace)
    if w is None:
        raise CliError(f"webhook {args.id} is removed")
    data = {
        "id": w.id,
        "secret": secret,
        "previous_secret_expires_at": w.previous_secret_expires_at,
    }
    out(
        args,
        data,
        lambda: (
            f"webhook {w.id}: new secret {secret}\n"
            + (
                f"the previous secret also signs until {_when(w.previous_secret_expires_at)}"
                if w.previous_secret_expires_at
                else "the previous secret no longer signs"
            )
        ),
    )
    return 0


def cmd_attempts(args: argparse.Namespace) -> int:
    _, hooks = _open(args)
    delivery_id = parse_delivery_ref(args.id)
    if delivery_id is not None:
        d = hooks.delivery(delivery_id)
        if d is None:
            raise CliError(f"no webhook delivery {args.id}")
        attempts = hooks.attempts(delivery_id)
        data: Any = {
            "delivery": _delivery_data(d),
            "attempts": [_attempt_data(a) for a in attempts],
        }
        header = (
            f"delivery {delivery_ref(d.id)} of event {d.event_id} ({d.event_type}) to {d.webhook_id}: "
            f"{d.state}, {d.attempts} attempt(s)"
            + (f", next at {_when(d.next_attempt_at)}" if d.state == "pending" else "")
        )
    else:
        _webhook(hooks, args.id)
        attempts = hooks.recent_attempts(args.id, limit=args.limit)
        data = [_attempt_data(a) for a in attempts]
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
            + _table(["delivery", "attempt", "at", "status", "outcome", "ms", "error"], rows)
        ),
    )
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    _, hooks = _open(args)
    if args.abandoned:
        if args.delivery_id:
            raise CliError("give either a DELIVERY_ID or --abandoned, not both")
        if args.webhook:
            _webhook(hooks, args.webhook)
        count = hooks.replay_abandoned(webhook_id=args.webhook)
        out(args, {"replayed": count}, f"{count} abandoned deliveries are due again")
        return 0
    if args.webhook:
        raise CliError("--webhook goes with --abandoned")
    if not args.delivery_id:
        raise CliError("give a DELIVERY_ID or --abandoned")
    delivery_id = parse_delivery_ref(args.delivery_id)
    d = hooks.delivery(delivery_id) if delivery_id is not None else None
    if d is None or delivery_id is None:
        raise CliError(f"no webhook delivery {args.delivery_id}")
    if not hooks.replay(delivery_id):
        raise CliError(
            f"delivery {delivery_ref(delivery_id)} is {d.state}"
            + (" (its webhook is removed)" if d.state in ("succeeded", "abandoned") else "")
            + "; only finished deliveries of live webhooks are replayed"
        )
    out(
        args,
        {"replayed": 1, "id": delivery_ref(delivery_id)},
        f"delivery {delivery_ref(delivery_id)} is due again",
    )
    return 0


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


# -- parser ---------------------------------------------------------------------------------------
def register(subparsers: Any) -> None:
    from relaygate.cli import add_command as add

    hook = subparsers.add_parser("webhook", help="webhook endpoints and deliveries")
    sub = hook.add_subparsers(dest="sub", required=True)
    sp = add(sub, "add", cmd_add, "register an endpoint (its secret is shown)")
    sp.add_argument("--account", type=int, required=True)
    sp.add_argument(
        "--event", action="append", choices=WEBHOOK_EVENT_TYPES, help="repeatable; default all"
    )
    sp.add_argument("url")
    sp = add(sub, "list", cmd_list, "list endpoints (never their secrets)")
    sp.add_argument("--account", type=int)
    sp.add_argument("--all", action="store_true", help="include removed endpoints")
    sp = add(sub, "show", cmd_show, "an endpoint and its delivery counts")
    sp.add_argument("id")
    sp.add_argument("--reveal", action="store_true", help="print the secret")
    sp = add(sub, "remove", cmd_remove, "stop an endpoint (its pending deliveries are abandoned)")
    sp.add_argument("id")
    sp = add(
        sub, "rotate-secret", cmd_rotate, "new secret; the old one signs too for --grace seconds"
    )
    sp.add_argument("id")
    sp.add_argument("--grace", type=float, default=DEFAULT_GRACE, help="seconds (default 86400)")
    sp = add(sub, "attempts", cmd_attempts, "attempts of a delivery (whd_N) or of a webhook (wh_…)")
    sp.add_argument("id")
    sp.add_argument("--limit", type=int, default=50)
    sp = add(sub, "replay", cmd_replay, "send a finished delivery again, or every abandoned one")
    sp.add_argument("delivery_id", nargs="?")
    sp.add_argument("--abandoned", action="store_true")
    sp.add_argument("--webhook", help="with --abandoned: only this webhook's")
