"""Sign once, before the first attempt: what the MX receives verifies (dkimpy and Mail::DKIM),
and a retry after a 450 sends exactly the same bytes."""

from __future__ import annotations

import asyncio
import random
import subprocess
from pathlib import Path
from typing import Any

import dkim
import pytest

from relaygate.clock import FakeClock
from relaygate.dkim.records import dkim_txt_value, dns_name, split_txt
from relaygate.dkim.signer import DkimSigner
from relaygate.domains import add_domain
from relaygate.relay.outbound import make_network_transport
from relaygate.relay.signing import MessageSigner, active_keys
from relaygate.relay.worker import DeliveryWorker
from relaygate.store.ids import new_message_id
from relaygate.store.models import NewMessage, NewRecipient, Outcome
from relaygate.store.sqlite import SqliteStore as Store
from relaygate.testing.dns import DNSServer
from relaygate.testing.smtp_sink import SmtpSink

from ...conftest import make_settings  # type: ignore[import-not-found]

PERL_SCRIPT = Path(__file__).resolve().parents[1] / "dkim" / "dkim_verify.pl"


def _mail_dkim_available() -> bool:
    try:
        return (
            subprocess.run(
                ["perl", "-MMail::DKIM::Verifier", "-e1"], capture_output=True, timeout=30
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


async def test_signed_once_verifies_and_retries_send_the_same_bytes(
    tmp_path: Path, store: Store, clock: FakeClock, sender: dict[str, Any]
) -> None:
    zone: dict[str, Any] = {
        "dest.test": {"MX": [(10, "mx.dest.test")]},
        "mx.dest.test": {"A": ["127.0.0.1"]},
    }
    with DNSServer(zone) as dns_server:
        async with SmtpSink(rcpt={"grey@dest.test": ["450 4.2.0 greylisted", "250 ok"]}) as sink:
            settings = make_settings(
                tmp_path,
                delivery={"mode": "mx", "mx_port": sink.port},
                dns={"nameservers": [dns_server.nameserver]},
            )
            add_domain(store, settings, sender["account"].id, "signed.test", verified=True)
            keys = active_keys(store, "signed.test")
            assert [k.algorithm for k in keys] == ["rsa"]
            dns_server.set(dns_name(keys[0]), "TXT", [split_txt(dkim_txt_value(keys[0]))])
            signer = MessageSigner(store)
            worker = DeliveryWorker(
                store=store,
                settings=settings,
                clock=clock,
                transport=make_network_transport(settings),
                rng=random.Random(1),
                bodies=signer,
            )
            mid = new_message_id()
            body = (
                b"From: Shop <shop@signed.test>\r\nTo: grey@dest.test\r\nSubject: Your receipt\r\n"
                b"Date: Fri, 27 Nov 2026 08:00:00 +0000\r\nMessage-ID: <x@relay.test>\r\n\r\nThank you.\r\n"
            )
            store.admission.admit_sync(
                NewMessage(
                    id=mid,
                    account_id=sender["account"].id,
                    channel="http",
                    from_addr="shop@signed.test",
                    sender_domain="signed.test",
                    subject="s",
                    header_message_id="<x@relay.test>",
                    tags=(),
                    body=body,
                    recipients=(NewRecipient(address="grey@dest.test", kind="to"),),
                    check_suppressions=False,
                ),
                limits=False,
            )
            await worker.run_once()
            clock.advance(400)
            await worker.run_once()
            await worker.transport.aclose()
            assert [r.state for r in store.messages.recipients(mid)] == ["delivered"]
            assert len(sink.messages) == 1 and signer.signed == 1
            delivered = sink.messages[0].data
            assert (
                delivered.startswith(b"DKIM-Signature:")
                and delivered == store.messages.body_for_delivery(mid)[0]
            )

            def txt(name: bytes, timeout: float = 5) -> bytes:
                answer = dns_server.resolver().resolve(name.decode().rstrip("."), "TXT")
                return b"".join(b"".join(r.strings) for r in answer)

            assert dkim.verify(delivered, dnsfunc=txt)
            assert not dkim.verify(delivered.replace(b"Thank you.", b"Thank you!"), dnsfunc=txt)
            if not _mail_dkim_available():
                pytest.skip(
                    "Perl Mail::DKIM is not installed (Debian: apt-get install libmail-dkim-perl)"
                )
            proc = subprocess.run(
                ["perl", str(PERL_SCRIPT), str(dns_server.port)],
                input=delivered,
                capture_output=True,
                timeout=60,
            )
            lines = proc.stdout.decode().splitlines()
            assert any(line.startswith("pass rsa-sha256") for line in lines), (
                proc.stdout + proc.stderr
            )


def admit_from(store: Store, account_id: int, domain: str, *rcpts: str) -> str:
    """A message from shop@``domain`` to ``rcpts``, admitted without limits; its id."""
    mid = new_message_id()
    store.admission.admit_sync(
        NewMessage(
            id=mid,
            account_id=account_id,
            channel="http",
            from_addr=f"shop@{domain}",
            sender_domain=domain,
            subject="s",
            header_message_id=f"<{mid}@relay.test>",
            tags=(),
            body=f"From: shop@{domain}\r\nTo: {', '.join(rcpts)}\r\nSubject: s\r\n\r\nhi\r\n".encode(),
            recipients=tuple(NewRecipient(address=r, kind="to") for r in rcpts),
            check_suppressions=False,
        ),
        limits=False,
    )
    return mid


async def test_first_messages_of_a_domain_share_one_key_load(
    tmp_path: Path,
    store: Store,
    clock: FakeClock,
    sender: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Messages signed concurrently before the key set is cached parse the PEM once, not once
    each (a thundering herd of ~36 ms parses when a relay starts on a full queue)."""
    settings = make_settings(tmp_path)
    add_domain(store, settings, sender["account"].id, "herd.test", verified=True)
    loads = 0
    real = DkimSigner.from_keys.__func__  # type: ignore[attr-defined]

    def counting(cls: type[DkimSigner], *args: Any, **kwargs: Any) -> DkimSigner:
        nonlocal loads
        loads += 1
        signer: DkimSigner = real(cls, *args, **kwargs)
        return signer

    monkeypatch.setattr(DkimSigner, "from_keys", classmethod(counting))
    for _ in range(8):
        admit_from(store, sender["account"].id, "herd.test", "r@dest.test")
    claimed = await store.queue.claim("test-owner", limit=8, lease_seconds=60, max_lease_losses=5)
    signer = MessageSigner(store)
    bodies = [b.data for b in await asyncio.gather(*(signer.prepare(c) for c in claimed))]
    assert loads == 1
    assert signer.signed == 8
    assert all(b.startswith(b"DKIM-Signature:") for b in bodies)


async def test_key_set_is_read_at_most_once_per_ttl(
    tmp_path: Path, store: Store, sender: dict[str, Any]
) -> None:
    settings = make_settings(tmp_path)
    add_domain(store, settings, sender["account"].id, "ttl.test", verified=True)
    reads: list[str] = []

    def counting(s: Store, domain: str) -> list[Any]:
        reads.append(domain)
        return active_keys(s, domain)

    for _ in range(6):
        admit_from(store, sender["account"].id, "ttl.test", "r@dest.test")
    claimed = await store.queue.claim("test-owner", limit=6, lease_seconds=60, max_lease_losses=5)
    cached = MessageSigner(store, keys_for=counting, keys_ttl=60)
    for c in claimed[:3]:
        assert (await cached.prepare(c)).data.startswith(b"DKIM-Signature:")
    assert reads == ["ttl.test"]
    uncached = MessageSigner(store, keys_for=counting, keys_ttl=0)
    for c in claimed[3:]:
        assert (await uncached.prepare(c)).data.startswith(b"DKIM-Signature:")
    assert reads == ["ttl.test"] * 4


async def test_two_transactions_of_one_message_send_the_same_signed_bytes(
    tmp_path: Path, store: Store, sender: dict[str, Any]
) -> None:
    settings = make_settings(tmp_path)
    add_domain(store, settings, sender["account"].id, "two.test", verified=True)
    mid = admit_from(store, sender["account"].id, "two.test", "a@one.example", "b@two.example")
    claimed = await store.queue.claim("test-owner", limit=2, lease_seconds=60, max_lease_losses=5)
    assert {c.domain for c in claimed} == {"one.example", "two.example"}
    signer = MessageSigner(store)
    first, second = await asyncio.gather(*(signer.prepare(c) for c in claimed))
    assert first.data == second.data and first.data.startswith(b"DKIM-Signature:")
    assert signer.signed == 1
    # stored with the first recorded outcome, not in a commit of its own
    assert store.messages.body_for_delivery(mid)[1] is False
    assert first.save is not None and first.save.data == first.data
    deferred = Outcome(
        recipient_id=claimed[0].id,
        state="deferred",
        response="451 4.3.0 later",
        next_attempt_at=store.clock.now() + 300,
    )
    assert await store.queue.record("test-owner", [deferred], prepared=first.save) == []
    signer.saved(first.save)
    assert store.messages.body_for_delivery(mid) == (first.data, True)
    # a later transaction (or another relay process) reads those bytes and stores nothing
    later = await MessageSigner(store).prepare(claimed[1])
    assert later.data == first.data and later.save is None
