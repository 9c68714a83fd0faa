"""``relaygate queue list|show|retry|hold|release|delete``: look at and act on the delivery queue."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from relaygate.clock import iso
from relaygate.commands.common import CliError, Handler, add_command, add_noun, open_store, out
from relaygate.relay import queue_actions


def cmd_list(args: argparse.Namespace) -> int:
    store = open_store(args)
    rows = store.queue.entries(state=args.state, domain=args.domain, limit=args.limit)
    data = [
        {
            "recipient_id": r.id,
            "message_id": r.message_id,
            "address": r.address,
            "domain": r.domain,
            "state": r.state,
            "attempts": r.attempts,
            "queued_at": iso(r.queued_at),
            "next_attempt_at": iso(r.next_attempt_at),
            "last_response": r.last_response,
        }
        for r in rows
    ]

    def human() -> str:
        if not data:
            return "queue is empty"
        lines = [f"{'RCPT':>8}  {'MESSAGE':36}  {'STATE':9} {'TRIES':>5}  {'NEXT':20}  RECIPIENT"]
        for d in data:
            lines.append(
                f"{d['recipient_id']:>8}  {d['message_id']:36}  {d['state']:9} {d['attempts']:>5}  {d['next_attempt_at']:20}  {d['address']}"
            )
            if d["last_response"]:
                lines.append(f"{'':>8}  └ {str(d['last_response'])[:100]}")
        return "\n".join(lines)

    out(args, data, human)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = open_store(args)
    message_id: str | None = args.id
    if args.id.isdigit():  # a recipient id, as `queue list` shows them: its message
        message_id = store.messages.of_recipient(int(args.id))
    m = store.messages.get(message_id) if message_id else None
    if m is None:
        raise CliError(f"no message or recipient {args.id}")
    data = {
        "id": m["id"],
        "from": m["from"],
        "subject": m["subject"],
        "message_id": m["message_id"],
        "tags": m["tags"],
        "created_at": iso(m["created_at"]),
        "size": m["size"],
        "recipients": [
            {
                "recipient_id": r["id"],
                "address": r["address"],
                "state": r["state"],
                "attempts": r["attempts"],
                "last_response": r["last_response"],
                "events": [
                    {
                        "type": e.type,
                        "at": iso(e.created_at),
                        "from": e.state_from,
                        "to": e.state_to,
                        "data": e.data,
                    }
                    for e in r["events"]
                ],
            }
            for r in m["recipients"]
        ],
    }

    def human() -> str:
        lines = [
            f"{data['id']}  from {data['from']}  subject {data['subject']!r}  {data['size']} bytes  {data['created_at']}"
        ]
        for r in data["recipients"]:
            lines.append(f"  {r['address']}: {r['state']} after {r['attempts']} attempt(s)")
            for e in r["events"]:
                detail = e["data"].get("smtp_response") or e["data"].get("diagnostic") or ""
                lines.append(f"    {e['at']}  {e['type']:<14} {detail[:100]}")
        return "\n".join(lines)

    out(args, data, human)
    return 0


def _bulk(action: str) -> Handler:
    def run(args: argparse.Namespace) -> int:
        if not args.ids and not args.all and args.domain is None:
            raise CliError(f"queue {action}: name message or recipient ids, --domain D, or --all")
        store = open_store(args)
        bar = not args.json and sys.stderr.isatty()
        shown = False

        def progress(done: int, total: int) -> None:
            nonlocal shown
            if bar and total > 500:
                width = 40
                filled = int(width * done / max(1, total))
                sys.stderr.write(
                    f"\r{action} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
                )
                sys.stderr.flush()
                shown = True

        done = queue_actions.act(
            store, action, ids=args.ids, domain=args.domain, everything=args.all, progress=progress
        )
        if shown:
            sys.stderr.write("\n")
        states = " or ".join(queue_actions.ACTIONS[action])
        out(
            args,
            {"action": action, "matched": done.matched, "changed": done.changed},
            f"{action}: {done.changed} of {done.matched} recipient(s) changed"
            if done.matched
            else f"{action}: nothing to do, no {'named ' if args.ids else ''}recipient is {states}",
        )
        return 0

    return run


def register(sub: Any) -> None:
    queue = add_noun(sub, "queue", "the delivery queue")
    sp = add_command(queue, "list", cmd_list, "list queued, deferred and held recipients")
    sp.add_argument(
        "--state",
        choices=(
            "queued",
            "active",
            "deferred",
            "held",
            "delivered",
            "bounced",
            "expired",
            "suppressed",
        ),
    )
    sp.add_argument("--domain")
    sp.add_argument("--limit", type=int, default=100)
    sp = add_command(queue, "show", cmd_show, "one message with every attempt and event")
    sp.add_argument("id", help="a message id (msg_…) or a recipient id (its message)")
    for action, help_ in (
        ("retry", "make queued or deferred recipients due now"),
        ("hold", "hold queued or deferred recipients (not attempted until released)"),
        ("release", "release held recipients"),
        ("delete", "give up on recipients (recorded as bounced: deleted)"),
    ):
        sp = add_command(queue, action, _bulk(action), help_)
        sp.add_argument("ids", nargs="*", help="message ids (msg_…) or recipient ids")
        sp.add_argument("--all", action="store_true")
        sp.add_argument("--domain")
