"""The cost of the store-derived /metrics: the first read of the totals (the whole history), an
incremental read, the backlog, and a whole scrape, on a store of a given size.

    .venv/bin/python bench/metrics_totals.py [--recipients 500000] [--pending 20000]

The history is written straight into a fresh SQLite store (one message per 5 recipients, each
recipient queued → claimed → delivered: 3 events; 1 % bounced instead, and one webhook attempt
per 10 recipients), plus ``--pending`` recipients still queued. Prints one JSON line: seconds
per read (wall clock; the machine is shared, so the load average is in the line too).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from relaygate.metrics import LATENCY_BUCKETS, Metrics
from relaygate.store import open_store_at


def build(path: Path, recipients: int, pending: int) -> None:
    open_store_at(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    now = 1_790_000_000.0
    db.execute(
        "INSERT INTO accounts (id, name, plan, daily_quota, rate_limit, created_at)"
        " VALUES (1, 'bench', 'paid', 1000000000, 100000, ?)",
        (now,),
    )
    db.execute(
        "INSERT INTO webhooks (id, account_id, url, secret, created_at)"
        " VALUES ('wh_1', 1, 'https://h.test/', 's', ?)",
        (now,),
    )
    total = recipients + pending
    for start in range(0, total, 50_000):
        ids = range(start, min(total, start + 50_000))
        db.executemany(
            "INSERT INTO messages (id, account_id, channel, from_addr, sender_domain,"
            " header_message_id, size, created_at) VALUES (?, 1, 'http', 'a@b.test', 'b.test', '', 1, ?)",
            [(f"msg_{i // 5}", now + i * 0.01) for i in ids if i % 5 == 0],
        )
        rows, events, hooks = [], [], []
        for i in ids:
            done = i < recipients
            state = ("bounced" if i % 100 == 0 else "delivered") if done else "queued"
            t = now + i * 0.01
            rows.append((i + 1, f"msg_{i // 5}", f"r{i}@d.test", state, t))
            events.append(
                (f"msg_{i // 5}", i + 1, "queued", None, "queued", t, '{"channel":"http"}')
            )
            if done:
                events.append((f"msg_{i // 5}", i + 1, "claimed", "queued", "active", t + 1, "{}"))
                kind = "bounce" if state == "bounced" else "delivery"
                data = '{"reason":"userunknown","bounce_type":"hard"}' if kind == "bounce" else "{}"
                events.append((f"msg_{i // 5}", i + 1, kind, "active", state, t + 2, data))
                if i % 10 == 0:
                    hooks.append((i // 10 + 1, f"msg_{i // 5}", t + 3))
        db.executemany(
            "INSERT INTO recipients (id, message_id, account_id, address, domain, kind, state,"
            " queued_at, next_attempt_at, updated_at) VALUES (?, ?, 1, ?, 'd.test', 'to', ?, ?, 0, 0)",
            rows,
        )
        db.executemany(
            "INSERT INTO events (account_id, message_id, recipient_id, type, state_from, state_to,"
            " created_at, data) VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
            events,
        )
        db.executemany(
            "INSERT INTO webhook_deliveries (id, webhook_id, event_id, account_id, message_id,"
            " event_type, state, next_attempt_at, created_at, updated_at)"
            " VALUES (?, 'wh_1', ?1, 1, ?, 'delivery', 'succeeded', 0, ?3, ?3)",
            hooks,
        )
        db.executemany(
            "INSERT INTO webhook_attempts (delivery_id, attempt, at, status, outcome, duration_ms)"
            " VALUES (?, 1, ?, 200, 'ok', 5)",
            [(h[0], h[2]) for h in hooks],
        )
        db.commit()
    db.close()


def timed(fn: object) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()  # type: ignore[operator]
    return time.perf_counter() - started, result


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--recipients", type=int, default=500_000)
    p.add_argument("--pending", type=int, default=20_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "relaygate.sqlite3"
        build_s, _ = timed(lambda: build(path, args.recipients, args.pending))
        store = open_store_at(path)
        first_s, totals = timed(lambda: store.status.totals(None, latency_buckets=LATENCY_BUCKETS))
        again_s, _ = timed(
            lambda: store.status.totals(totals.cursor, latency_buckets=LATENCY_BUCKETS)  # type: ignore[attr-defined]
        )
        backlog_s, _ = timed(store.status.backlog)
        metrics = Metrics(status=store.status, process=False)
        warm_s, _ = timed(metrics.refresh)
        scrape_s, _ = timed(metrics.render)
        store.close()
        size_mb = path.stat().st_size / 1e6
    print(
        json.dumps(
            {
                "recipients": args.recipients,
                "pending": args.pending,
                "events": args.recipients * 3 + args.pending,
                "db_mb": round(size_mb),
                "build_s": round(build_s, 1),
                "first_totals_s": round(first_s, 3),
                "next_totals_s": round(again_s, 4),
                "backlog_s": round(backlog_s, 4),
                "metrics_refresh_s": round(warm_s, 3),
                "scrape_after_refresh_s": round(scrape_s, 4),
                "delivered_counted": totals.delivered,  # type: ignore[attr-defined]
                "loadavg": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    main()
