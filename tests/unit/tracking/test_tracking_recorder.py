"""HitRecorder: bounded buffer, batching, drops, failures, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from relaygate.events.tracking_app import HitRecorder, TrackingHit


def hit(n: int) -> TrackingHit:
    return TrackingHit(
        kind="o",
        account_id=1,
        message_id="msg_" + "0" * 32,
        recipient_id=n,
        url=None,
        ip="192.0.2.1",
        user_agent="UA",
        method="GET",
        at=1000.0 + n,
    )


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate: asyncio.Event | None = None
        self.fail_next = False

    async def __call__(self, batch: Sequence[TrackingHit]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("store down")
        self.batches.append([h.recipient_id for h in batch])


async def wait_for(cond: object, timeout: float = 2.0) -> None:
    async def poll() -> None:
        while not cond():  # type: ignore[operator]
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


async def test_full_batches_are_written_without_waiting_for_the_interval() -> None:
    sink = Sink()
    async with HitRecorder(sink, batch_size=3, flush_interval_s=30.0) as rec:
        for i in range(7):
            assert rec.offer(hit(i))
        await wait_for(lambda: len(sink.batches) >= 2)
        assert sink.batches == [[0, 1, 2], [3, 4, 5]]
        assert rec.pending == 1
    # stop wrote the remainder
    assert sink.batches[-1] == [6]
    assert rec.stats.written == 7 and rec.stats.batches == 3 and rec.stats.dropped == 0


async def test_partial_batch_is_written_after_the_interval() -> None:
    sink = Sink()
    async with HitRecorder(sink, batch_size=100, flush_interval_s=0.05) as rec:
        rec.offer(hit(1))
        await wait_for(lambda: sink.batches == [[1]])
        rec.offer(hit(2))
        await wait_for(lambda: sink.batches == [[1], [2]])


async def test_over_capacity_hits_are_dropped_and_counted_never_blocking() -> None:
    sink = Sink()
    sink.gate = asyncio.Event()  # the store is stuck
    rec = HitRecorder(sink, capacity=5, batch_size=2, flush_interval_s=0.0)
    await rec.start()
    accepted = [rec.offer(hit(i)) for i in range(5)]
    await asyncio.sleep(0.02)  # the worker takes one batch into the stuck sink
    more = [rec.offer(hit(i)) for i in range(5, 1005)]
    assert all(accepted)
    assert rec.pending <= 5
    assert more.count(True) == 2  # the two slots freed by the in-flight batch
    assert rec.stats.dropped == 998
    sink.gate.set()
    await rec.stop()
    assert rec.stats.written == 7 and rec.pending == 0
    assert not rec.offer(hit(0))  # stopped: dropped
    assert rec.stats.dropped == 999


async def test_a_failing_sink_loses_that_batch_only() -> None:
    sink = Sink()
    sink.fail_next = True
    async with HitRecorder(sink, batch_size=2, flush_interval_s=0.0) as rec:
        for i in range(4):
            rec.offer(hit(i))
        await wait_for(lambda: rec.stats.written + rec.stats.failed == 4)
    assert rec.stats.failed == 2 and rec.stats.written == 2
    assert sink.batches == [[2, 3]]


async def test_sync_sink_and_flush_without_a_task() -> None:
    got: list[int] = []
    rec = HitRecorder(lambda batch: got.extend(h.recipient_id for h in batch), batch_size=2)
    for i in range(5):
        rec.offer(hit(i))
    await rec.flush()
    assert got == [0, 1, 2, 3, 4] and rec.stats.batches == 3


async def test_stop_gives_up_on_a_hung_sink_after_the_timeout() -> None:
    sink = Sink()
    sink.gate = asyncio.Event()
    rec = HitRecorder(sink, batch_size=1, flush_interval_s=0.0)
    await rec.start()
    rec.offer(hit(1))
    await rec.stop(timeout=0.05)
    assert rec.stats.written == 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        HitRecorder(Sink(), capacity=0)
    with pytest.raises(ValueError):
        HitRecorder(Sink(), batch_size=0)
