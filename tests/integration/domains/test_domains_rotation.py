"""DKIM key rotation end to end: old selector before the switch, new after; both verify (dkimpy)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dkim
import pytest

from relaygate import domains
from relaygate.clock import FakeClock
from relaygate.dkim.signer import DkimSigner, to_crlf
from relaygate.errors import RequestError
from relaygate.store.states import DomainStatus, KeyState
from relaygate.testing.dns import DNSServer

MESSAGE = (
    b"From: A <a@example.com>\r\nTo: b@example.org\r\nSubject: rotation\r\n"
    b"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <r@example.com>\r\n\r\nHello\r\n"
)


def _dnsfunc(server: DNSServer) -> Callable[..., bytes]:
    resolver = server.resolver()

    def get_txt(name: bytes, timeout: float = 5) -> bytes:
        answer = resolver.resolve(name.decode(), "TXT")
        return b"".join(answer[0].strings)

    return get_txt


def _sign(d: Any) -> bytes:
    signer = DkimSigner.from_keys(
        d.store.dkim_keys.signing("example.com"), clock=FakeClock(d.clock.now())
    )
    return signer.sign(MESSAGE) + to_crlf(MESSAGE)


async def test_rotation_end_to_end(make_domain: Any, dns_server: DNSServer) -> None:
    d = make_domain()
    d.publish_required()
    await d.verify()
    old = d.setup.keys[0]
    before = _sign(d)
    assert dkim.verify(before, dnsfunc=_dnsfunc(dns_server))
    assert f"s={old.selector};" in before.decode()

    rotation = domains.rotate_keys(d.store, d.settings, "example.com", grace=86400, selector="next")
    [new] = rotation.created
    assert new.state is KeyState.PENDING and new.selector == "next"
    assert {r.name for r in rotation.records} == {
        f"{old.selector}._domainkey.example.com",
        "next._domainkey.example.com",
    }
    again = domains.rotate_keys(d.store, d.settings, "example.com")
    assert again.created == () and [k.selector for k in again.already_pending] == ["next"]

    # Not published yet: verify keeps signing with the old key.
    report = await d.verify()
    assert report.status is DomainStatus.VERIFIED
    assert any("not published yet; signing stays on" in w for w in report.warnings)
    assert [k.selector for k in d.store.dkim_keys.signing("example.com")] == [old.selector]

    d.publish([r for r in rotation.records if r.selector == "next"][0])
    d.clock.advance(10)
    report = await d.verify()
    assert [k.selector for k in d.store.dkim_keys.signing("example.com")] == ["next"]
    assert any("now retires" in w and old.selector in w for w in report.warnings)
    after = _sign(d)
    assert "s=next;" in after.decode()
    dnsfunc = _dnsfunc(dns_server)
    assert dkim.verify(after, dnsfunc=dnsfunc)
    assert dkim.verify(before, dnsfunc=dnsfunc)  # the old key is still published during grace
    [retiring] = d.store.dkim_keys.of_domain("example.com", states=(KeyState.RETIRING,))
    assert retiring.selector == old.selector and retiring.retire_after == d.clock.now() + 86400
    notes = {c.record.selector: c.record.note for c in report.records if c.record.purpose == "dkim"}
    assert "keep published until" in notes[old.selector]

    # After the grace period, the next check retires it and says the record can go.
    d.clock.advance(86400)
    report = await d.verify()
    assert any("grace period of the old key" in w and "remove" in w for w in report.warnings)
    assert (
        d.store.dkim_keys.of_domain("example.com", states=(KeyState.RETIRED,))[0].selector
        == old.selector
    )
    [event] = [e for e in d.events() if e.type == "dkim_key_retired"]
    assert "can be removed" in event.data["reason"]
    assert [c.record.selector for c in report.records if c.record.purpose == "dkim"] == ["next"]


async def test_rotation_needs_an_active_key(make_domain: Any) -> None:
    d = make_domain()
    with pytest.raises(RequestError) as info:
        domains.rotate_keys(d.store, d.settings, "example.com")
    assert info.value.status == 409 and "identity verify" in info.value.detail
