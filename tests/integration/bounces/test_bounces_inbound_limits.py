"""Inbound cannot fill the disk (issue 15 item 3): reports to the bounce/feedback addresses are
capped in size and in rate per peer, over real SMTP without AUTH; a processed report's bytes
are dropped after the retention (injected clock)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from relaygate.bounces.inbound import PURGE_EVERY, InboundProcessor
from relaygate.clock import FakeClock
from relaygate.gateway.admission import Admission
from relaygate.gateway.smtp import SmtpGateway
from relaygate.store.sqlite import SqliteStore as Store

from ...conftest import make_settings  # type: ignore[import-not-found]
from .conftest import BOUNCE_DOMAIN

JUNK = f"junk@{BOUNCE_DOMAIN}"
Start = Callable[..., Awaitable[int]]


def report(size: int) -> bytes:
    """A report of exactly ``size`` bytes, ending in CRLF, no line longer than 1,000."""
    head = b"From: MAILER-DAEMON@x.test\r\nSubject: failure\r\n\r\n"
    full, rest = divmod(size - len(head), 1000)
    tail = b"y" * (rest - 2) + b"\r\n" if rest >= 2 else b""
    data = head + (b"x" * 998 + b"\r\n") * full + tail
    return data if len(data) == size else data[: size - 2] + b"\r\n"


@pytest.fixture
async def start(tmp_path: Path, store: Store, clock: FakeClock) -> AsyncIterator[Start]:
    gateways: list[SmtpGateway] = []

    async def make(**sections: dict[str, Any]) -> int:
        sections["smtp"] = {"listen": ["127.0.0.1:0"], **sections.get("smtp", {})}
        settings = make_settings(tmp_path, **sections)
        gateway = SmtpGateway(
            admission=Admission(store=store, settings=settings, clock=clock),
            settings=settings,
            clock=clock,
        )
        gateways.append(gateway)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        server = await gateway.start(sock)
        return int(server.sockets[0].getsockname()[1])

    yield make
    for gateway in gateways:
        await gateway.stop(timeout=1)


async def send(port: int, data: bytes, *, source: str = "127.0.0.1", size: bool = False) -> str:
    """Hand one report in; the reply that ended the transaction ("250 …", "552 …", "451 …")."""
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=port,
        local_hostname="mx.outsider.test",
        source_address=(source, 0),
    ) as smtp:
        options = [f"SIZE={len(data)}"] if size else []
        await smtp.ehlo()
        await smtp.mail("", options=options)
        try:
            await smtp.rcpt(JUNK)
            reply = await smtp.data(data)
        except aiosmtplib.SMTPResponseException as exc:
            return f"{exc.code} {exc.message}"
        return f"{reply.code} {reply.message}"


async def test_ten_megabytes_to_junk_is_refused_by_default(start: Start, store: Store) -> None:
    port = await start()
    reply = await send(port, report(10 * 1024 * 1024))
    assert reply.startswith("552 5.3.4") and "2097152 bytes" in reply
    reply = await send(port, report(10 * 1024 * 1024), size=True)  # SIZE= given: refused at RCPT
    assert reply.startswith("552 5.3.4")
    assert store.inbound.pending() == []
    assert (await send(port, report(2 * 1024 * 1024))).startswith("250 2.0.0 OK received as in_")
    [row] = store.inbound.pending()
    assert len(row.data) == 2 * 1024 * 1024


async def test_reports_per_minute_per_peer(start: Start, store: Store, clock: FakeClock) -> None:
    port = await start(bounces={"reports_per_minute": 3})
    small = report(500)
    for _ in range(3):
        assert (await send(port, small)).startswith("250 ")
    refused = await send(port, small)
    assert refused.startswith("451 4.7.1") and "Too many reports" in refused
    assert (await send(port, small, source="127.0.0.2")).startswith("250 ")  # another peer
    clock.advance(60)
    assert (await send(port, small)).startswith("250 ")
    assert len(store.inbound.pending()) == 5


async def test_trusted_networks_are_not_rate_limited(
    start: Start, store: Store, sender: dict[str, Any]
) -> None:
    trusted = {"127.0.0.1/32": sender["account"].id}
    port = await start(bounces={"reports_per_minute": 1}, smtp={"trusted_networks": trusted})
    for _ in range(3):
        assert (await send(port, report(500))).startswith("250 ")
    assert (await send(port, report(500), source="127.0.0.2")).startswith("250 ")
    assert (await send(port, report(500), source="127.0.0.2")).startswith("451 4.7.1")


async def test_a_processed_reports_bytes_are_dropped_after_the_retention(
    start: Start, tmp_path: Path, store: Store, clock: FakeClock
) -> None:
    port = await start()
    for _ in range(2):
        assert (await send(port, report(5000))).startswith("250 ")
    settings = make_settings(tmp_path, bounces={"report_retention": 7 * 86400})
    processor = InboundProcessor(store, settings, secret=b"k" * 32)
    assert await processor.run_once(limit=1) == 1  # one processed now, one left pending
    [done] = [r for r in store.inbound.reports() if r.status != "pending"]
    assert await processor.purge_due() == 0
    clock.advance(7 * 86400 - 1)
    assert await processor.purge_due() == 0  # not yet due: an hour since the last look
    clock.advance(PURGE_EVERY)
    assert await processor.purge_due() == 1
    row, data = store.inbound.report(done.id) or (None, b"?")
    assert row is not None and row.purged and data == b""
    assert row.size == 5000 and row.status == "unmatched"
    [pending] = store.inbound.pending()  # never processed: kept whole, whatever its age
    assert len(pending.data) == 5000
    clock.advance(PURGE_EVERY)
    assert await processor.purge_due() == 0
