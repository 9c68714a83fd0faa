"""Usage per UTC day through the interface: what each outcome adds, counted in recipients
(a recipient's repeated deferrals, opens and clicks once; proxies and scanners never), by the
day each happened, per account."""

from __future__ import annotations

from relaygate.clock import FakeClock, utc_day
from relaygate.store import Store
from relaygate.store.ids import new_message_id
from relaygate.store.models import (
    HitFlags,
    NewMessage,
    NewRecipient,
    Outcome,
    ReportChange,
    TrackingHit,
    UsageDay,
)


async def admit(store: Store, account: int, *rcpts: str, suppressed: str = "") -> str:
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
            tags=(),
            body=b"x",
            recipients=tuple(
                NewRecipient(address=r, kind="to", suppressed="manual" if r == suppressed else "")
                for r in rcpts
            ),
            check_suppressions=False,
        )
    )
    return mid


async def outcome(store: Store, mid: str, clock: FakeClock, **states: str) -> None:
    """Claim the message's pending recipients and record ``states`` (local part → state);
    the others are given back."""
    got = await store.queue.claim_message("w", mid, lease_seconds=60)
    chosen = [c for c in got if c.address.split("@")[0] in states]
    await store.queue.record(
        "w",
        [
            Outcome(
                recipient_id=c.id,
                state=states[c.address.split("@")[0]],
                response="250 ok",
                next_attempt_at=clock.now(),
            )
            for c in chosen
        ],
    )
    await store.queue.release("w", [c.id for c in got if c not in chosen])


async def test_each_outcome_counts_once_per_recipient_on_its_day(
    store: Store, another: Store, clock: FakeClock
) -> None:
    account = store.accounts.create("u", plan="paid").id
    other = store.accounts.create("v", plan="paid").id
    day1 = utc_day(clock.now())
    mid = await admit(store, account, "a@d.test", "b@d.test", "c@d.test", suppressed="c@d.test")
    await admit(store, other, "z@d.test")
    await outcome(store, mid, clock, a="deferred")
    await outcome(store, mid, clock, a="deferred")  # the same recipient again
    clock.advance(86400)  # the next UTC day
    day2 = utc_day(clock.now())
    await outcome(store, mid, clock, a="delivered", b="bounced")
    a, _, _ = store.messages.recipients(mid)
    report = await store.inbound.save(mail_from="", rcpts=["x@b.test"], data=b"arf", peer="p")
    await store.inbound.apply(
        inbound_id=report,
        kind="complaint",
        message_id=mid,
        recipient_id=a.id,
        changes=[ReportChange(event_type="complaint", to_state="complained", data={})],
    )

    def classify(hit: TrackingHit, since: float | None, humans_before: int) -> HitFlags:
        scanner = hit.method == "HEAD"
        return HitFlags(
            is_proxy=False, is_scanner=scanner, first=not scanner and humans_before == 0
        )

    def hit(kind: str, method: str = "GET") -> TrackingHit:
        return TrackingHit(
            kind=kind,
            account_id=account,
            message_id=mid,
            recipient_id=0,
            url="https://x.test/" if kind == "c" else None,
            ip="192.0.2.1",
            user_agent="ua",
            method=method,
            at=clock.now(),
        )

    await store.tracking.record_hits(
        [hit("o", "HEAD"), hit("o"), hit("o"), hit("c"), hit("c")], classify
    )
    assert another.usage.days(account, first=day1, last=day2) == [
        UsageDay(day=day1, accepted=2, suppressed=1, deferred=1),
        UsageDay(day=day2, delivered=1, bounced=1, complained=1, opened=1, clicked=1),
    ]
    assert another.usage.days(account, first=day2, last=day2)[0].day == day2
    assert another.usage.days(other, first=day1, last=day2) == [UsageDay(day=day1, accepted=1)]
    assert another.usage.days(12345, first=day1, last=day2) == []
