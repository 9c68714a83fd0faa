"""A destination that answers slowly (a tarpit) does not starve the others: the scheduler keeps
claiming while the tarpit's transactions hang, and stopping releases the tarpit's leases."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relaygate.clock import FakeClock
from relaygate.relay.outbound import make_network_transport
from relaygate.relay.worker import DeliveryWorker
from relaygate.store.ids import new_message_id
from relaygate.store.models import NewMessage, NewRecipient
from relaygate.store.sqlite import SqliteStore as Store
from relaygate.testing.dns import DNSServer
from relaygate.testing.smtp_sink import SmtpSink

from ..conftest import make_settings  # type: ignore[import-not-found]

ZONE = {
    "slow.test": {"MX": [(10, "mx.slow.test")]},
    "mx.slow.test": {"A": ["127.0.0.1"]},
    "fast.test": {"MX": [(10, "mx.fast.test")]},
    "mx.fast.test": {"A": ["127.0.0.2"]},  # same port, another loopback address
}


@pytest.fixture
def dns_server() -> Iterator[DNSServer]:
    with DNSServer(ZONE) as server:
        yield server


def admit(store: Store, account_id: int, rcpt: str) -> str:
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
            recipients=(NewRecipient(address=rcpt, kind="to"),),
            check_suppressions=False,
        ),
        limits=False,
    )
    return mid


async def test_tarpit_does_not_starve_other_destinations(
    tmp_path: Path,
    store: Store,
    clock: FakeClock,
    sender: dict[str, Any],
    dns_server: DNSServer,
) -> None:
    acct = sender["account"].id
    async with SmtpSink(delay=5) as tarpit, SmtpSink(host="127.0.0.2", port=tarpit.port) as fast:
        settings = make_settings(
            tmp_path,
            delivery={"mode": "mx", "mx_port": tarpit.port},
            dns={"nameservers": [dns_server.nameserver], "timeout": 1},
        )
        worker = DeliveryWorker(
            store=store,
            settings=settings,
            clock=clock,
            transport=make_network_transport(settings, rng=random.Random(1)),
            rng=random.Random(2),
        )
        worker.drain_timeout = 0.5
        for i in range(20):
            admit(store, acct, f"t{i}@slow.test")
        runner = asyncio.create_task(worker.run())
        try:
            deadline = time.monotonic() + 5
            while tarpit.connections < 10 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert tarpit.connections >= 10, "the tarpit's transactions did not start"
            # Mail for another destination arrives while the tarpit holds its transactions.
            started = time.monotonic()
            for i in range(20):
                admit(store, acct, f"f{i}@fast.test")
            worker.wake()
            await fast.wait_for(20, timeout=4)
            took = time.monotonic() - started
            assert sorted(fast.recipients()) == sorted(f"f{i}@fast.test" for i in range(20))
            assert tarpit.messages == [], "the tarpit should still be answering slowly"
            assert took < 4
        finally:
            await worker.stop()
            await asyncio.wait_for(runner, timeout=10)
    states = store.queue.count_by_state()
    assert states.get("delivered") == 20
    # Stopping cut the tarpit's transactions short and gave their leases back at once.
    assert states.get("active", 0) == 0 and states.get("queued") == 20, states
    released = [e for e in store.messages.events_after(0) if e.type == "released"]
    assert len(released) >= 10
