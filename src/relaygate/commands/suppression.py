"""``relaygate suppression list|add|remove|import|export``: the per-account suppression list.

The actions are ``relaygate.bounces.suppressions``'s; this module reads files and prints.
"""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any

from relaygate.bounces import suppressions
from relaygate.commands.common import Handler, add_command, add_noun, open_store, out


def _add(parent: Any, name: str, func: Handler, help_: str) -> argparse.ArgumentParser:
    sp = add_command(parent, name, func, help_)
    sp.add_argument("--account", type=int, required=name not in ("list", "export"))
    return sp


def cmd_list(args: argparse.Namespace) -> int:
    rows = [
        suppressions.present(r)
        for r in open_store(args).suppressions.all(args.account, limit=args.limit)
    ]
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
    address = suppressions.add(
        open_store(args),
        args.account,
        args.address,
        reason=args.reason,
        expires_in=args.expires_in,
    )
    out(
        args,
        {"account_id": args.account, "address": address, "suppressed": True},
        f"{address} suppressed for account {args.account}",
    )
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    address = suppressions.remove(open_store(args), args.account, args.address)
    out(
        args,
        {"account_id": args.account, "address": address, "suppressed": False},
        f"{address} removed",
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    store = open_store(args)
    handle = sys.stdin if args.file == "-" else open(args.file, newline="", encoding="utf-8")  # noqa: SIM115
    with handle:
        result = suppressions.import_csv(store, args.account, handle)
    out(
        args,
        {"account_id": args.account, "imported": result.added, "problems": list(result.problems)},
        lambda: (
            f"imported {result.added} address(es)"
            + "".join(f"\n  skipped {p}" for p in result.problems)
        ),
    )
    return 0 if not result.problems else 1


def cmd_export(args: argparse.Namespace) -> int:
    writer = csv.writer(sys.stdout)
    writer.writerow(suppressions.EXPORT_COLUMNS)
    writer.writerows(suppressions.export_rows(open_store(args), args.account))
    return 0


def register(sub: Any) -> None:
    sup = add_noun(sub, "suppression", "the suppression list")
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
