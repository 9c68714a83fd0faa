"""Slow receivers get mail once (issue 15 item 4): a tarpitting MX holds the reply to DATA past
the lease's end (the injected clock), over real SMTP; the worker renews its leases while the
transaction runs, another worker claims nothing, and the worker's own claims never take back
what it has in flight. The lease must outlast the longest SMTP wait (settings)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from relaygate.clock import FakeClock
from relaygate.errors import ConfigError
from relaygate.relay.client import Timeouts
from relaygate.relay.outbound import make_network_transport
from relaygate.relay.worker import DeliveryWorker
from relaygate.settings import LONGEST_SMTP_WAIT
from relaygate.store.ids import new_message_id
from relaygate.store.models import NewMessage, NewRecipient
from relaygate.store.sqlite import SqliteStore as Store
from relaygate.testing.dns import DNSServer
from relaygate.testing.smtp_sink import SmtpSink

from ...conftest import make_settings  # type: ignore[import-not-found]

LEASE = 900.0


@pytest.fixture
async def tarpit() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as sink:
        sink.tarpit = asyncio.Event()
        yield sink
        sink.tarpit.set()


@pytest.fixture
async def make_worker(
    tmp_path: Path, store: Store, clock: FakeClock, tarpit: SmtpSink
) -> AsyncIterator[Callable[[], DeliveryWorker]]:
    zone = {"dest.test": {"MX": [(10, "mx.dest.test")]}, "mx.dest.test": {"A": ["127.0.0.1"]}}
    made: list[DeliveryWorker] = []
    with DNSServer(zone) as dns:
        settings = make_settings(
            tmp_path,
            delivery={"mode": "mx", "mx_port": tarpit.port, "lease_seconds": LEASE},
            dns={"nameservers": [dns.nameserver], "timeout": 1},
        )

        def make() -> DeliveryWorker:
            worker = DeliveryWorker(
                store=store,
                settings=settings,
                clock=clock,
                transport=make_network_transport(settings, rng=random.Random(1)),
                rng=random.Random(2),
                verp_secret=b"s" * 32,
            )
            worker.renew_tick = 0.01
            made.append(worker)
            return worker

        yield make
        for worker in made:
            await worker.transport.aclose()


def admit(store: Store, account_id: int, *rcpts: str) -> str:
    mid = new_message_id()
    store.admission.admit_sync(
        NewMessage(
            id=mid,
            account_id=account_id,
            channel="http",
            from_addr="a@example.com",
            sender_domain="example.com",
            subject="s",
            header_message_id=f"<{mid}@relay.test>",
            tags=(),
            body=b"Subject: s\r\n\r\nhello\r\n",
            recipients=tuple(NewRecipient(address=r, kind="to") for r in rcpts),
            check_suppressions=False,
        ),
        limits=False,
    )
    return mid


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the loop run until ``condition`` holds (a safety net of 10 s, never a measure)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_a_tarpit_past_the_lease_gets_the_message_once(
    store: Store,
    clock: FakeClock,
    sender: dict[str, Any],
    tarpit: SmtpSink,
    make_worker: Callable[[], DeliveryWorker],
) -> None:
    mid = admit(store, sender["account"].id, "slow@dest.test", "slower@dest.test")
    first, other = make_worker(), make_worker()
    running = asyncio.create_task(first.run_once())
    await until(lambda: len(tarpit.held) == 1, "the first DATA held in the tarpit")
    for _ in range(4):  # an hour in all: four times past the original lease
        clock.advance(LEASE * 0.9)
        renewals = first.renewals
        await until(lambda: first.renewals > renewals, "a renewal")  # noqa: B023
        # Another worker finds nothing to claim (a claim would wait in the tarpit: the wait_for
        # only bounds how long a failure takes to show).
        assert await asyncio.wait_for(other.run_once(), 10) == 0
    tarpit.tarpit.set()  # type: ignore[union-attr]
    assert await running == 2
    assert {r.address: r.state for r in store.messages.recipients(mid)} == {
        "slow@dest.test": "delivered",
        "slower@dest.test": "delivered",
    }
    assert sorted(r for m in tarpit.messages for r in m.rcpt_tos) == [
        "slow@dest.test",
        "slower@dest.test",
    ]
    events = [e.type for e in store.messages.events_after(0) if e.message_id == mid]
    assert "lease_expired" not in events


async def test_a_worker_never_reclaims_its_own_transaction_past_the_lease(
    store: Store,
    clock: FakeClock,
    sender: dict[str, Any],
    tarpit: SmtpSink,
    make_worker: Callable[[], DeliveryWorker],
) -> None:
    """No renewal got through (a clock jump, a store too busy): the lease has ended, and still
    the worker's own next claims pass its in-flight recipient over."""
    mid = admit(store, sender["account"].id, "slow@dest.test")
    worker = make_worker()
    worker.renew_tick = 3600.0  # the renewal never comes round in this test
    running = asyncio.create_task(worker.run_once())
    await until(lambda: len(tarpit.held) == 1, "the DATA held in the tarpit")
    clock.advance(LEASE * 2)
    assert await asyncio.wait_for(worker.run_once(), 10) == 0
    tarpit.tarpit.set()  # type: ignore[union-attr]
    assert await running == 1
    assert len(tarpit.messages) == 1
    assert {r.address: r.state for r in store.messages.recipients(mid)} == {
        "slow@dest.test": "delivered"
    }


def test_the_lease_must_outlast_the_longest_smtp_wait(tmp_path: Path) -> None:
    assert max(getattr(Timeouts(), f.name) for f in fields(Timeouts)) == LONGEST_SMTP_WAIT
    assert make_settings(tmp_path).delivery.lease_seconds == 900.0
    assert make_settings(tmp_path, delivery={"lease_seconds": 601}).delivery.lease_seconds == 601
    with pytest.raises(ConfigError, match=r"delivery\.lease_seconds: must exceed .*600 s"):
        make_settings(tmp_path, delivery={"lease_seconds": 300})
