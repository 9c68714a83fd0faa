"""``relaygate inbound list|show``: the bounce and complaint reports received.

The command-line face of the ``inbound`` table: every DSN and feedback report received,
newest first, with what became of it (applied, ignored, unmatched and why, failed), who sent it
and the account it counts for (only where a verified VERP token named the message);
``--counts`` gives the number per account and status instead. ``show`` writes one report's bytes
as received (until retention drops them), e.g. for ``relaygate bounce parse /dev/stdin``.
Read-only. Times in ``--json`` are ISO 8601 UTC with a Z.
"""

from __future__ import annotations

import argparse
import sys
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
from relaygate.store.models import InboundReport

_MAX_LIMIT = 10_000
STATUSES = ("pending", "applied", "ignored", "unmatched", "failed")


def register(sub: Any) -> None:
    actions = add_noun(sub, "inbound", "bounce and complaint reports received")
    sp = add_command(actions, "list", cmd_list, "list received reports and what became of each")
    sp.add_argument(
        "--status",
        action="append",
        choices=STATUSES,
        help="only reports with this outcome (repeatable; default: all)",
    )
    add_account(sp, required=False)
    sp.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    sp.add_argument(
        "--counts", action="store_true", help="the number of reports per account and status"
    )
    sp = add_command(actions, "show", cmd_show, "write one report as it was received")
    sp.add_argument("id", help="the report's in_ id")


def _as_dict(row: InboundReport) -> dict[str, Any]:
    return {
        "id": row.id,
        "received_at": iso(row.received_at),
        "peer": row.peer,
        "mail_from": row.mail_from,
        "rcpts": list(row.rcpts),
        "size": row.size,
        "kind": row.kind or None,
        "status": row.status,
        "reason": row.reason or None,
        "account_id": row.account_id,
        "message_id": row.message_id,
        "recipient_id": row.recipient_id,
        "processed_at": iso(row.processed_at) if row.processed_at is not None else None,
        "bytes_kept": not row.purged,
    }


def cmd_list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= _MAX_LIMIT:
        raise CliError(f"--limit must be between 1 and {_MAX_LIMIT}")
    store = open_store(args)
    try:
        if args.counts:
            counts = [
                {"account_id": account, "status": status, "count": n}
                for account, by_status in sorted(
                    store.inbound.counts().items(), key=lambda kv: (kv[0] is None, kv[0] or 0)
                )
                for status, n in sorted(by_status.items())
                if (args.account is None or account == args.account)
                and (not args.status or status in args.status)
            ]
            out(
                args,
                counts,
                lambda: table(
                    ["account", "status", "count"],
                    [
                        [
                            "-" if c["account_id"] is None else c["account_id"],
                            c["status"],
                            c["count"],
                        ]
                        for c in counts
                    ],
                ),
            )
            return 0
        rows = [
            _as_dict(r)
            for r in store.inbound.reports(
                statuses=args.status or (), account_id=args.account, limit=args.limit
            )
        ]
    finally:
        store.close()
    out(args, rows, lambda: _human(rows))
    return 0


def _human(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no inbound reports"
    return table(
        ["id", "received", "peer", "to", "kind", "status", "reason", "account", "size"],
        [
            [
                r["id"],
                r["received_at"],
                r["peer"],
                ",".join(r["rcpts"])[:60],
                r["kind"] or "-",
                r["status"],
                r["reason"] or "-",
                "-" if r["account_id"] is None else r["account_id"],
                f"{r['size']}" + ("" if r["bytes_kept"] else " (dropped)"),
            ]
            for r in rows
        ],
    )


def cmd_show(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        found = store.inbound.report(args.id)
    finally:
        store.close()
    if found is None:
        raise CliError(f"no inbound report {args.id}")
    row, data = found
    if row.purged:
        raise CliError(f"{args.id}: its bytes were dropped by retention (bounces.report_retention)")
    if args.json:
        out(args, {**_as_dict(row), "data": data.decode("utf-8", "replace")}, "")
        return 0
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return 0
