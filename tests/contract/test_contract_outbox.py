"""The events outbox through the interface: webhook fan-out exactly once (however many stores
run it), leased deliveries, attempts recorded once; inbound reports matched and unmatched;
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
    [first] = await store.webhooks.claim(
        "dead", now=clock.now(), limit=10, per_endpoint=5, lease_seconds=30
    )
    clock.advance(30)
    [again] = await store.webhooks.claim(
        "live", now=clock.now(), limit=10, per_endpoint=5, lease_seconds=30
    )
    assert again.id == first.id and again.attempts == 0  # no attempt counted


async def test_reports_change_matched_recipients_and_keep_unmatched(store: Store) -> None:
    account = store.accounts.create("r", plan="paid").id
    mid = await delivered(store, account, "a@d.test", "b@d.test")
    matched = await store.inbound.save(
        mail_from="", rcpts=["b@bounces.test"], data=b"dsn", peer="p"
    )
    stray = await store.inbound.save(mail_from="", rcpts=["b@bounces.test"], data=b"??", peer="p")
    assert sorted(m.id for m in store.inbound.pending()) == sorted([matched, stray])
    result = await store.inbound.apply(
        inbound_id=matched,
        kind="bounce",
        message_id=mid,
        changes=[
            ReportChange(
                event_type="bounce",
                to_state="bounced",
                address="A@d.test",
                data={"bounce_type": "hard", "reason": "userunknown"},
                suppress=("userunknown", "hard"),
            )
        ],
    )
    assert result == {"matched": True, "applied": 1, "account_id": account}
    assert [r.state for r in store.messages.recipients(mid)] == ["bounced", "delivered"]
    assert store.suppressions.lookup(account, ["a@d.test"]) == {"a@d.test": "userunknown"}
    kept = await store.inbound.apply(
        inbound_id=stray, kind="bounce", message_id=None, changes=[], unmatched={"n": 1}
    )
    assert kept == {"matched": False}
    [unmatched] = store.messages.events_after(0, types=["inbound_unmatched"])
    assert unmatched.data == {"inbound_id": stray, "kind": "bounce", "n": 1}
    assert store.inbound.pending() == []
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
