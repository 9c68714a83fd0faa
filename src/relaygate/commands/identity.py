"""``relaygate identity add|list|verify``: sender identities (addresses and domains).

A domain identity brings its DKIM key(s) and the DNS records to publish (``relaygate.domains``).
``verify`` exits 0 when the domain's records are found (verified, or asserted and published) and 1
otherwise (pending, at_risk, failed, asserted with records missing, or a temporary DNS failure),
after printing the report either way. ``list`` shows each identity's state and what the last check
found (for an asserted domain too).
"""

from __future__ import annotations

import argparse
from typing import Any

from relaygate import domains
from relaygate.clock import iso_or_none
from relaygate.commands.common import (
    add_account,
    add_command,
    add_noun,
    load_settings,
    open_store,
    out,
    table,
)
from relaygate.errors import RequestError
from relaygate.idn import address_key
from relaygate.manage import Actor
from relaygate.manage.domains import add_domain


def cmd_add(args: argparse.Namespace) -> int:
    if "@" not in args.identity:
        return _add_domain(args)
    try:
        address = address_key(args.identity)  # the one normaliser: A-label domain, lower case
    except ValueError as exc:
        raise RequestError(400, f"identity: {exc}") from None
    store = open_store(args)
    ident = store.identities.add(args.account, address, verified=args.verified)
    data = {
        "id": ident.id,
        "account_id": ident.account_id,
        "kind": ident.kind,
        "value": ident.value,
        "status": ident.status,
    }
    out(args, data, f"{ident.kind} {ident.value} for account {ident.account_id}: {ident.status}")
    return 0


def _add_domain(args: argparse.Namespace) -> int:
    """The domain, its DKIM key(s), the records to publish."""
    settings = load_settings(args)
    store = open_store(args, settings)
    setup = add_domain(
        store,
        settings,
        Actor.cli(args.account),
        args.identity,
        asserted=args.verified,
        ed25519=args.ed25519,
        selector=args.selector,
    )
    ident = setup.identity.identity

    def human() -> str:
        head = f"domain {ident.value} for account {ident.account_id}: {ident.status}"
        todo = (
            f"Publish these DNS records, then run `relaygate identity verify {ident.value}`:"
            if ident.status != "verified"
            else "DNS records for this domain (the periodic re-check expects them):"
        )
        return f"{head}\n{todo}\n\n{domains.render_records(setup.records)}"

    out(args, setup.as_dict(), human)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = open_store(args)
    rows = store.identities.details(args.account)
    data: list[dict[str, Any]] = [
        {
            "id": d.identity.id,
            "account_id": d.identity.account_id,
            "kind": d.identity.kind,
            "value": d.identity.value,
            "status": d.identity.status,
            "reason": d.status_reason,
            "last_checked_at": iso_or_none(d.last_checked_at),
        }
        for d in rows
    ]
    out(
        args,
        data,
        lambda: table(
            ["id", "account", "kind", "value", "status", "reason"],
            [
                [d["id"], d["account_id"], d["kind"], d["value"], d["status"], d["reason"]]
                for d in data
            ],
        ),
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    store = open_store(args, settings)
    report = domains.verify_sync(store, settings, args.domain)
    out(args, report.as_dict(), lambda: domains.render_report(report))
    return 0 if report.ok else 1


def register(sub: Any) -> None:
    ident = add_noun(sub, "identity", "sender identities")
    sp = add_command(ident, "add", cmd_add, "add an address or domain identity")
    add_account(sp, required=True)
    sp.add_argument("identity")
    sp.add_argument("--verified", action="store_true", help="operator asserts the identity")
    sp.add_argument("--ed25519", action="store_true", help="add an Ed25519 DKIM key as well")
    sp.add_argument("--selector", help="DKIM selector (default rg<YYYYMM>)")
    sp = add_command(ident, "list", cmd_list, "list identities")
    add_account(sp, required=False)
    sp = add_command(ident, "verify", cmd_verify, "check a domain's DNS records now")
    sp.add_argument("domain")
