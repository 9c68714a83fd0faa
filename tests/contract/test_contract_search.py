"""``Messages.search`` through the interface: newest first, cursor paging without gaps or
repeats, and each filter (recipient without case, tag, status, since) alone and combined,
never another account's messages."""

from __future__ import annotations

from relaygate.clock import FakeClock
from relaygate.store import Store
from relaygate.store.ids import new_message_id
from relaygate.store.models import NewMessage, NewRecipient, Outcome


def admit(store: Store, account: int, rcpts: tuple[str, ...], tags: tuple[str, ...]) -> str:
    mid = new_message_id()
    store.admission.admit_sync(
        NewMessage(
            id=mid,
            account_id=account,
            channel="http",
            from_addr="app@example.com",
            sender_domain="example.com",
            subject="s",
            header_message_id=f"<{mid}@example.com>",
            tags=tags,
            body=b"x",
            recipients=tuple(NewRecipient(address=r, kind="to") for r in rcpts),
            check_suppressions=False,
        )
    )
    return mid


def check_search(store: Store, clock: FakeClock) -> None:
    acme = store.accounts.create("acme", plan="paid").id
    other = store.accounts.create("other", plan="paid").id
    ids = []
    for i in range(12):
        rcpts = (f"u{i}@d.test", "Common@D.test") if i % 2 else (f"u{i}@d.test",)
        ids.append(admit(store, acme, rcpts, ("even",) if i % 2 == 0 else ("odd", "x")))
        clock.advance(10)
    admit(store, other, ("common@d.test",), ("odd",))
    newest = list(reversed(ids))
    assert [m.id for m in store.messages.search(acme, limit=50)] == newest
    pages, before = [], None
    while True:
        page = store.messages.search(acme, limit=5, before=before)
        pages.extend(m.id for m in page)
        if len(page) < 5:
            break
        before = (page[-1].created_at, page[-1].id)
    assert pages == newest
    odd = [m for i, m in enumerate(ids) if i % 2]
    assert [m.id for m in store.messages.search(acme, recipient="common@d.test")] == odd[::-1]
    assert [m.id for m in store.messages.search(acme, recipient="COMMON@d.TEST")] == odd[::-1]
    assert [m.id for m in store.messages.search(acme, recipient="u4@d.test")] == [ids[4]]
    assert store.messages.search(acme, recipient="nobody@d.test") == []
    assert [m.id for m in store.messages.search(acme, tag="odd", limit=2)] == odd[::-1][:2]
    two = store.messages.search(acme, tag="odd", limit=2)
    assert [
        m.id
        for m in store.messages.search(acme, tag="odd", before=(two[-1].created_at, two[-1].id))
    ] == odd[::-1][2:]
    # one recipient delivered, another bounced; status filters by any recipient's state
    [claimed] = [
        c
        for c in store.queue.claim_sync("w", limit=100, lease_seconds=60)
        if c.message_id == ids[3] and c.address == "u3@d.test"
    ] or [None]
    assert claimed is not None
    store.queue.record_sync(
        "w", [Outcome(recipient_id=claimed.id, state="bounced", response="550 no")]
    )
    assert [m.id for m in store.messages.search(acme, status="bounced")] == [ids[3]]
    assert [m.id for m in store.messages.search(acme, status="bounced", tag="odd")] == [ids[3]]
    assert store.messages.search(acme, status="bounced", tag="even") == []
    assert store.messages.search(acme, status="bounced", recipient="u5@d.test") == []
    assert store.messages.search(other, status="bounced") == []
    since = store.messages.search(acme, limit=50)[2].created_at
    assert [m.id for m in store.messages.search(acme, since=since)] == newest[:3]
    assert [m.id for m in store.messages.search(acme, since=since, tag="even")] == [
        i for i in newest[:3] if ids.index(i) % 2 == 0
    ]


def test_search(store: Store, clock: FakeClock) -> None:
    check_search(store, clock)
