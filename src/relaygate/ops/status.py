"""The status summary: queue by state and destination, recent outcomes, trouble, the running serve.

Queue by state and by destination domain, outcomes in the last 5 minutes / hour / day, the
oldest pending recipient, failing webhook endpoints and sending domains that are not verified,
plus each role's process on this state directory: its pid and whether it is running
(``ops.runstate``). It only reads (``Store.status``, the run files, never a lock), so it is safe
against a live, busy store.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from relaygate.clock import iso, iso_or_none
from relaygate.ops import runstate
from relaygate.store import Store
from relaygate.store.states import PENDING_STATES

#: The outcome windows: name and length in seconds.
WINDOWS = (("5m", 300.0), ("1h", 3600.0), ("24h", 86400.0))


def collect(store: Store, *, now: float, top: int = 10) -> dict[str, Any]:
    """Everything ``status`` shows, as plain data (times as ISO strings, ages in seconds)."""
    by_state = store.status.queue_by_state()
    pending = {s: by_state.get(s, 0) for s in PENDING_STATES}
    outcomes = {name: store.status.outcome_counts(since=now - span) for name, span in WINDOWS}
    oldest = store.status.oldest_pending()
    return {
        "at": iso(now),
        "queue": {
            "by_state": by_state,
            "pending": sum(pending.values()),
            "pending_by_state": pending,
            "by_domain": [
                {
                    **asdict(d),
                    "oldest_queued_at": iso(d.oldest_queued_at),
                    "oldest_age_seconds": round(now - d.oldest_queued_at, 1),
                }
                for d in store.status.queue_by_domain(limit=top)
            ],
        },
        "oldest_pending": None
        if oldest is None
        else {
            "message_id": oldest[1],
            "state": oldest[2],
            "queued_at": iso(oldest[0]),
            "age_seconds": round(now - oldest[0], 1),
        },
        "outcomes": outcomes,
        "rates_per_second": {
            name: round(outcomes["5m"][name] / 300.0, 2) for name in ("accepted", "delivered")
        },
        "failing_webhooks": [
            {
                **asdict(w),
                "last_failure_at": iso_or_none(w.last_failure_at),
                "last_success_at": iso_or_none(w.last_success_at),
            }
            for w in store.status.failing_webhooks(since=now - 86400.0)
        ],
        "unverified_domains": [
            {
                **asdict(d),
                "failing_since": iso_or_none(d.failing_since),
                "last_checked_at": iso_or_none(d.last_checked_at),
            }
            for d in store.status.unverified_domains()
        ],
    }


def roles(state_dir: Path, *, now: float) -> list[dict[str, Any]]:
    """Each role on this state directory: state (running, store_busy, starting, stalled,
    stopped), pid, the roles of that process, its addresses, start and heartbeat times."""
    return [asdict(r) for r in runstate.roles(state_dir, now=now)]
