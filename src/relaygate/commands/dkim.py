"""``relaygate dkim show|rotate|list``: a sending domain's DKIM keys and their records.

Output: records and key lifecycle only. Private keys are never printed, not even their path: a
key's private half stays in its 0600 file under ``<state_dir>/dkim``.
"""

from __future__ import annotations

import argparse
from typing import Any

from relaygate import domains
from relaygate.commands.common import add_command, add_noun, load_settings, open_store, out, table


def cmd_show(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    store = open_store(args, settings)
    records = [
        r for r in domains.domain_records(store, settings, args.domain) if r.purpose == "dkim"
    ]
    domain = domains.normalise_domain(args.domain)
    keys = store.dkim_keys.of_domain(domain, states=domains.LIVE_KEY_STATES)
    data = {
        "domain": domain,
        "records": [r.as_dict() for r in records],
        "keys": [domains.key_dict(k) for k in keys],
    }
    out(args, data, lambda: "\n".join(r.zone_line() for r in records) or "no DKIM keys")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    store = open_store(args, settings)
    grace = settings.domains.dkim_grace if args.grace is None else args.grace
    rotation = domains.rotate_keys(
        store, settings, args.domain, grace=grace, selector=args.selector
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
            f" published for {grace / 86400:g} days after the switch; `relaygate dkim list`"
            " says when it can be removed."
        )
        lines.append("")
        lines.extend(r.zone_line() for r in rotation.records)
        return "\n".join(lines)

    out(args, rotation.as_dict(), human)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = open_store(args)
    now = store.clock.now()
    keys = (
        store.dkim_keys.of_domain(domains.normalise_domain(args.domain))
        if args.domain
        else store.dkim_keys.all()
    )
    data = [domains.key_lifecycle(k, now=now) for k in keys]

    def human() -> str:
        if not data:
            return "no DKIM keys"
        return table(
            ["domain", "selector", "algorithm", "state", "published", "advice"],
            [
                [
                    d["domain"],
                    d["selector"],
                    d["algorithm"],
                    d["state"],
                    d["published"],
                    d["advice"],
                ]
                for d in data
            ],
        )

    out(args, data, human)
    return 0


def register(sub: Any) -> None:
    dkim = add_noun(sub, "dkim", "DKIM keys")
    sp = add_command(dkim, "show", cmd_show, "print a domain's DKIM record(s) to publish")
    sp.add_argument("domain")
    sp = add_command(dkim, "rotate", cmd_rotate, "make a new DKIM key; switch once it is published")
    sp.add_argument("domain")
    sp.add_argument(
        "--grace",
        type=float,
        default=None,
        help="seconds the old key stays published after the switch (default [domains] dkim_grace, 7 days)",
    )
    sp.add_argument("--selector", help="selector of the new key (default rg<YYYYMM>)")
    sp = add_command(dkim, "list", cmd_list, "list DKIM keys and when old ones can be removed")
    sp.add_argument("--domain")
