"""Every dashboard page's latency with a store of 100,000 messages (the target: < 100 ms each).

    .venv/bin/python bench/dashboard.py [--messages 100000] [--rounds 30]

The history is written straight into a fresh SQLite store for one account (spread over the last
30 days; 1-3 recipients each; queued → delivered, 2 % bounced, 1 % deferred and still waiting;
a tag on each message, a rare tag on 1 in 5,000; opens and clicks on 1 in 10), plus 20,000
suppressions, 5 keys and another account with 20,000 messages of its own. The pages are
requested in-process through Starlette's TestClient (routing, session, store reads, Jinja2
rendering; no socket), signed in as the account's user (the operator for the operator's pages),
interleaved round by round, with a baseline page that reads nothing but the session
(``/dashboard/password``) in every round. The first round warms caches (and the 30-day chart's
roll-up, which then reads only what is new) and is not counted.

Prints one JSON line per page: median and 95th percentile in ms, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sqlite3
import statistics
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

from starlette.applications import Starlette  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from relaygate.clock import SystemClock  # noqa: E402
from relaygate.dashboard import dashboard_routes, passwords  # noqa: E402
from relaygate.settings import from_mapping  # noqa: E402
from relaygate.store import open_store_at  # noqa: E402

DAY = 86400.0
PASSWORD = "bench password 1"


def build(path: Path, messages: int, other: int) -> dict[str, str]:
    """Write the history; returns a few ids and values the pages will ask for."""
    store = open_store_at(path)
    pw = passwords.hash_password(PASSWORD)
    store.accounts.create("bench", plan="paid", daily_quota=10**9, rate_limit=10**5)
    store.accounts.create("other", plan="paid")
    store.users.create("user@bench.test", account_id=1, operator=False, password_hash=pw)
    store.users.create("op@bench.test", account_id=None, operator=True, password_hash=pw)
    for i in range(5):
        store.keys.create(1, scopes=["email:send"], name=f"key {i}")
    store.identities.add(1, "bench.example", verified=True)
    store.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    now = time.time()
    rnd = random.Random(7)
    seen: dict[str, str] = {}
    rcpt_id = 0
    for account, count in ((2, other), (1, messages)):
        for start in range(0, count, 20_000):
            msgs, rcpts, events, tags = [], [], [], []
            for i in range(start, min(count, start + 20_000)):
                mid = f"msg_{account}_{i:08d}"
                created = now - 30 * DAY + 30 * DAY * i / count
                tag = "rare" if i % 5000 == 17 else f"campaign-{i % 20}"
                msgs.append(
                    (
                        mid,
                        account,
                        "http",
                        "app@bench.example",
                        "bench.example",
                        f"Order {i} shipped",
                        f"<{mid}@bench.example>",
                        json.dumps([tag]),
                        2048,
                        created,
                    )
                )
                tags.append((mid, account, tag))
                for ordinal in range(1 + i % 3):
                    rcpt_id += 1
                    address = f"user{rnd.randrange(200_000)}@dest{i % 50}.test"
                    roll = (i * 7 + ordinal) % 100
                    state = "bounced" if roll < 2 else "deferred" if roll == 2 else "delivered"
                    rcpts.append(
                        (
                            rcpt_id,
                            mid,
                            account,
                            address,
                            address.split("@")[1],
                            "to",
                            state,
                            1,
                            created,
                            created + 600 if state == "deferred" else 0,
                            created,
                            ordinal,
                        )
                    )
                    events.append(
                        (
                            account,
                            mid,
                            rcpt_id,
                            "queued",
                            None,
                            "queued",
                            created,
                            '{"channel":"http"}',
                        )
                    )
                    if state == "deferred":
                        events.append(
                            (
                                account,
                                mid,
                                rcpt_id,
                                "deferred",
                                "active",
                                "deferred",
                                created + 1,
                                '{"smtp_response":"451 4.7.1 later"}',
                            )
                        )
                    elif state == "bounced":
                        events.append(
                            (
                                account,
                                mid,
                                rcpt_id,
                                "bounce",
                                "active",
                                "bounced",
                                created + 1,
                                '{"smtp_response":"550 5.1.1 unknown",'
                                '"reason":"userunknown","bounce_type":"hard"}',
                            )
                        )
                    else:
                        events.append(
                            (
                                account,
                                mid,
                                rcpt_id,
                                "delivery",
                                "active",
                                "delivered",
                                created + 1,
                                '{"smtp_response":"250 2.0.0 ok"}',
                            )
                        )
                        if i % 10 == 0:
                            for kind in ("open", "click"):
                                events.append(
                                    (
                                        account,
                                        mid,
                                        rcpt_id,
                                        kind,
                                        None,
                                        None,
                                        created + 60,
                                        '{"is_proxy":false,"is_scanner":false,"ip":"192.0.2.1"}',
                                    )
                                )
                    if account == 1 and i == count // 2:
                        seen.update(message=mid, recipient=address)
            db.executemany(
                "INSERT INTO messages (id, account_id, channel, from_addr, sender_domain, subject,"
                " header_message_id, tags, size, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                msgs,
            )
            db.executemany("INSERT INTO message_tags VALUES (?, ?, ?)", tags)
            db.executemany(
                "INSERT INTO recipients (id, message_id, account_id, address, domain, kind, state,"
                " attempts, queued_at, next_attempt_at, updated_at, ordinal)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                rcpts,
            )
            db.executemany(
                "INSERT INTO events (account_id, message_id, recipient_id, type, state_from,"
                " state_to, created_at, data) VALUES (?,?,?,?,?,?,?,?)",
                events,
            )
            db.commit()
    db.execute(
        "INSERT INTO bodies (message_id, data) VALUES (?, ?)",
        (
            seen["message"],
            b"Subject: Order shipped\r\nFrom: app@bench.example\r\n\r\nHello\r\n",
        ),
    )
    db.executemany(
        "INSERT INTO suppressions (account_id, address, reason, bounce_type, source, created_at)"
        " VALUES (1, ?, 'userunknown', 'hard', 'bounce', ?)",
        [(f"gone{i:06d}@dest{i % 50}.test", now) for i in range(20_000)],
    )
    db.commit()
    db.close()
    return seen


def sign_in(client: TestClient, email: str) -> None:
    page = client.get("/dashboard/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = client.post("/dashboard/login", data={"email": email, "password": PASSWORD, "csrf": csrf})
    assert r.status_code == 303, r.text


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--other", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=30)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state" / "relaygate.sqlite3"
        path.parent.mkdir()
        started = time.perf_counter()
        seen = build(path, args.messages, args.other)
        built = time.perf_counter() - started
        settings = from_mapping({"state_dir": str(path.parent)}, path=Path(tmp) / "r.toml")
        store = open_store_at(path)
        app = Starlette(
            routes=dashboard_routes(store=store, settings=settings, clock=SystemClock())
        )
        user = TestClient(app, follow_redirects=False)
        operator = TestClient(app, follow_redirects=False)
        sign_in(user, "user@bench.test")
        sign_in(operator, "op@bench.test")
        first_page = user.get("/dashboard/messages").text
        cursor = re.search(r'href="/dashboard/messages\?cursor=([^"]+)"', first_page)
        pages = {
            "baseline (password page)": (user, "/dashboard/password"),
            "overview": (user, "/dashboard"),
            "keys": (user, "/dashboard/keys"),
            "billing": (user, "/dashboard/billing"),
            "messages": (user, "/dashboard/messages"),
            "messages page 2": (
                user,
                f"/dashboard/messages?cursor={cursor.group(1) if cursor else ''}",
            ),
            "messages by recipient": (user, f"/dashboard/messages?recipient={seen['recipient']}"),
            "messages by rare tag": (user, "/dashboard/messages?tag=rare"),
            "messages by status bounced": (user, "/dashboard/messages?status=bounced"),
            "messages by date": (
                user,
                "/dashboard/messages?until="
                + time.strftime("%Y-%m-%d", time.gmtime(time.time() - 20 * DAY)),
            ),
            "message": (user, f"/dashboard/messages/{seen['message']}"),
            "suppressions": (user, "/dashboard/suppressions"),
            "suppressions search": (user, "/dashboard/suppressions?q=gone012345"),
            "accounts (operator)": (operator, "/dashboard/accounts"),
            "users (operator)": (operator, "/dashboard/users"),
            "queue (operator)": (operator, "/dashboard/queue"),
        }
        for extra in ("/dashboard/webhooks", "/dashboard/domains", "/dashboard/templates"):
            if user.get(extra).status_code == 200:
                pages[extra.rsplit("/", 1)[1]] = (user, extra)
        times: dict[str, list[float]] = {name: [] for name in pages}
        for round_no in range(args.rounds + 1):
            order = list(pages.items())
            random.Random(round_no).shuffle(order)
            for name, (client, url) in order:
                t0 = time.perf_counter()
                r = client.get(url)
                elapsed = time.perf_counter() - t0
                assert r.status_code == 200, (name, r.status_code, r.text[:300])
                if round_no:
                    times[name].append(elapsed * 1000)
        load = os.getloadavg()[0]
        print(json.dumps({"messages": args.messages, "build_s": round(built, 1), "load": load}))
        for name, samples in times.items():
            samples.sort()
            print(
                json.dumps(
                    {
                        "page": name,
                        "median_ms": round(statistics.median(samples), 1),
                        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 1),
                    }
                )
            )
        store.close()


if __name__ == "__main__":
    main()
