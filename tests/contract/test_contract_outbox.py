"""The events outbox through the interface: webhook fan-out exactly once (however many stores
run it), leased deliveries, attempts recorded once; inbound reports applied to the bound
recipient only, unmatched ones kept, retention;
tracking hits; the status views."""

from __future__ import annotations

from relaygate.clock import FakeClock
from relaygate.store import Store
from relaygate.store.ids import new_message_id
from relaygate.store.models import (
    AttemptResult,
    HitFlags,
    NewMessage,
    NewRecipient,
    Outcome,
    ReportChange,
    TrackingHit,
)


async def delivered(store: Store, account: int, *rcpts: str) -> str:
    """A message whose recipients were delivered (each delivery is an outbox event)."""
    mid = new_message_id()
    await store.admission.admit(
        NewMessage(
            id=mid,
            account_id=account,
            channel="http",
            from_addr="app@example.com",
            sender_domain="example.com",
            subject="s",
            header_message_id=f"<{mid}@example.com>",
            tags=("welcome",),
            body=b"x",
            recipients=tuple(NewRecipient(address=r, kind="to") for r in rcpts),
            check_suppressions=False,
        )
    )
    got = await store.queue.claim_message("w", mid, lease_seconds=60)
    await store.queue.record(
        "w", [Outcome(recipient_id=c.id, state="delivered", response="250 ok") for c in got]
    )
    return mid


async def test_fan_out_is_exactly_once_across_stores(
    store: Store, another: Store, clock: FakeClock
) -> None:
    account = store.accounts.create("w", plan="paid").id
    all_events = store.webhooks.create(
        account_id=account, url="https://a.test/", events=(), secret="s1"
    )
    bounces = store.webhooks.create(
        account_id=account, url="https://b.test/", events=("bounce",), secret="s2"
    )
    await delivered(store, account, "a@d.test", "b@d.test")
    created = 0
    for _ in range(3):  # two dispatchers, several rounds, racing
        for s in (store, another):
            made, _more = await s.webhooks.fan_out(now=clock.now())
            created += made
    assert created == 2
    assert [d.event_type for d in store.webhooks.deliveries(webhook_id=all_events.id)] == [
        "delivery",
        "delivery",
    ]
    assert store.webhooks.deliveries(webhook_id=bounces.id) == []
    assert not store.webhooks.events_waiting()


async def test_a_delivery_is_leased_once_and_its_attempt_recorded_once(
    store: Store, another: Store, clock: FakeClock
) -> None:
    account = store.accounts.create("w", plan="paid").id
    hook = store.webhooks.create(account_id=account, url="https://a.test/", events=(), secret="s1")
    mid = await delivered(store, account, "a@d.test")
    await store.webhooks.fan_out(now=clock.now())
    claims = [
        await s.webhooks.claim("d", now=clock.now(), limit=10, per_endpoint=5, lease_seconds=30)
        for s in (store, another)
    ]
    [[claimed], []] = claims
    assert claimed.secrets == ("s1",) and claimed.message_id == mid
    assert claimed.recipients == ("a@d.test",) and claimed.tags == ("welcome",)
    result = AttemptResult(
        delivery_id=claimed.id,
        ok=False,
        status=503,
        outcome="http_status",
        error="HTTP 503",
        duration_ms=5,
        next_attempt_at=clock.now() + 30,
    )
    assert await store.webhooks.record("d", result, now=clock.now())
    assert not await another.webhooks.record("d", result, now=clock.now())  # lease gone
    assert [a.attempt for a in store.webhooks.attempts(claimed.id)] == [1]
    assert store.webhooks.counts(hook.id)["pending"] == 1
    clock.advance(30)
    [again] = await another.webhooks.claim(
        "e", now=clock.now(), limit=10, per_endpoint=5, lease_seconds=30
    )
    assert again.id == claimed.id and again.attempts == 1


async def test_an_expired_delivery_lease_goes_back(store: Store, clock: FakeClock) -> None:
    account = store.accounts.create("w", plan="paid").id
    store.webhooks.create(account_id=account, url="https://a.test/", events=(), secret="s1")
    await delivered(store, account, "a@d.test")
    await store.webhooks.fan_out(now=clock.now())
    # no ``now``: the store's clock judges the leases
    [first] = await store.webhooks.claim("dead", limit=10, per_endpoint=5, lease_seconds=30)
    clock.advance(29)
    assert await store.webhooks.claim("live", limit=10, per_endpoint=5, lease_seconds=30) == []
    clock.advance(1)
    [again] = await store.webhooks.claim("live", limit=10, per_endpoint=5, lease_seconds=30)
    assert again.id == first.id and again.attempts == 0  # no attempt counted


async def test_reports_change_only_the_bound_recipient_and_keep_unmatched(
    store: Store, clock: FakeClock
) -> None:
    account = store.accounts.create("r", plan="paid").id
    mid = await delivered(store, account, "a@d.test", "b@d.test")
    a, b = store.messages.recipients(mid)
    matched = await store.inbound.save(
        mail_from="", rcpts=["x@bounces.test"], data=b"dsn", peer="p"
    )
    stray = await store.inbound.save(mail_from="", rcpts=["y@bounces.test"], data=b"??", peer="p")
    legacy = await store.inbound.save(mail_from="", rcpts=["z@bounces.test"], data=b"old", peer="p")
    foreign = await store.inbound.save(mail_from="", rcpts=["w@bounces.test"], data=b"x", peer="p")
    assert sorted(m.id for m in store.inbound.pending()) == sorted(
        [matched, stray, legacy, foreign]
    )
    change = ReportChange(
        event_type="bounce",
        to_state="bounced",
        data={"bounce_type": "hard", "reason": "userunknown"},
        suppress=("userunknown", "hard"),
    )
    result = await store.inbound.apply(
        inbound_id=matched, kind="bounce", message_id=mid, recipient_id=a.id, changes=[change]
    )
    assert result == {
        "status": "applied",
        "reason": "",
        "account_id": account,
        "message_id": mid,
        "recipient_id": a.id,
    }
    assert [r.state for r in store.messages.recipients(mid)] == ["bounced", "delivered"]
    assert store.suppressions.lookup(account, ["a@d.test", "b@d.test"]) == {
        "a@d.test": "userunknown"
    }
    # No token: nothing changes, no account.
    kept = await store.inbound.apply(
        inbound_id=stray,
        kind="bounce",
        message_id=None,
        recipient_id=0,
        changes=[change],
        reason="no_token",
    )
    assert (kept["status"], kept["reason"], kept["account_id"]) == ("unmatched", "no_token", None)
    # A message-level token names the message (its account counts it) but no recipient.
    old = await store.inbound.apply(
        inbound_id=legacy,
        kind="bounce",
        message_id=mid,
        recipient_id=0,
        changes=[change],
        reason="message_token",
    )
    assert (old["status"], old["account_id"]) == ("unmatched", account)
    # A recipient that is not the message's changes nothing either.
    other = await store.inbound.apply(
        inbound_id=foreign,
        kind="bounce",
        message_id=mid,
        recipient_id=b.id + 1000,
        changes=[change],
    )
    assert (other["status"], other["reason"]) == ("unmatched", "unknown_recipient")
    assert [r.state for r in store.messages.recipients(mid)] == ["bounced", "delivered"]
    assert store.inbound.pending() == []
    assert {r.id: r.status for r in store.inbound.reports(statuses=["unmatched"])} == {
        stray: "unmatched",
        legacy: "unmatched",
        foreign: "unmatched",
    }
    assert store.inbound.counts() == {
        account: {"applied": 1, "unmatched": 2},
        None: {"unmatched": 1},
    }
    mine = store.inbound.reports(account_id=account)
    assert sorted(r.id for r in mine) == sorted([matched, legacy, foreign])
    assert len(store.inbound.reports(limit=1)) == 1
    # Retention drops bytes of reports processed before the cutoff, rows stay.
    clock.advance(10)
    assert await store.inbound.purge(older_than=clock.now() - 5) == 4
    found = store.inbound.report(matched)
    assert found is not None and found[0].purged and found[1] == b"" and found[0].size == 3
    assert store.messages.by_header_id(f"{mid}@example.com") == mid


async def test_tracking_hits_are_classified_by_the_caller(store: Store, clock: FakeClock) -> None:
    account = store.accounts.create("t", plan="paid").id
    mid = await delivered(store, account, "a@d.test")
    seen: list[tuple[float | None, int]] = []

    def classify(hit: TrackingHit, since: float | None, humans_before: int) -> HitFlags:
        seen.append((since, humans_before))
        return HitFlags(is_proxy=False, is_scanner=hit.method == "HEAD", first=humans_before == 0)

    clock.advance(100)

    def hit(method: str, message_id: str = mid, owner: int = account) -> TrackingHit:
        return TrackingHit(
            kind="o",
            account_id=owner,
            message_id=message_id,
            recipient_id=0,
            url=None,
            ip="192.0.2.1",
            user_agent="ua",
            method=method,
            at=clock.now(),
        )

    kept = await store.tracking.record_hits(
        [hit("HEAD"), hit("GET"), hit("GET"), hit("GET", owner=999), hit("GET", "msg_gone")],
        classify,
    )
    assert kept == 3
    assert seen == [(100.0, 0), (100.0, 0), (100.0, 1)]
    opens = store.messages.events_after(0, types=["open"])
    assert [(e.data["is_scanner"], e.data["first"]) for e in opens] == [
        (True, True),
        (False, True),
        (False, False),
    ]


async def test_status_views(store: Store, clock: FakeClock) -> None:
    account = store.accounts.create("s", plan="paid").id
    await delivered(store, account, "a@d.test")
    store.identities.add(account, "pending.test")
    assert store.status.queue_by_state() == {"delivered": 1}
    assert store.status.outcome_counts(since=clock.now() - 60)["delivered"] == 1
    assert store.status.oldest_pending() is None
    assert [d.domain for d in store.status.unverified_domains()] == ["pending.test"]
    assert store.status.failing_webhooks(since=0) == []
