"""The scheduler end to end over the MX path: real store, real DNS on loopback, a scripted sink."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from relaygate.clock import FakeClock
from relaygate.relay.outbound import make_network_transport
from relaygate.relay.transport import Transport
from relaygate.relay.worker import DeliveryWorker
from relaygate.store.ids import new_message_id
from relaygate.store.models import NewMessage, NewRecipient
from relaygate.store.sqlite import SqliteStore as Store
from relaygate.testing.dns import DNSServer
from relaygate.testing.smtp_sink import SmtpSink

from ...conftest import make_settings  # type: ignore[import-not-found]


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as s:
        yield s


@pytest.fixture
def dns_server() -> Any:
    zone = {
        "dest.test": {"MX": [(10, "mx.dest.test")]},
        "mx.dest.test": {"A": ["127.0.0.1"]},
        "gone.test": "SERVFAIL",
        "nullmx.test": {"MX": [(0, ".")]},
    }
    with DNSServer(zone) as server:
        yield server


_TRANSPORTS: list[Transport] = []


@pytest.fixture(autouse=True)
async def _close_transports() -> AsyncIterator[None]:
    """Workers driven by run_once keep idle SMTP sessions: QUIT them after each test."""
    yield
    while _TRANSPORTS:
        await _TRANSPORTS.pop().aclose()


def worker_for(
    tmp_path: Path, store: Store, clock: FakeClock, dns_server: DNSServer, sink: SmtpSink
) -> DeliveryWorker:
    settings = make_settings(
        tmp_path,
        delivery={"mode": "mx", "mx_port": sink.port},
        dns={"nameservers": [dns_server.nameserver], "timeout": 1},
    )
    transport = make_network_transport(settings, rng=random.Random(1))
    _TRANSPORTS.append(transport)
    return DeliveryWorker(
        store=store,
        settings=settings,
        clock=clock,
        transport=transport,
        rng=random.Random(2),
        verp_secret=b"s" * 32,
    )


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


def states(store: Store, mid: str) -> dict[str, str]:
    return {r.address: r.state for r in store.messages.recipients(mid)}


async def test_mixed_results_one_transaction_each_then_greylist_retry(
    tmp_path: Path,
    store: Store,
    clock: FakeClock,
    sender: dict[str, Any],
    dns_server: DNSServer,
    sink: SmtpSink,
) -> None:
    sink.rcpt = {
        "bad@dest.test": "550 5.1.1 user unknown",
        "grey@dest.test": ["450 4.2.0 greylisted", "250 ok"],
    }
    worker = worker_for(tmp_path, store, clock, dns_server, sink)
    mid = admit(store, sender["account"].id, "ok@dest.test", "bad@dest.test", "grey@dest.test")
    assert await worker.run_once() == 3
    assert sink.connections == 1  # three transactions, one connection
    assert states(store, mid) == {
        "ok@dest.test": "delivered",
        "bad@dest.test": "bounced",
        "grey@dest.test": "deferred",
    }
    assert len(sink.messages) == 1 and sink.messages[0].rcpt_tos == ("ok@dest.test",)
    bounce = [e for e in store.messages.events_after(0) if e.type == "bounce"][0]
    assert bounce.data["status"] == "5.1.1" and "user unknown" in bounce.data["smtp_response"]
    assert await worker.run_once() == 0  # not due before the back-off
    clock.advance(300 * 1.1 + 1)
    assert await worker.run_once() == 1
    assert states(store, mid)["grey@dest.test"] == "delivered"
    assert [m.rcpt_tos for m in sink.messages] == [("ok@dest.test",), ("grey@dest.test",)]
    # VERP: each recipient had a transaction of its own, with its own return path.
    from relaygate.bounces import verp

    ids = {r.address: r.id for r in store.messages.recipients(mid)}
    senders = [c.arg for c in sink.commands if c.verb == "MAIL"]
    refs = [
        verp.decode(s.split(">")[0], secret=b"s" * 32, domains=["bounces.relay.test"])
        for s in senders
    ]
    assert [(r.message_id, r.recipient_id) for r in refs if r] == [
        (mid, ids["ok@dest.test"]),
        (mid, ids["bad@dest.test"]),
        (mid, ids["grey@dest.test"]),
        (mid, ids["grey@dest.test"]),
    ]


async def test_the_refused_command_decides_the_bounce_reason(
    tmp_path: Path,
    store: Store,
    clock: FakeClock,
    sender: dict[str, Any],
    dns_server: DNSServer,
    sink: SmtpSink,
) -> None:
    # The same words, once in reply to RCPT TO (the address) and once to the end of the data
    # (the recipient was accepted: a filter on this message), and once to MAIL FROM (the sender).
    sink.rcpt = {"gone@dest.test": "550 Unknown user"}
    sink.data = "550 Unknown user"
    worker = worker_for(tmp_path, store, clock, dns_server, sink)
    at_rcpt = admit(store, sender["account"].id, "gone@dest.test")
    at_data = admit(store, sender["account"].id, "kept@dest.test")
    assert await worker.run_once() == 2
    sink.data = None
    sink.mail = "553 5.1.1 Unknown user"
    at_mail = admit(store, sender["account"].id, "other@dest.test")
    assert await worker.run_once() == 1
    bounces = {e.message_id: e.data for e in store.messages.events_after(0) if e.type == "bounce"}
    got = {
        m: (bounces[m]["reason"], bounces[m]["bounce_type"]) for m in (at_rcpt, at_data, at_mail)
    }
    assert got == {
        at_rcpt: ("userunknown", "hard"),
        at_data: ("filtered", "soft"),
        at_mail: ("rejected", "soft"),
    }


async def test_dns_failures_defer_or_bounce(
    tmp_path: Path,
    store: Store,
    clock: FakeClock,
    sender: dict[str, Any],
    dns_server: DNSServer,
    sink: SmtpSink,
) -> None:
    worker = worker_for(tmp_path, store, clock, dns_server, sink)
    m1 = admit(store, sender["account"].id, "x@gone.test")
    m2 = admit(store, sender["account"].id, "x@nullmx.test")
    m3 = admit(store, sender["account"].id, "x@nxdomain.test")
    await worker.run_once()
    assert states(store, m1) == {"x@gone.test": "deferred"}
    assert states(store, m2) == {"x@nullmx.test": "bounced"}
    assert states(store, m3) == {"x@nxdomain.test": "bounced"}
    assert sink.messages == []


async def test_past_lifetime_is_expired_as_a_soft_bounce(
    tmp_path: Path,
    store: Store,
    clock: FakeClock,
    sender: dict[str, Any],
    dns_server: DNSServer,
    sink: SmtpSink,
) -> None:
    sink.default_rcpt = "451 4.3.0 try later"
    worker = worker_for(tmp_path, store, clock, dns_server, sink)
    mid = admit(store, sender["account"].id, "slow@dest.test")
    attempts = 0
    for _ in range(400):
        attempts += await worker.run_once()
        if states(store, mid)["slow@dest.test"] == "expired":
            break
        due = store.queue.next_due()
        assert due is not None
        clock.set(max(clock.now(), due))
    assert states(store, mid) == {"slow@dest.test": "expired"}
    assert clock.now() <= 1_790_000_000 + 5 * 86400 + 1
    expired = [e for e in store.messages.events_after(0) if e.state_to == "expired"][0]
    assert (
        expired.type == "bounce"
        and expired.data["reason"] == "expired"
        and expired.data["bounce_type"] == "soft"
    )
    assert 50 < attempts < 200


async def test_delivery_metrics(
    tmp_path: Path,
    store: Store,
    clock: FakeClock,
    sender: dict[str, Any],
    dns_server: DNSServer,
    sink: SmtpSink,
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from relaygate.metrics import Metrics

    metrics = Metrics(status=store.status, clock=clock, process=False)
    worker = worker_for(tmp_path, store, clock, dns_server, sink)
    worker.transport.metrics = metrics  # type: ignore[attr-defined]
    admit(store, sender["account"].id, "ok@dest.test")
    admit(store, sender["account"].id, "x@gone.test")
    await worker.run_once()
    body, _ = metrics.render()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(body.decode())
        for s in fam.samples
    }
    assert samples[("relaygate_recipients_delivered_total", ())] == 1
    assert samples[("relaygate_recipients_deferred_total", ())] == 1
    assert (
        samples[("relaygate_smtp_sessions_total", (("direction", "outbound"), ("tls", "none")))]
        == 1
    )
    assert sum(v for (name, _), v in samples.items() if name == "relaygate_dns_errors_total") == 1


async def test_per_domain_tls_policy_from_settings(
    tmp_path: Path,
    store: Store,
    clock: FakeClock,
    sender: dict[str, Any],
    dns_server: DNSServer,
    sink: SmtpSink,
) -> None:
    dns_server.set("strict.test", "MX", [(10, "mx.dest.test")])
    settings = make_settings(
        tmp_path,
        delivery={"mode": "mx", "mx_port": sink.port, "tls_policies": {"strict.test": "required"}},
        dns={"nameservers": [dns_server.nameserver], "timeout": 1},
    )
    worker = DeliveryWorker(
        store=store,
        settings=settings,
        clock=clock,
        transport=make_network_transport(settings, rng=random.Random(1)),
        rng=random.Random(2),
    )
    _TRANSPORTS.append(worker.transport)
    strict = admit(store, sender["account"].id, "a@strict.test")
    relaxed = admit(store, sender["account"].id, "b@dest.test")
    await worker.run_once()
    assert states(store, relaxed) == {
        "b@dest.test": "delivered"
    }  # the sink offers no STARTTLS: plaintext is fine here
    assert states(store, strict) == {"a@strict.test": "deferred"}  # never sent in the clear
    assert [m.rcpt_tos for m in sink.messages] == [("b@dest.test",)]
    row = store.messages.recipients(strict)[0]
    assert "TLS is required" in row.last_response
    deferred = next(
        e
        for e in store.messages.events_after(0)
        if e.recipient_id == row.id and e.type == "deferred"
    )
    assert deferred.data["status"] == "4.7.4"


def test_tls_policies_are_validated(tmp_path: Path) -> None:
    from relaygate.errors import ConfigError

    with pytest.raises(ConfigError, match="tls_policies"):
        make_settings(tmp_path, delivery={"tls_policies": {"x.test": "sometimes"}})


async def test_one_transaction_per_recipient_on_one_connection_without_the_cache(
    tmp_path: Path,
    store: Store,
    clock: FakeClock,
    sender: dict[str, Any],
    dns_server: DNSServer,
    sink: SmtpSink,
) -> None:
    """Connection caching off: the batch still runs its transactions on one connection, and
    QUITs it when the batch is done (nothing is kept between batches)."""
    settings = make_settings(
        tmp_path,
        delivery={"mode": "mx", "mx_port": sink.port, "connection_cache_seconds": 0},
        dns={"nameservers": [dns_server.nameserver], "timeout": 1},
    )
    transport = make_network_transport(settings, rng=random.Random(1))
    assert transport.sessions is None
    worker = DeliveryWorker(
        store=store, settings=settings, clock=clock, transport=transport, verp_secret=b"s" * 32
    )
    mid = admit(store, sender["account"].id, "a@dest.test", "b@dest.test", "c@dest.test")
    assert await worker.run_once() == 3
    assert set(states(store, mid).values()) == {"delivered"}
    assert [m.rcpt_tos for m in sink.messages] == [
        ("a@dest.test",),
        ("b@dest.test",),
        ("c@dest.test",),
    ]
    assert len({m.mail_from for m in sink.messages}) == 3
    assert sink.connections == 1
    assert sink.verbs().count("QUIT") == 1


async def test_a_dead_destination_is_tried_once_per_batch(
    tmp_path: Path,
    store: Store,
    clock: FakeClock,
    sender: dict[str, Any],
    dns_server: DNSServer,
    sink: SmtpSink,
) -> None:
    await sink.stop()  # nothing listens on its port now: connection refused
    worker = worker_for(tmp_path, store, clock, dns_server, sink)
    mid = admit(store, sender["account"].id, "a@dest.test", "b@dest.test", "c@dest.test")
    assert await worker.run_once() == 3
    assert set(states(store, mid).values()) == {"deferred"}
    responses = [r.last_response for r in store.messages.recipients(mid)]
    assert "Connection refused" in responses[0]
    assert all("recently unreachable" in r for r in responses[1:]), responses


async def test_a_queue_an_hour_behind_is_a_warning(
    tmp_path: Path,
    clock: FakeClock,
    dns_server: DNSServer,
    sink: SmtpSink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store(tmp_path / "s.sqlite3", clock=clock).open()
    worker = worker_for(tmp_path, store, clock, dns_server, sink)
    assert await worker.check_queue_age() == 0.0  # empty queue
    account = store.accounts.create("a", plan="paid").id
    admit(store, account, "r@gone.test")
    caplog.set_level(logging.INFO, logger="relaygate.relay")
    clock.advance(3599)
    assert await worker.check_queue_age() == 3599 and not caplog.records
    clock.advance(60)
    assert await worker.check_queue_age() is None  # looked less than 5 minutes ago
    clock.advance(300)
    assert await worker.check_queue_age() == 3959
    [warning] = caplog.records
    assert warning.levelname == "WARNING" and "queued 65 minutes ago" in warning.getMessage()
    store.close()
