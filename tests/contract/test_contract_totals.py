"""``Status.totals`` and ``Status.backlog`` through the interface: the running totals behind
/metrics count every row exactly once along a chain of cursors, whichever store (process) reads,
and the backlog is what is pending now."""

from __future__ import annotations

from relaygate.clock import FakeClock
from relaygate.store import Store
from relaygate.store.ids import new_message_id
from relaygate.store.models import (
    AttemptResult,
    NewMessage,
    NewRecipient,
    Outcome,
    Totals,
    TotalsCursor,
)

BUCKETS = (1.0, 10.0, 60.0)


async def admit(store: Store, account: int, channel: str, *rcpts: str, suppressed: str = "") -> str:
    mid = new_message_id()
    await store.admission.admit(
        NewMessage(
            id=mid,
            account_id=account,
            channel=channel,
            from_addr="app@example.com",
            sender_domain="example.com",
            subject="s",
            header_message_id=f"<{mid}@example.com>",
            tags=(),
            body=b"x",
            recipients=tuple(
                NewRecipient(address=r, kind="to", suppressed=suppressed or None) for r in rcpts
            ),
            check_suppressions=False,
        )
    )
    return mid


def summed(*parts: Totals) -> dict[str, object]:
    """The totals of a chain of reads, added up as a reader does."""
    out: dict[str, dict[object, int]] = {}
    flat = {"delivered": 0, "deferred": 0, "expired": 0, "complained": 0}
    latency = [0] * (len(BUCKETS) + 1)
    for t in parts:
        for name in (
            "messages_accepted",
            "recipients_accepted",
            "bounced",
            "webhook_attempts",
            "webhook_failures",
        ):
            for key, n in getattr(t, name).items():
                out.setdefault(name, {})[key] = out.get(name, {}).get(key, 0) + n
        for name in flat:
            flat[name] += getattr(t, name)
        latency = [a + b for a, b in zip(latency, t.latency, strict=True)]
    return {**out, **flat, "latency": latency}


async def test_totals_count_each_outcome_once_along_the_cursors(
    store: Store, another: Store, clock: FakeClock
) -> None:
    account = store.accounts.create("m", plan="paid").id
    hook = store.webhooks.create(account_id=account, url="https://a.test/", events=(), secret="s")
    first = store.status.totals(TotalsCursor(), latency_buckets=BUCKETS)
    assert summed(first) == {
        "delivered": 0,
        "deferred": 0,
        "expired": 0,
        "complained": 0,
        "latency": [0, 0, 0, 0],
    }
    mid = await admit(store, account, "http", "a@d.test", "b@d.test", "c@d.test", "e@d.test")
    await admit(store, account, "smtp", "s@d.test", suppressed="bounce")
    clock.advance(7)
    got = {c.address: c.id for c in await store.queue.claim_message("w", mid, lease_seconds=60)}
    await store.queue.record(
        "w",
        [
            Outcome(recipient_id=got["a@d.test"], state="delivered", response="250 ok"),
            Outcome(
                recipient_id=got["b@d.test"],
                state="deferred",
                response="451 later",
                next_attempt_at=clock.now() + 300,
            ),
            Outcome(
                recipient_id=got["c@d.test"],
                state="bounced",
                response="550 no",
                data={"reason": "userunknown", "bounce_type": "hard"},
            ),
            Outcome(recipient_id=got["e@d.test"], state="expired", response="too old"),
        ],
    )
    second = store.status.totals(first.cursor, latency_buckets=BUCKETS)
    assert summed(second) == {
        "messages_accepted": {"http": 1, "smtp": 1},
        "recipients_accepted": {"http": 4, "smtp": 1},
        "bounced": {("hard", "userunknown"): 1, ("hard", "suppressed"): 1},
        "delivered": 1,
        "deferred": 1,
        "expired": 1,
        "complained": 0,
        "latency": [0, 1, 0, 0],  # 7 s: in the 10 s bucket
    }
    assert second.latency_sum == 7.0
    assert store.status.totals(second.cursor, latency_buckets=BUCKETS).delivered == 0

    # the deferred one is delivered later; a webhook attempt fails, the retry succeeds
    clock.advance(300)
    [again] = await another.queue.claim_message("w2", mid, lease_seconds=60)
    await another.queue.record(
        "w2", [Outcome(recipient_id=again.id, state="delivered", response="250 ok")]
    )
    await store.webhooks.fan_out(now=clock.now())
    [claimed, *_] = await store.webhooks.claim(
        "d", now=clock.now(), limit=1, per_endpoint=1, lease_seconds=30
    )
    for ok in (False, True):
        result = AttemptResult(
            delivery_id=claimed.id,
            ok=ok,
            status=200 if ok else 500,
            outcome="ok" if ok else "http_status",
            error="" if ok else "HTTP 500",
            duration_ms=3,
            next_attempt_at=None if ok else clock.now(),
        )
        assert await store.webhooks.record("d", result, now=clock.now())
        if not ok:
            [claimed] = await store.webhooks.claim(
                "d", now=clock.now(), limit=1, per_endpoint=1, lease_seconds=30
            )
    third = another.status.totals(second.cursor, latency_buckets=BUCKETS)  # another process
    assert third.delivered == 1 and third.recipients_accepted == {}
    assert third.latency == (0, 0, 0, 1)  # 307 s: past the largest bound
    assert third.webhook_attempts == {claimed.event_type: 2}
    assert third.webhook_failures == {claimed.event_type: 1}
    whole = another.status.totals(TotalsCursor(), latency_buckets=BUCKETS)
    assert summed(whole) == summed(first, second, third)
    assert store.webhooks.counts(hook.id)["succeeded"] == 1


async def test_backlog_is_what_waits_now(store: Store, clock: FakeClock) -> None:
    account = store.accounts.create("b", plan="paid").id
    empty = store.status.backlog()
    assert empty.recipients == {} and empty.oldest_queued_at is None
    assert empty.webhook_deliveries == {}
    queued_at = clock.now()
    mid = await admit(store, account, "http", "a@d.test", "b@d.test")
    clock.advance(5)
    await admit(store, account, "http", "c@d.test")
    [a, _b] = await store.queue.claim_message("w", mid, lease_seconds=60)
    await store.queue.record(
        "w", [Outcome(recipient_id=a.id, state="delivered", response="250 ok")]
    )
    backlog = store.status.backlog()
    assert backlog.recipients == {"queued": 1, "active": 1}  # delivered ones are not backlog
    assert backlog.oldest_queued_at == queued_at
    other = store.accounts.create("b2", plan="paid").id
    await admit(store, other, "http", "o@d.test")
    assert store.status.backlog(account).recipients == {"queued": 1, "active": 1}
    assert store.status.backlog(other).recipients == {"queued": 1}
    assert store.status.backlog(other).oldest_queued_at == clock.now()
    assert store.status.backlog().recipients == {"queued": 2, "active": 1}
