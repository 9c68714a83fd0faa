"""``relaygate status``: a one-screen summary of a relaygate store for the operator.

The data is ``relaygate.ops.status.collect``'s (read-only, safe against a live, busy store);
this module lays it out. ``--json`` prints the same data with stable keys.
"""

from __future__ import annotations

import argparse
from typing import Any

from relaygate.commands.common import add_command, load_settings, open_store, out
from relaygate.ops.status import WINDOWS, collect, roles
from relaygate.store.states import OUTCOMES, PENDING_STATES


def ago(seconds: float) -> str:
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def render(data: dict[str, Any]) -> str:
    lines: list[str] = [f"relaygate status at {data['at']}"]
    running = [r for r in data.get("roles", []) if r["state"] != "stopped"]
    if not running:
        lines.append("roles     none running on this state dir")
    for r in data.get("roles", []):
        if r["state"] == "stopped":
            if running:
                lines.append(f"  {r['role']:9} stopped")
            continue
        where = "  ".join(
            f"{k} {', '.join(v) if isinstance(v, list) else v}" for k, v in r["addresses"].items()
        )
        lines.append(
            f"  {r['role']:9} {r['state'].replace('_', ' '):12} pid {r['pid']}"
            + (f"  {where}" if where else "")
        )
    queue = data["queue"]
    final = {k: v for k, v in sorted(queue["by_state"].items()) if k not in PENDING_STATES}
    lines.append(
        f"queue     {queue['pending']:,} pending: "
        + "  ".join(f"{k} {v:,}" for k, v in queue["pending_by_state"].items())
    )
    if final:
        lines.append("done      " + "  ".join(f"{k} {v:,}" for k, v in final.items()))
    oldest = data["oldest_pending"]
    lines.append(
        "oldest    "
        + (
            "-"
            if oldest is None
            else f"{oldest['message_id']} ({oldest['state']}), queued {ago(oldest['age_seconds'])} ago"
        )
    )
    lines.append("")
    lines.append(f"{'outcomes':12}" + "".join(f"{name:>10}" for name, _ in WINDOWS))
    for outcome in OUTCOMES:
        counts = [data["outcomes"][name][outcome] for name, _ in WINDOWS]
        if outcome in ("suppressed", "complained", "expired") and not any(counts):
            continue
        lines.append(f"  {outcome:10}" + "".join(f"{c:>10,}" for c in counts))
    rates = data["rates_per_second"]
    lines.append(
        f"  last 5 minutes: {rates['accepted']:g} accepted/s, {rates['delivered']:g} delivered/s"
    )
    lines.append("")
    if queue["by_domain"]:
        lines.append("pending by destination domain")
        lines.append(
            f"  {'domain':32}{'total':>8}{'queued':>8}{'active':>8}{'deferred':>9}{'held':>6}  oldest"
        )
        for d in queue["by_domain"]:
            s = d["by_state"]
            lines.append(
                f"  {d['domain'][:31]:32}{d['total']:>8,}{s.get('queued', 0):>8,}{s.get('active', 0):>8,}"
                f"{s.get('deferred', 0):>9,}{s.get('held', 0):>6,}  {ago(d['oldest_age_seconds'])}"
            )
    else:
        lines.append("pending by destination domain: none")
    hooks = data["failing_webhooks"]
    lines.append("")
    lines.append(f"failing webhooks (24 h): {len(hooks) or 'none'}")
    for w in hooks:
        lines.append(
            f"  {w['id']} account {w['account_id']} {w['url'][:60]}: {w['failed_attempts']} failed /"
            f" {w['ok_attempts']} ok attempts, {w['abandoned']} abandoned, {w['pending']} waiting"
        )
        if w["last_error"]:
            lines.append(f"    last: {w['last_error'][:100]}")
    domains = data["unverified_domains"]
    lines.append(f"domains not verified: {len(domains) or 'none'}")
    for d in domains:
        reason = f": {d['reason'][:80]}" if d["reason"] else ""
        lines.append(f"  {d['domain']} (account {d['account_id']}) {d['status']}{reason}")
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    store = open_store(args, settings)
    now = store.clock.now()
    try:
        data = collect(store, now=now, top=args.top)
    finally:
        store.close()
    data["roles"] = roles(settings.state_dir, now=now)
    out(args, data, lambda: render(data))
    return 0


def register(sub: Any) -> None:
    sp = add_command(
        sub, "status", cmd_status, "one-screen summary: queue, rates, webhooks, domains"
    )
    sp.add_argument("--top", type=int, default=10, help="destination domains to list (default 10)")
