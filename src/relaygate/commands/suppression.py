"""``relaygate suppression list|add|remove|import|export``: the per-account suppression list.

add, remove and import are ``relaygate.manage.suppressions``' actions (the management API's
too); this module reads files and prints.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

from relaygate.bounces import suppressions
from relaygate.commands.common import (
    CliError,
    Handler,
    add_account,
    add_command,
    add_noun,
    open_store,
    out,
    table,
)
from relaygate.errors import RequestError
from relaygate.manage import Actor
from relaygate.manage.suppressions import (
    add_suppression,
    import_suppressions,
    remove_suppression,
)


def _add(parent: Any, name: str, func: Handler, help_: str) -> argparse.ArgumentParser:
    sp = add_command(parent, name, func, help_)
    add_account(sp, required=name not in ("list", "export"))
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
            table(
                ["account", "address", "reason", "source", "created", "expires"],
                [
                    [
                        r["account_id"],
                        r["address"],
                        r["reason"],
                        r["source"],
                        r["created_at"],
                        r["expires_at"] or "never",
                    ]
                    for r in rows
                ],
            )
            if rows
            else "no suppressed addresses"
        ),
    )
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    store = open_store(args)
    address = add_suppression(
        store, Actor.cli(args.account), args.address, args.reason, expires_in=args.expires_in
    )
    out(
        args,
        {"account_id": args.account, "address": address, "suppressed": True},
        f"{address} suppressed for account {args.account}",
    )
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    store = open_store(args)
    address = remove_suppression(store, Actor.cli(args.account), args.address)
    out(
        args,
        {"account_id": args.account, "address": address, "suppressed": False},
        f"{address} removed",
    )
    return 0


def _read(path: str) -> bytes:
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or type(exc).__name__}") from None
    try:
        suppressions.decode_csv(raw)
    except RequestError as exc:
        raise CliError(f"{path}: {exc.detail}") from None
    return raw


def cmd_import(args: argparse.Namespace) -> int:
    raw = _read(args.file)
    store = open_store(args)
    result = import_suppressions(store, Actor.cli(args.account), raw)
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
