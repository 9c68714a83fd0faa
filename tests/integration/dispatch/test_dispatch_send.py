"""The dispatcher end to end on one store: real HTTP to a loopback receiver, a fake clock for the
retry schedule (never sleeping through it), real timeouts for hanging receivers."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from relaygate.clock import FakeClock
from relaygate.dnsresolver import make_resolver
from relaygate.events.dispatcher import WebhookDispatcher
from relaygate.events.signing import verify, verify_v2
from relaygate.settings import Settings
from relaygate.store.api import Webhooks
from relaygate.store.sqlite import SqliteStore as Store

T0 = 1_790_000_000.0


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


def _dispatcher(store: Store, settings: Settings, clock: FakeClock, **kw) -> WebhookDispatcher:
    return WebhookDispatcher(store, settings, clock, make_resolver(settings), **kw)


def _attempt_times(hooks: Webhooks, delivery_id: int) -> list[float]:
    return [a.at - T0 for a in hooks.attempts(delivery_id)]


async def test_success_is_signed_and_shaped_like_the_reference(
    store: Store, clock: FakeClock, seed, receiver, webhook_settings: Callable[..., Settings]
) -> None:
    hooks = store.webhooks
    account = store.accounts.create("acme", plan="paid").id
    w = hooks.create(account_id=account, url=receiver.url("/ok"), events=(), secret="whsec_current")
    hooks.rotate_secret(w.id, new_secret="whsec_next", grace=3600)
    [r] = seed.message(account_id=account, message_id="msg_1", tags=("welcome", "ü"))
    event = seed.event(
        account_id=account,
        message_id="msg_1",
        recipient_id=r,
        type_="bounce",
        data={
            "smtp_response": "550 5.1.1 no such user",
            "status": "5.1.1",
            "bounce_type": "hard",
            "reason": "userunknown",
            "diagnostic": "550 5.1.1 no such user",
            "remote": "mx.example.net",
        },
    )
    d = _dispatcher(store, webhook_settings(), clock)
    assert await d.drain() == 1
    [hit] = receiver.hits
    assert hit.json == {
        "event_type": "bounce",
        "user_id": account,
        "payload": {
            "sm_mail_id": "msg_1",
            "message_id": "<msg_1@example.com>",
            "recipients": ["r@example.net"],
            "smtp_response": "550 5.1.1 no such user",
            "event_timestamp": "2026-09-21T14:13:20Z",
            "tags": ["welcome", "ü"],
            "bounce_type": "hard",
            "status": "5.1.1",
            "diagnostic": "550 5.1.1 no such user",
            "reason": "userunknown",
        },
    }
    # during the grace X-SM-Signature stays on the previous secret (single-secret receivers)
    assert verify(hit.body, hit.headers["x-sm-signature"], "whsec_current")
    assert not verify(hit.body, hit.headers["x-sm-signature"], "whsec_next")
    assert hit.headers["x-sm-event-id"] == f"evt_{event}"
    assert hit.headers["x-sm-timestamp"] == str(int(T0))
    for secret in ("whsec_next", "whsec_current"):  # both sign the V2 header during the grace
        assert verify_v2(body=hit.body, headers=hit.headers, secrets=secret, now=T0)
    [delivery] = hooks.deliveries(webhook_id=w.id)
    assert delivery.state == "succeeded" and delivery.last_status == 200
    assert await d.drain() == 0 and len(receiver.hits) == 1


async def test_retry_schedule_exact_times_then_abandoned_and_restart_changes_nothing(
    tmp_path: Path,
    clock: FakeClock,
    receiver,
    webhook_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Attempts at t0, +30 s, +330 s, +2130 s, +9330 s, +30930 s, then abandoned; the store and
    the dispatcher are replaced (a restart) after the third attempt. A failure is logged at info
    until the endpoint has been failing the delivery for an hour, then as a warning."""
    caplog.set_level(logging.INFO, logger="relaygate.webhooks")
    path = tmp_path / "state" / "relaygate.sqlite3"
    settings = webhook_settings()
    store = Store(path, clock=clock).open()
    store.start_writer()
    hooks = store.webhooks
    account = store.accounts.create("acme", plan="paid").id
    hooks.create(account_id=account, url=receiver.url("/fail"), events=(), secret="whsec_x")
    [r] = seed_store_message(store, account)
    d = _dispatcher(store, settings, clock)
    expected = [0, 30, 330, 2130, 9330, 30930]
    seen_at: list[float] = []

    async def tick_until(offset: float) -> None:
        # step the clock second by second up to the due time; nothing may happen before it
        while clock.now() - T0 < offset:
            assert await d.run_once() == 0, f"early attempt before +{offset}"
            clock.advance(
                min(offset - (clock.now() - T0), max(1.0, (offset - (clock.now() - T0)) / 2))
            )
        assert await d.run_once() == 1
        seen_at.append(clock.now() - T0)

    await tick_until(0)
    [delivery] = hooks.deliveries()
    await tick_until(30)
    await tick_until(330)
    # restart: a new store and a new dispatcher on the same file
    store.close()
    store = Store(path, clock=clock).open()
    store.start_writer()
    hooks = store.webhooks
    d = _dispatcher(store, settings, clock)
    d.recover()
    assert hooks.delivery(delivery.id).state == "pending"  # type: ignore[union-attr]
    for offset in expected[3:]:
        await tick_until(offset)
    assert seen_at == expected
    assert _attempt_times(hooks, delivery.id) == expected
    assert [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if r.name == "relaygate.webhooks" and "released" not in r.getMessage()
    ] == [("INFO", "webhook deferred")] * 4 + [
        ("WARNING", "webhook failing"),
        ("WARNING", "webhook abandoned"),
    ]
    final = hooks.delivery(delivery.id)
    assert final is not None and final.state == "abandoned" and final.attempts == 6
    assert final.last_status == 500
    assert len(receiver.hits) == 6
    assert len({h.headers["x-sm-event-id"] for h in receiver.hits}) == 1  # same id every time
    clock.advance(86400)
    assert await d.run_once() == 0 and len(receiver.hits) == 6
    # an operator replays it: due now, a fresh schedule
    assert hooks.replay_abandoned() == 1
    assert await d.run_once() == 1 and len(receiver.hits) == 7
    after = hooks.delivery(delivery.id)
    assert after is not None and after.state == "pending" and after.attempts == 1
    assert after.next_attempt_at == clock.now() + 30
    assert [a.attempt for a in hooks.attempts(delivery.id)] == [1, 2, 3, 4, 5, 6, 7]
    store.close()
    del r


def seed_store_message(store: Store, account: int) -> list[int]:
    now = store.clock.now()

    def fn(c):  # type: ignore[no-untyped-def]
        c.execute(
            "INSERT INTO messages (id, account_id, channel, from_addr, sender_domain, subject,"
            " header_message_id, tags, size, created_at) VALUES ('msg_r', ?, 'http', 'a@example.com',"
            " 'example.com', 's', '<r@x>', '[]', 1, ?)",
            (account, now),
        )
        rid = c.execute(
            "INSERT INTO recipients (message_id, account_id, address, domain, kind, state,"
            " queued_at, next_attempt_at, updated_at) VALUES ('msg_r', ?, 'r@example.net',"
            " 'example.net', 'to', 'delivered', ?, ?, ?)",
            (account, now, now, now),
        ).lastrowid
        c.execute(
            "INSERT INTO events (account_id, message_id, recipient_id, type, created_at, data)"
            " VALUES (?, 'msg_r', ?, 'delivery', ?, ?)",
            (account, rid, now, json.dumps({"smtp_response": "250 ok"})),
        )
        return [rid]

    return _sql(store, fn)


async def test_hanging_receiver_is_cut_at_the_timeout_and_retried(
    store: Store, clock: FakeClock, seed, receiver, webhook_settings: Callable[..., Settings]
) -> None:
    hooks = store.webhooks
    account = store.accounts.create("acme", plan="paid").id
    hooks.create(account_id=account, url=receiver.url("/hang"), events=(), secret="whsec_x")
    [r] = seed.message(account_id=account, message_id="msg_1")
    seed.event(account_id=account, message_id="msg_1", recipient_id=r, type_="delivery")
    d = _dispatcher(store, webhook_settings(timeout=0.5), clock)
    started = time.monotonic()
    assert await d.run_once() == 1
    assert time.monotonic() - started >= 0.45
    [delivery] = hooks.deliveries()
    [attempt] = hooks.attempts(delivery.id)
    assert attempt.outcome == "timeout" and attempt.status is None
    assert 450 <= attempt.duration_ms < 1500  # cut at the 0.5 s timeout
    assert delivery.state == "pending" and delivery.next_attempt_at == T0 + 30
    clock.advance(30)
    assert await d.run_once() == 1
    assert [a.outcome for a in hooks.attempts(delivery.id)] == ["timeout", "timeout"]
    assert len(receiver.hits) == 2


async def test_a_hanging_endpoint_never_holds_up_another(
    store: Store, clock: FakeClock, seed, receiver, webhook_settings: Callable[..., Settings]
) -> None:
    """The loop keeps the hanging endpoint at its concurrency cap and serves the other one
    meanwhile: all of the fast endpoint's events succeed while the first hangs still hang."""
    hooks = store.webhooks
    account = store.accounts.create("acme", plan="paid").id
    slow = hooks.create(account_id=account, url=receiver.url("/hang"), events=(), secret="whsec_a")
    fast = hooks.create(account_id=account, url=receiver.url("/ok"), events=(), secret="whsec_b")
    for i in range(30):
        [r] = seed.message(account_id=account, message_id=f"msg_{i}")
        seed.event(account_id=account, message_id=f"msg_{i}", recipient_id=r, type_="delivery")
    d = _dispatcher(
        store, webhook_settings(timeout=20, concurrency_per_endpoint=3), clock, window=10
    )
    started = time.monotonic()
    task = asyncio.create_task(d.run())
    try:
        while hooks.counts(fast.id)["succeeded"] < 30:
            assert time.monotonic() - started < 15, "fast endpoint starved by the hanging one"
            await asyncio.sleep(0.02)
        # the three first hangs are still open (20 s timeout): nothing else went to that endpoint
        assert receiver.max_open["/hang"] == 3
        assert len([h for h in receiver.hits if h.path == "/hang"]) == 3
        assert hooks.counts(slow.id) == {"pending": 27, "active": 3, "succeeded": 0, "abandoned": 0}
    finally:
        await d.stop(timeout=0.1)
        await task
    # stop gave the leases back without counting an attempt
    assert hooks.counts(slow.id) == {"pending": 30, "active": 0, "succeeded": 0, "abandoned": 0}
    assert all(x.attempts == 0 for x in hooks.deliveries(webhook_id=slow.id, limit=100))


async def test_stop_gives_back_leases_and_a_new_dispatcher_sends_them(
    store: Store, clock: FakeClock, seed, receiver, webhook_settings: Callable[..., Settings]
) -> None:
    hooks = store.webhooks
    account = store.accounts.create("acme", plan="paid").id
    hooks.create(account_id=account, url=receiver.url("/hang"), events=(), secret="whsec_a")
    [r] = seed.message(account_id=account, message_id="msg_1")
    seed.event(account_id=account, message_id="msg_1", recipient_id=r, type_="delivery")
    d = _dispatcher(store, webhook_settings(timeout=30), clock)
    task = asyncio.create_task(d.run())
    while not receiver.hits:
        await asyncio.sleep(0.01)
    await d.stop(timeout=0.1)
    await task
    [delivery] = hooks.deliveries()
    assert delivery.state == "pending" and delivery.attempts == 0
    assert hooks.attempts(delivery.id) == []
    # the receiver heals; the next dispatcher sends it at once (at least once: twice in total)
    _sql(
        store,
        lambda c: c.execute("UPDATE webhooks SET url = ?", (receiver.url("/ok"),)),
    )
    assert await _dispatcher(store, webhook_settings(), clock).drain() == 1
    assert hooks.delivery(delivery.id).state == "succeeded"  # type: ignore[union-attr]
    assert [h.path for h in receiver.hits] == ["/hang", "/ok"]
    assert receiver.hits[0].headers["x-sm-event-id"] == receiver.hits[1].headers["x-sm-event-id"]


async def test_send_time_ssrf_check_refuses_private_targets(
    store: Store, clock: FakeClock, seed, receiver, webhook_settings: Callable[..., Settings]
) -> None:
    """A webhook stored while private targets were allowed is refused at send time once they
    are not (nothing is sent), and retried on the schedule like any failure."""
    hooks = store.webhooks
    account = store.accounts.create("acme", plan="paid").id
    hooks.create(account_id=account, url=receiver.url("/ok"), events=(), secret="whsec_a")
    [r] = seed.message(account_id=account, message_id="msg_1")
    seed.event(account_id=account, message_id="msg_1", recipient_id=r, type_="delivery")
    d = _dispatcher(store, webhook_settings(allow_private=False), clock)
    assert await d.run_once() == 1
    [delivery] = hooks.deliveries()
    [attempt] = hooks.attempts(delivery.id)
    assert attempt.outcome == "refused" and "http" in attempt.error
    assert receiver.hits == []
    assert delivery.state == "pending" and delivery.next_attempt_at == T0 + 30


async def test_payload_of_each_type(
    store: Store, clock: FakeClock, seed, receiver, webhook_settings: Callable[..., Settings]
) -> None:
    hooks = store.webhooks
    account = store.accounts.create("acme", plan="paid").id
    hooks.create(account_id=account, url=receiver.url("/ok"), events=(), secret="whsec_a")
    [r] = seed.message(account_id=account, message_id="msg_1", tags=())
    for type_, data in [
        ("delivery", {"smtp_response": "250 ok", "status": "2.0.0", "remote": "mx"}),
        ("open", {"ip": "192.0.2.7", "user_agent": "Mail/1", "is_proxy": True}),
        ("click", {"ip": "192.0.2.7", "user_agent": "Mail/1", "url": "https://x.test/a"}),
        ("complaint", {"feedback_type": "abuse"}),
        ("bounce", {}),
    ]:
        seed.event(account_id=account, message_id="msg_1", recipient_id=r, type_=type_, data=data)
    d = _dispatcher(store, webhook_settings(), clock)
    assert await d.drain() == 5
    payloads = {h.json["event_type"]: h.json["payload"] for h in receiver.hits}
    common = ["sm_mail_id", "message_id", "recipients", "smtp_response", "event_timestamp", "tags"]
    assert list(payloads["delivery"]) == common
    assert payloads["delivery"]["smtp_response"] == "250 ok"
    assert payloads["open"] == {
        **{k: payloads["delivery"][k] for k in common},
        "smtp_response": "",
        "user_agent": "Mail/1",
        "ip": "192.0.2.7",
        "is_proxy": True,
    }
    assert payloads["click"]["url"] == "https://x.test/a"
    assert payloads["complaint"]["feedback_type"] == "abuse"
    assert {
        k: payloads["bounce"][k] for k in ("bounce_type", "status", "diagnostic", "reason")
    } == {
        "bounce_type": "soft",
        "status": None,
        "diagnostic": None,
        "reason": "undefined",
    }
    # in order of occurrence (one message, one endpoint, all answered)
    assert [h.json["event_type"] for h in receiver.hits] == [
        "delivery",
        "open",
        "click",
        "complaint",
        "bounce",
    ]
    assert json.loads(receiver.hits[0].body)["user_id"] == account
