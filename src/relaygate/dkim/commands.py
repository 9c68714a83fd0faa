"""Command-line for sending domains and DKIM keys: ``identity add DOMAIN``, ``identity verify``,
``dkim show``, ``dkim rotate``, ``dkim list``.

Output: records and key lifecycle only. Private keys are never printed, not even their path: a
key's private half stays in its 0600 file under ``<state_dir>/dkim``.

``identity verify`` exits 0 when the domain is verified and 1 otherwise (pending, failing, or a
temporary DNS failure), after printing the report either way.
"""

from __future__ import annotations

import argparse
from typing import Any

from relaygate import domains
from relaygate.cli import load_settings, open_store, out
from relaygate.clock import iso
from relaygate.store import domains as db
from relaygate.store.domains import KeyState


def add_domain_identity(args: argparse.Namespace) -> int:
    """``identity add --account ID DOMAIN``: the domain, its DKIM key(s), the records to publish."""
    settings = load_settings(args)
    store = open_store(args)
    setup = domains.add_domain(
        store,
        settings,
        args.account,
        args.identity,
        verified=args.verified,
        ed25519=getattr(args, "ed25519", False),
        selector=getattr(args, "selector", None),
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


def cmd_identity_verify(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    store = open_store(args)
    report = domains.verify_sync(store, settings, args.domain)
    out(args, report.as_dict(), lambda: domains.render_report(report))
    return 0 if report.status is db.DomainStatus.VERIFIED else 1


def cmd_dkim_show(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    store = open_store(args)
    records = [
        r for r in domains.domain_records(store, settings, args.domain) if r.purpose == "dkim"
    ]
    domain = domains.normalise_domain(args.domain)
    keys = db.keys_of(store, domain, states=domains.LIVE_KEY_STATES)
    data = {
        "domain": domain,
        "records": [r.as_dict() for r in records],
        "keys": [domains.key_dict(k) for k in keys],
    }
    out(args, data, lambda: "\n".join(r.zone_line() for r in records) or "no DKIM keys")
    return 0


def cmd_dkim_rotate(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    store = open_store(args)
    if args.grace is None:
        args.grace = settings.domains.dkim_grace
    rotation = domains.rotate_keys(
        store, settings, args.domain, grace=args.grace, selector=args.selector
    )

    def human() -> str:
        lines = []
        for k in rotation.created:
            lines.append(f"new {k.algorithm} key {k.selector} (pending)")
        for k in rotation.already_pending:
            lines.append(f"a rotation is already waiting: {k.algorithm} key {k.selector} (pending)")
        lines.append(
            "Publish the pending record(s); signing switches once"
            f" `relaygate identity verify {rotation.domain}` sees them. The old key stays"
            f" published for {args.grace / 86400:g} days after the switch; `relaygate dkim list`"
            " says when it can be removed."
        )
        lines.append("")
        lines.extend(r.zone_line() for r in rotation.records)
        return "\n".join(lines)

    out(args, rotation.as_dict(), human)
    return 0


def cmd_dkim_list(args: argparse.Namespace) -> int:
    store = open_store(args)
    now = store.clock.now()
    keys = (
        db.keys_of(store, domains.normalise_domain(args.domain))
        if args.domain
        else db.all_keys(store)
    )
    data: list[dict[str, Any]] = []
    for k in keys:
        item = domains.key_dict(k)
        del item["value"]
        removable = k.state is KeyState.RETIRED or (
            k.state is KeyState.RETIRING and k.retire_after is not None and k.retire_after <= now
        )
        item["removable"] = removable
        if removable:
            item["advice"] = f"remove {item['name']} TXT from DNS"
        elif k.state is KeyState.RETIRING:
            item["advice"] = f"keep {item['name']} published until {iso(k.retire_after or now)}"
        else:
            item["advice"] = ""
        data.append(item)

    def human() -> str:
        if not data:
            return "no DKIM keys"
        rows = [
            [
                d["domain"],
                d["selector"],
                d["algorithm"],
                d["state"],
                str(d["published"]),
                d["advice"],
            ]
            for d in data
        ]
        headers = ["domain", "selector", "algorithm", "state", "published", "advice"]
        cells = [headers, *rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
        )

    out(args, data, human)
    return 0


def register(subparsers: Any) -> None:
    from relaygate.cli import add_command as add

    dkim = subparsers.add_parser("dkim", help="DKIM keys").add_subparsers(dest="sub", required=True)
    sp = add(dkim, "show", cmd_dkim_show, "print a domain's DKIM record(s) to publish")
    sp.add_argument("domain")
    sp = add(dkim, "rotate", cmd_dkim_rotate, "make a new DKIM key; switch once it is published")
    sp.add_argument("domain")
    sp.add_argument(
        "--grace",
        type=float,
        default=None,
        help="seconds the old key stays published after the switch (default [domains] dkim_grace, 7 days)",
    )
    sp.add_argument("--selector", help="selector of the new key (default rg<YYYYMM>)")
    sp = add(dkim, "list", cmd_dkim_list, "list DKIM keys and when old ones can be removed")
    sp.add_argument("--domain")
