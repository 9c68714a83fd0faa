from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from relaygate.clock import FakeClock
from relaygate.errors import LimitExceeded
from relaygate.policy import Limits
from relaygate.store.ids import new_message_id
from relaygate.store.models import NewMessage, NewRecipient, Outcome
from relaygate.store.sqlite import SqliteStore as Store


def message(account_id: int, n: int = 1, body: bytes = b"Subject: x\r\n\r\nhi\r\n") -> NewMessage:
    return NewMessage(
        id=new_message_id(),
        account_id=account_id,
        channel="http",
        from_addr="a@example.com",
        sender_domain="example.com",
        subject="x",
        header_message_id="<x@relay.test>",
        tags=("t",),
        body=body,
        recipients=tuple(NewRecipient(address=f"r{i}@dest.test", kind="to") for i in range(n)),
        check_suppressions=False,
    )


def test_two_workers_claiming_concurrently_never_share_a_recipient(
    tmp_path: Path, clock: FakeClock, store: Store, sender: dict[str, Any]
) -> None:
    for _ in range(40):
        store.admission.admit_sync(message(sender["account"].id, 5))
    results: dict[str, list[int]] = {"a": [], "b": []}

    def worker(name: str) -> None:
        other = Store(store.path, clock=clock).open()
        try:
            while True:
                got = other.queue.claim_sync(name, limit=7, lease_seconds=60)
                if not got:
                    return
                results[name].extend(c.id for c in got)
        finally:
            other.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a, b = set(results["a"]), set(results["b"])
    assert not a & b
    assert len(a) + len(b) == 200
    assert len(results["a"]) == len(a) and len(results["b"]) == len(b)


def test_expired_lease_is_claimed_again_and_old_owner_cannot_record(
    clock: FakeClock, store: Store, sender: dict[str, Any]
) -> None:
    store.admission.admit_sync(message(sender["account"].id, 1))
    first = store.queue.claim_sync("w1", limit=10, lease_seconds=60)
    assert len(first) == 1
    assert store.queue.claim_sync("w2", limit=10, lease_seconds=60) == []
    clock.advance(61)
    second = store.queue.claim_sync("w2", limit=10, lease_seconds=60)
    assert [c.id for c in second] == [first[0].id]
    # The crashed worker comes back late: its outcome is refused (lease lost), w2's is recorded.
    assert store.queue.record_sync(
        "w1", [Outcome(recipient_id=first[0].id, state="delivered", response="250 ok")]
    ) == [first[0].id]
    assert (
        store.queue.record_sync(
            "w2", [Outcome(recipient_id=first[0].id, state="delivered", response="250 ok")]
        )
        == []
    )
    row = store.messages.recipients(first[0].message_id)[0]
    assert row.state == "delivered" and row.attempts == 1
    types = [e.type for e in store.messages.events_after(0)]
    assert types == ["queued", "claimed", "lease_expired", "claimed", "delivery"]


def test_repeated_lease_losses_hold_the_recipient(
    clock: FakeClock, store: Store, sender: dict[str, Any]
) -> None:
    store.admission.admit_sync(message(sender["account"].id, 1))
    for _ in range(3):
        assert store.queue.claim_sync("w", limit=1, lease_seconds=10, max_lease_losses=3)
        clock.advance(11)
    assert store.queue.claim_sync("w", limit=1, lease_seconds=10, max_lease_losses=3) == []
    assert store.queue.count_by_state() == {"held": 1}


def test_deferred_recipient_is_due_only_at_its_time(
    clock: FakeClock, store: Store, sender: dict[str, Any]
) -> None:
    store.admission.admit_sync(message(sender["account"].id, 1))
    c = store.queue.claim_sync("w", limit=1, lease_seconds=60)[0]
    store.queue.record_sync(
        "w",
        [
            Outcome(
                recipient_id=c.id,
                state="deferred",
                response="450 later",
                next_attempt_at=clock.now() + 300,
            )
        ],
    )
    clock.advance(299)
    assert store.queue.claim_sync("w", limit=1, lease_seconds=60) == []
    clock.advance(1)
    again = store.queue.claim_sync("w", limit=1, lease_seconds=60)
    assert [x.id for x in again] == [c.id] and again[0].attempts == 1


async def test_group_commit_answers_each_caller_after_one_shared_commit(
    store: Store, sender: dict[str, Any]
) -> None:
    msgs = [message(sender["account"].id, 1) for _ in range(200)]
    batches_before = store.core.writer.batches
    await asyncio.gather(*(store.admission.admit(m, limits=False) for m in msgs))
    assert store.core.writer.jobs >= 200
    assert store.core.writer.batches - batches_before < 200  # grouped
    other = Store(store.path).open()  # a fresh connection sees every acknowledged message
    assert all(other.messages.get(m.id) is not None for m in msgs)
    other.close()


async def test_one_callers_error_does_not_undo_the_others(
    store: Store, sender: dict[str, Any]
) -> None:
    good = message(sender["account"].id, 1)
    dup = message(sender["account"].id, 1)
    results = await asyncio.gather(
        store.admission.admit(good, limits=False),
        store.admission.admit(dup, limits=False),
        store.admission.admit(dup, limits=False),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Exception) for r in results) == 1
    assert store.messages.get(good.id) is not None and store.messages.get(dup.id) is not None


async def test_rate_limit_and_quota_are_counted_in_the_store(
    tmp_path: Path, clock: FakeClock, store: Store
) -> None:
    account = store.accounts.create("small", plan="paid", daily_quota=5, rate_limit=2)
    await store.admission.admit(message(account.id, 1))
    await store.admission.admit(message(account.id, 1))
    with pytest.raises(LimitExceeded) as info:
        await store.admission.admit(message(account.id, 1))
    assert info.value.status == 429 and info.value.retry_after == 1
    clock.advance(1)
    # A second Store on the same file (another process) sees the same counters.
    other = Store(store.path, clock=clock).open()
    other.start_writer()
    try:
        await other.admission.admit(message(account.id, 2))
        with pytest.raises(LimitExceeded) as quota:
            await other.admission.admit(message(account.id, 2))
        assert quota.value.status == 429 and "daily quota" in quota.value.detail
        assert quota.value.retry_after > 1
    finally:
        other.close()
    clock.advance(86400)
    await store.admission.admit(message(account.id, 2))


async def test_wal_is_checkpointed_off_the_commit_path(
    store: Store, sender: dict[str, Any]
) -> None:
    import time as _time

    store.core.writer.checkpoint_interval = 0.05
    await asyncio.gather(
        *(
            store.admission.admit(message(sender["account"].id, 1, body=b"x" * 4000), limits=False)
            for _ in range(300)
        )
    )
    deadline = _time.monotonic() + 5
    while store.core.writer.checkpoints == 0 and _time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert store.core.writer.checkpoints > 0
    other = Store(store.path).open()
    busy, log_frames, checkpointed = (
        other.core.conn().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    )
    assert busy == 0 and log_frames == checkpointed
    other.close()


def test_group_commit_answers_callers_on_several_event_loops(
    store: Store, sender: dict[str, Any]
) -> None:
    import threading

    results: dict[int, list[Limits]] = {}

    def caller(n: int) -> None:
        async def many() -> list[Limits]:
            msgs = [message(sender["account"].id, 1) for _ in range(50)]
            return list(
                await asyncio.gather(*(store.admission.admit(m, limits=False) for m in msgs))
            )

        results[n] = asyncio.run(many())

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [0, 1, 2] and all(len(r) == 50 for r in results.values())
