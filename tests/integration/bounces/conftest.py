"""A small world for inbound-report tests: a sending account, the relay delivering over the MX path
to an aiosmtpd sink (real DNS on loopback), relaygate's SMTP listener on a real socket, and the
inbound processor. Reports arrive over SMTP without AUTH, as any outsider would send them."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from relaygate.bounces.inbound import InboundProcessor
from relaygate.clock import FakeClock
from relaygate.gateway.admission import Admission
from relaygate.gateway.smtp import SmtpGateway
from relaygate.relay.outbound import NetworkTransport, make_network_transport
from relaygate.relay.worker import DeliveryWorker
from relaygate.settings import Settings
from relaygate.store.ids import new_message_id
from relaygate.store.models import NewMessage, NewRecipient
from relaygate.store.sqlite import SqliteStore as Store
from relaygate.testing.dns import DNSServer
from relaygate.testing.smtp_sink import ReceivedMessage, SmtpSink

from ...conftest import make_settings  # type: ignore[import-not-found]

SECRET = b"k" * 32
BOUNCE_DOMAIN = "bounces.relay.test"


def dsn(*, to: str, rows: list[tuple[str, str]], original: str = "") -> bytes:
    """A multipart/report DSN (RFC 3464): one row per (recipient, status), with the returned
    original's headers ``original`` (e.g. its Message-ID)."""
    status = "\n".join(
        f"Final-Recipient: rfc822; {rcpt}\nAction: failed\nStatus: {code}\n"
        f"Diagnostic-Code: smtp; {'550' if code.startswith('5') else '450'} {code} <{rcpt}>: "
        f"{'User unknown in virtual mailbox table' if code == '5.1.1' else 'Mailbox full'}\n"
        for rcpt, code in rows
    )
    return f"""From: MAILER-DAEMON@mx.dest.test
To: {to}
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.dest.test

{status}
--B
Content-Type: text/rfc822-headers

{original}
Subject: Hello

--B--
""".replace("\n", "\r\n").encode()


def arf(*, rcpt_field: str, original: str) -> bytes:
    """An ARF feedback report (RFC 5965); ``original`` is the returned message's header block."""
    return f"""From: feedback@isp.test
To: fbl@{BOUNCE_DOMAIN}
Subject: Abuse report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="F"

--F
Content-Type: text/plain

This is an email abuse report.

--F
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ISP-FBL/1.0
Version: 1
Original-Rcpt-To: {rcpt_field}
Source-IP: 192.0.2.1

--F
Content-Type: message/rfc822

{original}
Subject: Hello

hello
--F--
""".replace("\n", "\r\n").encode()


@dataclass
class World:
    store: Store
    clock: FakeClock
    settings: Settings
    sink: SmtpSink
    worker: DeliveryWorker
    processor: InboundProcessor
    account_id: int
    smtp_port: int

    def admit(self, *rcpts: str) -> str:
        mid = new_message_id()
        self.store.admission.admit_sync(
            NewMessage(
                id=mid,
                account_id=self.account_id,
                channel="http",
                from_addr="a@example.com",
                sender_domain="example.com",
                subject="Hello",
                header_message_id=f"<{mid}@relay.test>",
                tags=(),
                body=f"From: a@example.com\r\nSubject: Hello\r\nMessage-ID: <{mid}@relay.test>"
                "\r\n\r\nhello\r\n".encode(),
                recipients=tuple(NewRecipient(address=r, kind="to") for r in rcpts),
                check_suppressions=False,
            ),
            limits=False,
        )
        return mid

    async def send(self, *rcpts: str) -> str:
        """Admit one message to ``rcpts`` and deliver it to the sink."""
        mid = self.admit(*rcpts)
        await self.worker.run_once()
        assert set(self.states(mid).values()) == {"delivered"}, self.states(mid)
        return mid

    def copy_of(self, rcpt: str) -> ReceivedMessage:
        """The copy ``rcpt`` received (the newest): what a recipient holds."""
        return next(m for m in reversed(self.sink.messages) if rcpt in m.rcpt_tos)

    def header(self, rcpt: str, name: str) -> str:
        return str(BytesHeaderParser().parsebytes(self.copy_of(rcpt).data)[name])

    def return_path(self, rcpt: str) -> str:
        """The Return-Path the final MTA would add to ``rcpt``'s copy: its envelope sender."""
        return self.copy_of(rcpt).mail_from

    async def report(self, rcpt: str, data: bytes, *, mail_from: str = "") -> str:
        """Hand a report to relaygate's SMTP listener without AUTH and let it be processed;
        returns its ``in_`` id (from the 250 reply)."""
        async with aiosmtplib.SMTP(
            hostname="127.0.0.1", port=self.smtp_port, local_hostname="mx.outsider.test"
        ) as smtp:
            _refused, reply = await smtp.sendmail(mail_from, [rcpt], data)
        assert await self.processor.run_once() == 1
        return reply.rsplit(" ", 1)[1]

    def outcome(self, inbound_id: str) -> tuple[str, str, int | None]:
        """(status, reason, account id) recorded for one report."""
        found = self.store.inbound.report(inbound_id)
        assert found is not None
        row = found[0]
        return row.status, row.reason, row.account_id

    def recipient_id(self, mid: str, address: str) -> int:
        return next(r.id for r in self.store.messages.recipients(mid) if r.address == address)

    def states(self, mid: str) -> dict[str, str]:
        return {r.address: r.state for r in self.store.messages.recipients(mid)}

    def suppressed(self, *addresses: str) -> dict[str, str]:
        return self.store.suppressions.lookup(self.account_id, list(addresses))

    def events(self, type_: str) -> list[Any]:
        return self.store.messages.events_after(0, types=[type_])


@pytest.fixture
async def world(
    tmp_path: Path, store: Store, clock: FakeClock, sender: dict[str, Any]
) -> AsyncIterator[World]:
    zone = {"dest.test": {"MX": [(10, "mx.dest.test")]}, "mx.dest.test": {"A": ["127.0.0.1"]}}
    with DNSServer(zone) as dns:
        async with SmtpSink() as sink:
            settings = make_settings(
                tmp_path,
                delivery={"mode": "mx", "mx_port": sink.port},
                dns={"nameservers": [dns.nameserver], "timeout": 1},
                smtp={"listen": ["127.0.0.1:0"]},
            )
            transport: NetworkTransport = make_network_transport(settings, rng=random.Random(1))
            worker = DeliveryWorker(
                store=store,
                settings=settings,
                clock=clock,
                transport=transport,
                rng=random.Random(2),
                verp_secret=SECRET,
            )
            gateway = SmtpGateway(
                admission=Admission(store=store, settings=settings, clock=clock),
                settings=settings,
                clock=clock,
            )
            server = await gateway.start(_listen())
            try:
                yield World(
                    store=store,
                    clock=clock,
                    settings=settings,
                    sink=sink,
                    worker=worker,
                    processor=InboundProcessor(store, settings, secret=SECRET),
                    account_id=sender["account"].id,
                    smtp_port=int(server.sockets[0].getsockname()[1]),
                )
            finally:
                await gateway.stop(timeout=1)
                await transport.aclose()


def _listen() -> Any:
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    return sock
