"""10,000 queued events drain through the real loop with bounded memory and a bounded window.

The sender is a test double here (the HTTP edge has its own tests): what is measured is the
dispatcher and the store, i.e. that the backlog stays in SQLite and never in Python memory."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import tracemalloc
from collections.abc import Callable, Mapping
from typing import Any

from relaygate.clock import FakeClock
from relaygate.dnsresolver import make_resolver
from relaygate.events.dispatcher import MIN_ROUND, WebhookDispatcher
from relaygate.events.sender import SendOutcome, SendResult
from relaygate.settings import Settings
from relaygate.store.sqlite import SqliteStore as Store

EVENTS = 10_000
ENDPOINTS = 10
WINDOW = 100


def _sql(store: Store, fn: Any) -> Any:
    """``fn(conn)`` in one transaction on a connection of its own to the store's file (as the
    sqlite3 shell would: these rows have no interface call)."""
    conn = sqlite3.connect(str(store.path), isolation_level=None, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("BEGIN IMMEDIATE")
        result = fn(conn)
        conn.execute("COMMIT")
        return result
    finally:
        conn.close()


def _bulk_events(store: Store, account: int) -> None:
    now = store.clock.now()

    def fn(c: Any) -> None:
        c.executemany(
            "INSERT INTO messages (id, account_id, channel, from_addr, sender_domain, subject,"
            " header_message_id, tags, size, created_at) VALUES (?, ?, 'http', 'a@example.com',"
            " 'example.com', 's', ?, '[\"bulk\"]', 1, ?)",
            [(f"msg_{i}", account, f"<{i}@x>", now) for i in range(EVENTS // ENDPOINTS)],
        )
        c.executemany(
            "INSERT INTO recipients (id, message_id, account_id, address, domain, kind, state,"
            " queued_at, next_attempt_at, updated_at) VALUES (?, ?, ?, ?, 'example.net', 'to',"
            " 'delivered', ?, ?, ?)",
            [
                (i + 1, f"msg_{i}", account, f"r{i}@example.net", now, now, now)
                for i in range(EVENTS // ENDPOINTS)
            ],
        )
        data = json.dumps({"smtp_response": "250 2.0.0 ok " + "x" * 200})
        c.executemany(
            "INSERT INTO events (account_id, message_id, recipient_id, type, created_at, data)"
            " VALUES (?, ?, ?, 'delivery', ?, ?)",
            [(account, f"msg_{i}", i + 1, now, data) for i in range(EVENTS // ENDPOINTS)],
        )

    _sql(store, fn)


async def test_ten_thousand_deliveries_drain_with_bounded_memory(
    store: Store, clock: FakeClock, webhook_settings: Callable[..., Settings]
) -> None:
    hooks = store.webhooks
    account = store.accounts.create("bulk", plan="paid").id
    for i in range(ENDPOINTS):
        hooks.create(
            account_id=account, url=f"https://hook{i}.example/x", events=(), secret=f"whsec_{i}"
        )
    _bulk_events(store, account)  # 1,000 events × 10 endpoints = 10,000 deliveries
    sent: list[str] = []
    inflight = 0
    peak_inflight = 0

    async def fake_post(
        *, url: str, body: bytes, headers: Mapping[str, str], **_: Any
    ) -> SendResult:
        nonlocal inflight, peak_inflight
        inflight += 1
        peak_inflight = max(peak_inflight, inflight)
        await asyncio.sleep(0)
        inflight -= 1
        sent.append(headers["X-SM-Event-Id"])
        return SendResult(ok=True, status=200, error=None, duration=0.001, outcome=SendOutcome.OK)

    settings = webhook_settings(concurrency_per_endpoint=10)
    d = WebhookDispatcher(
        store, settings, clock, make_resolver(settings), post=fake_post, window=WINDOW
    )
    tracemalloc.start()
    started = time.monotonic()
    task = asyncio.create_task(d.run())
    try:
        while len(sent) < EVENTS:
            assert time.monotonic() - started < 40, f"only {len(sent)} sent"
            await asyncio.sleep(0.05)
        while sum(hooks.counts(w.id)["succeeded"] for w in hooks.all()) < EVENTS:
            await asyncio.sleep(0.02)
    finally:
        await d.stop()
        await task
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert len(sent) == EVENTS and len(set(sent)) == EVENTS // ENDPOINTS
    assert peak_inflight <= WINDOW and d.max_inflight <= WINDOW
    # 10,000 payloads held at once would be > 10 MB of Python objects; the window is 100
    assert peak < 6 * 1024 * 1024, f"peak traced memory {peak / 1e6:.1f} MB"
    counts = [hooks.counts(w.id) for w in hooks.all()]
    assert all(c["succeeded"] == EVENTS // ENDPOINTS and c["pending"] == 0 for c in counts)


async def test_a_burst_of_wake_ups_is_one_round(
    store: Store, clock: FakeClock, webhook_settings: Callable[..., Settings]
) -> None:
    """A relay wakes the dispatcher after every recorded outcome; wake-ups closer together than
    MIN_ROUND share one fan-out round (a store transaction) instead of one each."""
    settings = webhook_settings()

    async def no_post(*args: Any, **kwargs: Any) -> SendResult:
        raise AssertionError("nothing to send")

    d = WebhookDispatcher(store, settings, clock, make_resolver(settings), post=no_post)
    rounds = 0
    fill = d._fill

    async def counting_fill() -> tuple[int, bool]:
        nonlocal rounds
        rounds += 1
        return await fill()

    d._fill = counting_fill  # type: ignore[method-assign]
    task = asyncio.create_task(d.run())
    try:
        await asyncio.sleep(0.01)
        first = rounds
        for _ in range(40):  # 40 wake-ups within ~20 ms
            d.wake()
            await asyncio.sleep(0.0005)
        await asyncio.sleep(MIN_ROUND * 3)
        assert 1 <= rounds - first <= 4, rounds - first
    finally:
        await d.stop()
        await task
