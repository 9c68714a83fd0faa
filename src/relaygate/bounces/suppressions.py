"""``relaygate suppression list|add|remove|import|export``: the per-account suppression list.

Hard bounces and complaints add addresses automatically; operators add, remove and move them
in bulk as CSV (``address,reason`` with a header row; export adds source and created_at).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from typing import Any

from relaygate.cli import CliError, add_command, open_store, out
from relaygate.clock import iso
from relaygate.compose.addresses import AddressError, parse_mailbox


def _add(
    parent: Any, name: str, func: Callable[[argparse.Namespace], int], help_: str
) -> argparse.ArgumentParser:
    sp = add_command(parent, name, func, help_)
    sp.add_argument("--account", type=int, required=name not in ("list", "export"))
    return sp


def _address(value: str) -> str:
    try:
        return parse_mailbox(value).addr_spec.lower()
    except AddressError as exc:
        raise CliError(str(exc)) from None


def _present(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_id": row["account_id"],
        "address": row["address"],
        "reason": row["reason"],
        "bounce_type": row["bounce_type"],
        "source": row["source"],
        "created_at": iso(row["created_at"]),
        "expires_at": iso(row["expires_at"]) if row["expires_at"] else None,
    }


def cmd_list(args: argparse.Namespace) -> int:
    rows = [_present(r) for r in open_store(args).list_suppressions(args.account, limit=args.limit)]
    out(
        args,
        rows,
        lambda: (
            "\n".join(
                f"{r['account_id']:>4}  {r['address']:40} {r['reason']:14} {r['source']:10} {r['created_at']}"
                for r in rows
            )
            or "no suppressed addresses"
        ),
    )
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    store = open_store(args)
    address = _address(args.address)
    expires = store.clock.now() + args.expires_in if args.expires_in else None
    store.suppress(
        args.account,
        address,
        reason=args.reason,
        source="operator",
        bounce_type="hard",
        expires_at=expires,
    )
    out(
        args,
        {"account_id": args.account, "address": address, "suppressed": True},
        f"{address} suppressed for account {args.account}",
    )
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    store = open_store(args)
    address = _address(args.address)
    if not store.unsuppress(args.account, address):
        raise CliError(f"{address} is not on account {args.account}'s suppression list")
    out(
        args,
        {"account_id": args.account, "address": address, "suppressed": False},
        f"{address} removed",
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    store = open_store(args)
    handle = sys.stdin if args.file == "-" else open(args.file, newline="", encoding="utf-8")  # noqa: SIM115
    added, problems = 0, []
    with handle:
        for lineno, row in enumerate(csv.reader(handle), start=1):
            if not row or (lineno == 1 and row[0].strip().lower() == "address"):
                continue
            try:
                address = parse_mailbox(row[0].strip()).addr_spec.lower()
            except AddressError as exc:
                problems.append(f"line {lineno}: {exc}")
                continue
            reason = row[1].strip() if len(row) > 1 and row[1].strip() else "imported"
            store.suppress(args.account, address, reason=reason, source="import")
            added += 1
    out(
        args,
        {"account_id": args.account, "imported": added, "problems": problems},
        lambda: f"imported {added} address(es)" + "".join(f"\n  skipped {p}" for p in problems),
    )
    return 0 if not problems else 1


def cmd_export(args: argparse.Namespace) -> int:
    rows = open_store(args).list_suppressions(args.account, limit=10_000_000)
    writer = csv.writer(sys.stdout)
    writer.writerow(["address", "reason", "account_id", "bounce_type", "source", "created_at"])
    for r in rows:
        writer.writerow(
            [
                r["address"],
                r["reason"],
                r["account_id"],
                r["bounce_type"],
                r["source"],
                iso(r["created_at"]),
            ]
        )
    return 0


def register(sub: Any) -> None:
    sup = sub.add_parser("suppression", help="the suppression list").add_subparsers(
        dest="sub", required=True
    )
    sp = _add(sup, "list", cmd_list, "list suppressed addresses")
    sp.add_argument("--limit", type=int, default=1000)
    sp = _add(sup, "add", cmd_add, "suppress an address")
    sp.add_argument("address")
    sp.add_argument("--reason", default="manual")
    sp.add_argument(
        "--expires-in", type=int, default=0, help="seconds until the entry lapses (default: never)"
    )
    sp = _add(sup, "remove", cmd_remove, "remove an address")
    sp.add_argument("address")
    sp = _add(
        sup, "import", cmd_import, "import addresses from CSV (address[,reason]); - reads stdin"
    )
    sp.add_argument("file")
    _add(sup, "export", cmd_export, "export the list as CSV")
