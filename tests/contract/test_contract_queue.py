"""The queue through the interface: claims and leases judged by the store's clock, renewal,
outcomes, every allowed and every refused transition, cancel, and operator actions."""

from __future__ import annotations

from itertools import product

import pytest

from relaygate.clock import FakeClock
from relaygate.errors import IllegalTransition
from relaygate.store import Store
from relaygate.store.ids import new_message_id
from relaygate.store.models import NewMessage, NewRecipient, Outcome, PreparedBody
from relaygate.store.states import ALLOWED, State, allowed


def admit(store: Store, account_id: int, *rcpts: str) -> str:
    mid = new_message_id()
    store.admission.admit_sync(
        NewMessage(
            id=mid,
            account_id=account_id,
            channel="smtp",
            from_addr="app@example.com",
            sender_domain="example.com",
            subject="s",
            header_message_id=f"<{mid}@example.com>",
            tags=(),
            body=b"Subject: s\r\n\r\nx\r\n",
            recipients=tuple(NewRecipient(address=r, kind="to") for r in rcpts),
            check_suppressions=True,
        )
    )
    return mid


@pytest.fixture
def account(store: Store) -> int:
    return store.accounts.create("q", plan="paid", daily_quota=10_000, rate_limit=10_000).id


def states(store: Store, mid: str) -> list[str]:
    return [r.state for r in store.messages.recipients(mid)]


async def test_claim_leases_due_work_once(store: Store, account: int) -> None:
    mid = admit(store, account, "a@d.test", "b@d.test")
    got = await store.queue.claim("w1", limit=10, lease_seconds=60)
    assert sorted(c.address for c in got) == ["a@d.test", "b@d.test"]
    assert all(c.message_id == mid and c.sender_domain == "example.com" for c in got)
    assert await store.queue.claim("w2", limit=10, lease_seconds=60) == []  # leased
    assert states(store, mid) == ["active", "active"]
    assert store.queue.next_due() == got[0].queued_at + 60  # the lease's end


async def test_an_expired_lease_goes_back_by_the_store_clock(
    store: Store, account: int, clock: FakeClock
) -> None:
    admit(store, account, "a@d.test")
    [first] = await store.queue.claim("dead", limit=10, lease_seconds=60)
    clock.advance(59)
    assert await store.queue.claim("w2", limit=10, lease_seconds=60) == []
    clock.advance(1)  # the lease ends now
    [again] = await store.queue.claim("w2", limit=10, lease_seconds=60)
    assert again.id == first.id
    # the dead worker's late outcome is refused: its lease is lost
    late = Outcome(recipient_id=first.id, state="delivered", response="250 ok")
    assert await store.queue.record("dead", [late]) == [first.id]
    assert await store.queue.record("w2", [late]) == []
    types = [e.type for e in store.messages.events_after(0) if e.recipient_id == first.id]
    assert types == ["queued", "claimed", "lease_expired", "claimed", "delivery"]


async def test_renew_extends_only_a_lease_still_held(
    store: Store, account: int, clock: FakeClock
) -> None:
    admit(store, account, "a@d.test", "b@d.test")
    a, b = await store.queue.claim("w1", limit=10, lease_seconds=60)
    clock.advance(50)
    assert await store.queue.renew("w1", [a.id], lease_seconds=60) == [a.id]
    assert await store.queue.renew("other", [b.id], lease_seconds=60) == []  # not its lease
    clock.advance(10)  # b's lease ends; a's runs to 110
    [taken] = await store.queue.claim("w2", limit=10, lease_seconds=60)
    assert taken.id == b.id
    assert await store.queue.renew("w1", [b.id], lease_seconds=60) == []  # lost: not taken back
    clock.advance(49)
    assert await store.queue.claim("w3", limit=10, lease_seconds=60) == []
    assert (
        await store.queue.record(
            "w1", [Outcome(recipient_id=a.id, state="delivered", response="250 ok")]
        )
        == []
    )


async def test_a_worker_never_reclaims_what_it_has_in_flight(
    store: Store, account: int, clock: FakeClock
) -> None:
    """Past its lease's end (a slow peer, a clock jump), a recipient still in flight stays with
    its worker: its own claim passes it over, renewing takes it up again, and only another
    worker's claim — had the lease stayed expired — would put it back."""
    admit(store, account, "a@d.test", "b@d.test")
    a, b = await store.queue.claim("w1", limit=10, lease_seconds=60)
    clock.advance(61)  # both leases ended; a is still in flight, b was abandoned
    again = await store.queue.claim("w1", limit=10, lease_seconds=60, keep=[a.id])
    assert [c.id for c in again] == [b.id]  # b went back and came again; a never did
    assert await store.queue.renew("w1", [a.id], lease_seconds=60) == [a.id]  # still its own
    clock.advance(59)
    assert await store.queue.claim("w2", limit=10, lease_seconds=60) == []
    delivered = Outcome(recipient_id=a.id, state="delivered", response="250 ok")
    assert await store.queue.record("w1", [delivered]) == []
    types = [e.type for e in store.messages.events_after(0) if e.recipient_id == a.id]
    assert types == ["queued", "claimed", "delivery"]


async def test_repeated_lease_losses_hold_the_recipient(
    store: Store, account: int, clock: FakeClock
) -> None:
    mid = admit(store, account, "a@d.test")
    for _ in range(2):
        assert await store.queue.claim("w", limit=1, lease_seconds=10, max_lease_losses=2)
        clock.advance(10)
    assert await store.queue.claim("w", limit=1, lease_seconds=10, max_lease_losses=2) == []
    assert states(store, mid) == ["held"]


async def test_outcomes_release_and_suppress(store: Store, account: int, clock: FakeClock) -> None:
    mid = admit(store, account, "ok@d.test", "later@d.test", "gone@d.test", "back@d.test")
    got = {c.address: c for c in await store.queue.claim("w", limit=10, lease_seconds=60)}
    lost = await store.queue.record(
        "w",
        [
            Outcome(recipient_id=got["ok@d.test"].id, state="delivered", response="250 ok"),
            Outcome(
                recipient_id=got["later@d.test"].id,
                state="deferred",
                response="451 later",
                next_attempt_at=clock.now() + 300,
            ),
            Outcome(
                recipient_id=got["gone@d.test"].id,
                state="bounced",
                response="550 no",
                data={"bounce_type": "hard", "reason": "userunknown"},
                suppress="userunknown",
            ),
        ],
    )
    assert lost == []
    await store.queue.release("w", [got["back@d.test"].id])
    assert states(store, mid) == ["delivered", "deferred", "bounced", "queued"]
    assert store.suppressions.lookup(account, ["gone@d.test", "ok@d.test"]) == {
        "gone@d.test": "userunknown"
    }
    [due] = await store.queue.claim("w", limit=10, lease_seconds=3600)  # the released one
    assert due.address == "back@d.test"
    clock.advance(300)
    [retry] = await store.queue.claim("w", limit=10, lease_seconds=60)
    assert retry.address == "later@d.test" and retry.attempts == 1


async def _recipient_in(store: Store, account: int, state: State, clock: FakeClock) -> int:
    """A fresh recipient brought into ``state`` through the interface only."""
    if state is State.SUPPRESSED:
        store.suppressions.add(account, "sup@d.test", reason="manual", source="operator")
        mid = admit(store, account, "sup@d.test")
        store.suppressions.remove(account, "sup@d.test")
        return store.messages.recipients(mid)[0].id
    mid = admit(store, account, f"{state.value}@d.test")
    [rid] = [r.id for r in store.messages.recipients(mid)]
    if state is State.QUEUED:
        return rid
    if state in (State.HELD, State.CANCELLED):
        store.queue.operate([rid], "hold" if state is State.HELD else "cancel")
        return rid
    got = await store.queue.claim_message("w", mid, lease_seconds=60)
    assert [c.id for c in got] == [rid]
    if state is State.ACTIVE:
        return rid
    final = {State.COMPLAINED: "delivered"}.get(state, state.value)
    nxt = clock.now() + 3600 if state is State.DEFERRED else None
    out = Outcome(recipient_id=rid, state=final, response="x", next_attempt_at=nxt)
    assert await store.queue.record("w", [out]) == []
    if state is State.COMPLAINED:
        assert store.queue.transition(rid, State.DELIVERED, State.COMPLAINED, event_type="c")
    return rid


async def test_every_transition_is_allowed_or_refused_as_the_table_says(
    store: Store, account: int, clock: FakeClock
) -> None:
    for src, dst in product(State, State):
        rid = await _recipient_in(store, account, src, clock)
        if allowed(src, dst):
            assert store.queue.transition(rid, src, dst, event_type="test", data={"n": 1})
            event = store.messages.events_after(0, types=["test"])[-1]
            assert (event.recipient_id, event.state_from, event.state_to) == (rid, src, dst)
        else:
            with pytest.raises(IllegalTransition):
                store.queue.transition(rid, src, dst, event_type="test")
    assert len(ALLOWED) == sum(allowed(s, d) for s, d in product(State, State))


async def test_a_guarded_transition_from_the_wrong_state_changes_nothing(
    store: Store, account: int, clock: FakeClock
) -> None:
    rid = await _recipient_in(store, account, State.DEFERRED, clock)
    assert not store.queue.transition(rid, State.QUEUED, State.HELD, event_type="held")
    assert not store.queue.transition(rid, State.HELD, State.QUEUED, event_type="released")
    assert store.queue.transition(rid, State.DEFERRED, State.HELD, event_type="held")


async def test_cancel_takes_what_waits_and_leaves_what_is_in_flight_or_done(
    store: Store, account: int, clock: FakeClock
) -> None:
    mid = admit(store, account, "q@d.test", "a@d.test", "d@d.test", "h@d.test", "x@d.test")
    rids = {r.address: r.id for r in store.messages.recipients(mid)}
    store.queue.operate([rids["h@d.test"]], "hold")
    got = {c.address: c for c in await store.queue.claim("w", limit=3, lease_seconds=60)}
    outcomes = []
    if "d@d.test" in got:
        outcomes.append(Outcome(recipient_id=rids["d@d.test"], state="delivered", response="ok"))
    await store.queue.record("w", outcomes)
    before = {r.address: r.state for r in store.messages.recipients(mid)}
    other = store.accounts.create("other", plan="paid").id
    assert store.queue.cancel(mid, account_id=other) == 0  # not its message
    count = store.queue.cancel(mid, account_id=account)
    after = {r.address: r.state for r in store.messages.recipients(mid)}
    for address, state in before.items():
        if state in ("queued", "deferred", "held"):
            assert after[address] == "cancelled"
        else:
            assert after[address] == state  # active or delivered: untouched
    assert count == sum(s in ("queued", "deferred", "held") for s in before.values()) > 0
    cancelled = store.messages.events_after(0, types=["cancelled"])
    assert len(cancelled) == count and all(e.state_to == "cancelled" for e in cancelled)
    assert store.queue.cancel(mid) == 0  # nothing left to cancel


async def test_operator_actions(store: Store, account: int, clock: FakeClock) -> None:
    mid = admit(store, account, "a@d.test", "b@d.test")
    ids = store.queue.select(ids=[mid], states=["queued"])
    assert len(ids) == 2 and store.queue.select(domain="d.test", states=["held"]) == []
    assert store.queue.operate(ids, "hold") == 2
    assert [e.address for e in store.queue.entries(state="held")] == ["a@d.test", "b@d.test"]
    assert store.queue.operate(ids, "release") == 2
    assert store.queue.operate(ids[:1], "delete") == 1
    assert states(store, mid) == ["bounced", "queued"]
    assert store.queue.count_by_state() == {"bounced": 1, "queued": 1}
    assert store.queue.oldest_pending() == clock.now()


def test_a_recipient_names_its_message(store: Store, account: int) -> None:
    mid = admit(store, account, "a@d.test", "b@d.test")
    ids = store.queue.select(ids=[mid], states=["queued"])
    assert [store.messages.of_recipient(i) for i in ids] == [mid, mid]
    assert store.messages.of_recipient(max(ids) + 1000) is None


BODY = b"Subject: s\r\n\r\nx\r\n"  # what ``admit`` stores
SIGNATURE = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com;\r\n b=c2ln\r\n"


@pytest.mark.parametrize(
    ("prepared", "sent"),
    [
        # the signature as a prefix of the stored body (the store may keep just the prefix)
        (dict(data=SIGNATURE + BODY, prefix=SIGNATURE), SIGNATURE + BODY),
        # sent unchanged (no key): nothing to add, the body becomes final as it is
        (dict(data=BODY, prefix=b""), BODY),
        # a body that had to change (line endings): stored whole
        (dict(data=SIGNATURE + b"Subject: t\r\n\r\ny\r\n"), SIGNATURE + b"Subject: t\r\n\r\ny\r\n"),
    ],
    ids=["prefix", "unchanged", "whole"],
)
async def test_the_prepared_body_is_stored_once_with_the_first_outcome(
    store: Store, account: int, prepared: dict[str, bytes], sent: bytes
) -> None:
    mid = admit(store, account, "a@d.test", "b@d.test")
    assert store.messages.body_for_delivery(mid) == (BODY, False)
    first, second = await store.queue.claim("w", limit=2, lease_seconds=60)
    deferred = Outcome(recipient_id=first.id, state="deferred", response="451 later")
    body = PreparedBody(message_id=mid, ordinal=None, **prepared)
    assert await store.queue.record("w", [deferred], prepared=body) == []
    assert store.messages.body_for_delivery(mid) == (sent, True)
    assert store.messages.body(mid) == sent
    # the first stored version wins: a later one (another worker's) changes nothing
    other = PreparedBody(message_id=mid, ordinal=None, data=b"X" + BODY, prefix=b"X")
    delivered = Outcome(recipient_id=second.id, state="delivered", response="250 ok")
    assert await store.queue.record("w", [delivered], prepared=other) == []
    assert store.messages.body_for_delivery(mid) == (sent, True)
