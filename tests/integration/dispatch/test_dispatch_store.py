"""The webhook tables on a real SQLite store: exactly-once fan-out, claims, leases, ordering."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from relaygate.clock import FakeClock
from relaygate.store.api import Webhooks
from relaygate.store.models import AttemptResult
from relaygate.store.sqlite import SqliteStore as Store


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


@pytest.fixture
def hooks(store: Store) -> Webhooks:
    return store.webhooks


def _hook(hooks: Webhooks, account_id: int, *events: str, url: str = "http://127.0.0.1:9/x"):
    return hooks.create(account_id=account_id, url=url, events=events, secret="whsec_test")


def _deliveries(store: Store) -> list[tuple[str, int, str]]:
    return [
        (r[0], r[1], r[2])
        for r in _sql(
            store,
            lambda c: c.execute(
                "SELECT webhook_id, event_id, event_type FROM webhook_deliveries ORDER BY id"
            ).fetchall(),
        )
    ]


def test_fan_out_matches_account_filter_and_registration_time(
    store: Store, hooks: Webhooks, seed
) -> None:
    a = store.accounts.create("a", plan="paid").id
    b = store.accounts.create("b", plan="paid").id
    [ra] = seed.message(account_id=a, message_id="msg_a")
    [rb] = seed.message(account_id=b, message_id="msg_b")
    before = seed.event(account_id=a, message_id="msg_a", recipient_id=ra, type_="delivery")
    all_a = _hook(hooks, a)
    bounces_a = _hook(hooks, a, "bounce")
    removed_a = _hook(hooks, a)
    hooks.remove(removed_a.id)
    all_b = _hook(hooks, b)
    e1 = seed.event(account_id=a, message_id="msg_a", recipient_id=ra, type_="delivery")
    e2 = seed.event(account_id=a, message_id="msg_a", recipient_id=ra, type_="bounce", data={})
    seed.event(account_id=a, message_id="msg_a", recipient_id=ra, type_="queued")
    seed.event(account_id=a, message_id="msg_a", recipient_id=ra, type_="deferred")
    e5 = seed.event(account_id=b, message_id="msg_b", recipient_id=rb, type_="open")
    created, more = hooks.fan_out_sync(now=store.clock.now())
    assert (created, more) == (4, False)
    assert sorted(_deliveries(store), key=lambda d: (d[1], d[0])) == sorted(
        [
            (all_a.id, e1, "delivery"),
            (all_a.id, e2, "bounce"),
            (bounces_a.id, e2, "bounce"),
            (all_b.id, e5, "open"),
        ],
        key=lambda d: (d[1], d[0]),
    )
    assert before < e1 and hooks.cursor() == e5
    # again: nothing new, nothing doubled
    assert hooks.fan_out_sync(now=store.clock.now()) == (0, False)
    assert len(_deliveries(store)) == 4


def test_fan_out_goes_in_batches_and_reports_more(store: Store, hooks: Webhooks, seed) -> None:
    a = store.accounts.create("a", plan="paid").id
    [r] = seed.message(account_id=a, message_id="msg_1")
    _hook(hooks, a)
    ids = [
        seed.event(account_id=a, message_id="msg_1", recipient_id=r, type_="open") for _ in range(7)
    ]
    assert hooks.fan_out_sync(now=0, limit=3) == (3, True)
    assert hooks.cursor() == ids[2]
    assert hooks.fan_out_sync(now=0, limit=3) == (3, True)
    assert hooks.fan_out_sync(now=0, limit=3) == (1, False)
    assert [e for _, e, _ in _deliveries(store)] == ids


def test_concurrent_fan_out_from_two_stores_is_exactly_once(tmp_path: Path, seed) -> None:
    """Two processes' worth of stores on one file, racing fan-out while events keep arriving."""
    clock = FakeClock()
    path = tmp_path / "state" / "relaygate.sqlite3"
    first = Store(path, clock=clock).open()
    a = first.accounts.create("a", plan="paid").id
    [r] = seed.on(first).message(account_id=a, message_id="msg_1")
    h1 = _hook(first.webhooks, a)
    h2 = _hook(first.webhooks, a, "delivery")
    stop = threading.Event()
    added: list[int] = []

    def produce() -> None:
        s = Store(path, clock=clock).open()
        for i in range(300):
            added.append(
                seed.on(s).event(
                    account_id=a,
                    message_id="msg_1",
                    recipient_id=r,
                    type_="delivery" if i % 2 else "open",
                )
            )
        s.close()
        stop.set()

    def consume() -> None:
        s = Store(path, clock=clock).open()
        hooks = s.webhooks
        while True:
            done = stop.is_set()
            while hooks.fan_out_sync(now=0, limit=7)[1]:
                pass
            if done:
                break
        s.close()

    threads = [threading.Thread(target=produce)] + [
        threading.Thread(target=consume) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    rows = _deliveries(first)
    assert len(rows) == len(set(rows))  # never twice
    want = {(h1.id, e) for e in added} | {(h2.id, e) for i, e in enumerate(added) if i % 2}
    assert {(w, e) for w, e, _ in rows} == want  # never lost
    first.close()


async def test_claim_caps_each_endpoint_across_dispatchers(
    store: Store, hooks: Webhooks, seed
) -> None:
    a = store.accounts.create("a", plan="paid").id
    busy = _hook(hooks, a, url="http://127.0.0.1:9/busy")
    other = _hook(hooks, a, url="http://127.0.0.1:9/other")
    for i in range(6):
        [r] = seed.message(account_id=a, message_id=f"msg_{i}")
        seed.event(account_id=a, message_id=f"msg_{i}", recipient_id=r, type_="delivery")
    now = store.clock.now()
    await hooks.fan_out(now=now)
    got = await hooks.claim("w1", now=now, limit=100, per_endpoint=2, lease_seconds=60)
    assert sorted((d.webhook_id, d.message_id) for d in got) == sorted(
        [(h, m) for h in (busy.id, other.id) for m in ("msg_0", "msg_1")]
    )
    # a second dispatcher gets nothing: both endpoints are at their cap (counted in the store)
    assert await hooks.claim("w2", now=now, limit=100, per_endpoint=2, lease_seconds=60) == []
    done = AttemptResult(
        delivery_id=got[0].id,
        ok=True,
        status=200,
        outcome="ok",
        error="",
        duration_ms=1,
        next_attempt_at=None,
    )
    assert await hooks.record("w1", done, now=now)
    [freed] = await hooks.claim("w2", now=now, limit=100, per_endpoint=2, lease_seconds=60)
    assert freed.webhook_id == got[0].webhook_id and freed.message_id == "msg_2"


async def test_claim_holds_later_events_of_a_message_until_the_earlier_was_tried(
    store: Store, hooks: Webhooks, seed
) -> None:
    a = store.accounts.create("a", plan="paid").id
    first_hook = _hook(hooks, a, url="http://127.0.0.1:9/one")
    second_hook = _hook(hooks, a, url="http://127.0.0.1:9/two")
    [r] = seed.message(account_id=a, message_id="msg_0")
    seed.event(account_id=a, message_id="msg_0", recipient_id=r, type_="delivery")
    seed.event(
        account_id=a,
        message_id="msg_0",
        recipient_id=r,
        type_="open",
        data={"ip": "192.0.2.1", "user_agent": "UA"},
    )
    [r1] = seed.message(account_id=a, message_id="msg_1")
    seed.event(account_id=a, message_id="msg_1", recipient_id=r1, type_="delivery")
    now = store.clock.now()
    await hooks.fan_out(now=now)
    got = await hooks.claim("w1", now=now, limit=100, per_endpoint=10, lease_seconds=60)
    assert sorted((d.webhook_id, d.message_id, d.event_type) for d in got) == sorted(
        (h, m, "delivery") for h in (first_hook.id, second_hook.id) for m in ("msg_0", "msg_1")
    )
    # msg_0's delivery to the first endpoint fails (retry at +30): its open may now go ahead,
    # while the second endpoint's open still waits for its delivery in flight.
    failing = next(d for d in got if d.webhook_id == first_hook.id and d.message_id == "msg_0")
    failed = AttemptResult(
        delivery_id=failing.id,
        ok=False,
        status=500,
        outcome="http_status",
        error="HTTP 500",
        duration_ms=5,
        next_attempt_at=now + 30,
    )
    assert await hooks.record("w1", failed, now=now)
    assert not await hooks.record("w1", failed, now=now)  # the CAS: not active any more
    more = await hooks.claim("w2", now=now, limit=100, per_endpoint=10, lease_seconds=60)
    assert [(d.webhook_id, d.message_id, d.event_type) for d in more] == [
        (first_hook.id, "msg_0", "open")
    ]
    assert more[0].recipients == ("r@example.net",) and more[0].tags == ("welcome",)
    assert more[0].event_data == {"ip": "192.0.2.1", "user_agent": "UA"}
    assert more[0].header_message_id == "<msg_0@example.com>"


async def test_expired_lease_is_claimed_again_without_counting_an_attempt(
    store: Store, hooks: Webhooks, clock: FakeClock, seed
) -> None:
    a = store.accounts.create("a", plan="paid").id
    [r] = seed.message(account_id=a, message_id="msg_1")
    _hook(hooks, a)
    seed.event(account_id=a, message_id="msg_1", recipient_id=r, type_="delivery")
    await hooks.fan_out(now=clock.now())
    [d] = await hooks.claim("dead", now=clock.now(), limit=10, per_endpoint=4, lease_seconds=60)
    clock.advance(59)
    assert await hooks.claim("w", now=clock.now(), limit=10, per_endpoint=4, lease_seconds=60) == []
    clock.advance(1)
    [again] = await hooks.claim("w", now=clock.now(), limit=10, per_endpoint=4, lease_seconds=60)
    assert again.id == d.id and again.attempts == 0
    ok = AttemptResult(
        delivery_id=d.id,
        ok=True,
        status=200,
        outcome="ok",
        error="",
        duration_ms=1,
        next_attempt_at=None,
    )
    assert not await hooks.record("dead", ok, now=clock.now())  # the dead owner lost it
    assert await hooks.record("w", ok, now=clock.now())
    assert hooks.delivery(d.id).state == "succeeded"  # type: ignore[union-attr]
    assert [a.attempt for a in hooks.attempts(d.id)] == [1]


async def test_rotation_signs_with_both_secrets_until_the_grace_ends(
    store: Store, hooks: Webhooks, clock: FakeClock
) -> None:
    a = store.accounts.create("a", plan="paid").id
    w = _hook(hooks, a)
    assert hooks.live_secrets(w.id) == ("whsec_test",)
    hooks.rotate_secret(w.id, new_secret="whsec_new", grace=100)
    assert hooks.live_secrets(w.id) == ("whsec_new", "whsec_test")
    clock.advance(100)
    assert hooks.live_secrets(w.id) == ("whsec_new",)
    assert "whsec" not in repr(hooks.get(w.id))


def test_remove_abandons_pending_and_replay_needs_a_live_webhook(
    store: Store, hooks: Webhooks, seed
) -> None:
    a = store.accounts.create("a", plan="paid").id
    [r] = seed.message(account_id=a, message_id="msg_1")
    w = _hook(hooks, a)
    seed.event(account_id=a, message_id="msg_1", recipient_id=r, type_="delivery")
    hooks.fan_out_sync(now=0)
    [d] = hooks.deliveries(webhook_id=w.id)
    assert not hooks.replay(d.id)  # pending: nothing to replay
    assert hooks.remove(w.id) and not hooks.remove(w.id)
    assert hooks.delivery(d.id).state == "abandoned"  # type: ignore[union-attr]
    assert not hooks.replay(d.id) and hooks.replay_abandoned() == 0


def test_migration_starts_the_cursor_after_existing_events(tmp_path: Path) -> None:
    """A store upgraded from schema 1 does not send its history to new webhooks."""
    from relaygate.store.sqlite import db

    path = tmp_path / "old.sqlite3"
    conn = db.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    sql = (Path(db.__file__).parent / "migrations" / "001_initial.sql").read_text()
    for statement in db._split(sql):
        conn.execute(statement)
    conn.execute("INSERT INTO schema_migrations VALUES (1, '001_initial.sql')")
    for _ in range(5):
        conn.execute("INSERT INTO events (account_id, type, created_at) VALUES (1, 'delivery', 0)")
    conn.close()
    s = Store(path).open()
    assert s.webhooks.cursor() == 5
    s.close()


async def test_many_events_of_one_message_still_drain_in_order(
    store: Store, hooks: Webhooks, seed
) -> None:
    a = store.accounts.create("a", plan="paid").id
    [r] = seed.message(account_id=a, message_id="msg_1")
    _hook(hooks, a)
    ids = [
        seed.event(
            account_id=a,
            message_id="msg_1",
            recipient_id=r,
            type_="click",
            data={"url": f"https://x.test/{i}"},
        )
        for i in range(5)
    ]
    hooks.fan_out_sync(now=0)
    order = []

    async def go() -> None:
        while True:
            got = await hooks.claim("w", now=0, limit=10, per_endpoint=4, lease_seconds=60)
            if not got:
                return
            assert len(got) == 1  # one at a time: the next waits for this one
            order.append(got[0].event_id)
            await hooks.record(
                "w",
                AttemptResult(
                    delivery_id=got[0].id,
                    ok=True,
                    status=200,
                    outcome="ok",
                    error="",
                    duration_ms=1,
                    next_attempt_at=None,
                ),
                now=0,
            )

    await go()
    assert order == ids
