"""Connection reuse (Postfix's connection cache) against a real aiosmtpd sink on loopback.

A session whose transaction ended cleanly is kept idle and the next delivery to the same host
starts at MAIL FROM; a cached session that is gone is replaced by a fresh connection without
losing or duplicating the message; expired, failed or differently-secured sessions are not reused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relaygate.relay.client import DeliveryResult, Outcome, SessionCache, Timeouts, deliver
from relaygate.relay.outbound import make_network_transport
from relaygate.relay.tlspolicy import TlsMode, TlsPolicy
from relaygate.testing.dns import DNSServer
from relaygate.testing.smtp_sink import SmtpSink

from ...conftest import make_settings  # type: ignore[import-not-found]

FAST = Timeouts(connect=2, greeting=2, command=2, data=2, quit=1)
MSG = b"From: a@src.test\r\nTo: r@example.test\r\nSubject: t\r\n\r\nhello\r\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as s:
        yield s


@pytest.fixture
async def cache() -> AsyncIterator[SessionCache]:
    c = SessionCache()
    yield c
    await c.aclose()


async def send(
    sink: SmtpSink,
    sessions: SessionCache | None,
    rcpt: str = "r@example.test",
    *,
    host: str = "127.0.0.1",
    tls: TlsPolicy | None = None,
    resolver: object = None,
) -> DeliveryResult:
    return await deliver(
        hosts=[host],
        port=sink.port,
        helo="relay.test",
        mail_from="bounce@rp.test",
        recipients=[rcpt],
        data=MSG,
        resolver=resolver,  # type: ignore[arg-type]  # IP literals need no lookups
        tls=tls,
        timeouts=FAST,
        sessions=sessions,
    )


async def wait_for_verb(sink: SmtpSink, verb: str, count: int = 1) -> None:
    async def seen() -> None:
        while sink.verbs().count(verb) < count:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(seen(), 3)


async def test_second_transaction_reuses_the_session(sink: SmtpSink, cache: SessionCache) -> None:
    first = await send(sink, cache, "one@example.test")
    second = await send(sink, cache, "two@example.test")
    assert [r.outcome for r in first.recipients + second.recipients] == [Outcome.DELIVERED] * 2
    assert (first.reused, second.reused) == (False, True)
    assert second.remote_host == "127.0.0.1[127.0.0.1]"
    assert sink.connections == 1
    assert sink.verbs() == ["EHLO", "MAIL", "RCPT", "DATA", "MAIL", "RCPT", "DATA"]
    assert [m.rcpt_tos for m in sink.messages] == [("one@example.test",), ("two@example.test",)]
    assert len(cache) == 1 and cache.reused == 1
    await cache.aclose()
    assert sink.verbs()[-1] == "QUIT"  # closed politely at shutdown
    assert len(cache) == 0


async def test_without_a_cache_every_transaction_has_its_own_connection(sink: SmtpSink) -> None:
    await send(sink, None)
    await send(sink, None)
    assert sink.connections == 2
    assert sink.verbs().count("QUIT") == 2


async def test_session_closed_by_the_server_is_replaced_without_loss_or_duplicate(
    sink: SmtpSink, cache: SessionCache
) -> None:
    await send(sink, cache, "one@example.test")
    assert sink.drop_connections() == 1  # the server's idle time-out, unseen by the client
    await asyncio.sleep(0)  # let the close reach the client's protocol (or not: both work)
    second = await send(sink, cache, "two@example.test")
    assert second.recipients[0].outcome is Outcome.DELIVERED
    assert sink.connections == 2
    assert [m.rcpt_tos for m in sink.messages] == [("one@example.test",), ("two@example.test",)]


async def test_421_to_mail_on_a_reused_session_opens_a_fresh_one(
    sink: SmtpSink, cache: SessionCache
) -> None:
    sink.mail = ["250 2.1.0 OK", "421 4.4.2 sink.test idle for too long", "250 2.1.0 OK"]
    await send(sink, cache, "one@example.test")
    second = await send(sink, cache, "two@example.test")
    assert second.recipients[0].outcome is Outcome.DELIVERED
    assert second.reused is False
    assert sink.connections == 2
    assert len(sink.messages) == 2


async def test_421_to_mail_on_a_fresh_session_defers(sink: SmtpSink, cache: SessionCache) -> None:
    sink.mail = "421 4.3.2 sink.test shutting down"
    result = await send(sink, cache)
    [r] = result.recipients
    assert (r.outcome, r.code) == (Outcome.DEFERRED, 421)
    assert sink.connections == 1  # no second try behind the server's back


async def test_idle_session_past_the_limit_is_not_reused(sink: SmtpSink) -> None:
    clock = Clock()
    cache = SessionCache(idle_seconds=2.0, monotonic=clock)
    try:
        await send(sink, cache)
        clock.now += 2.5
        result = await send(sink, cache)
        assert result.recipients[0].outcome is Outcome.DELIVERED and not result.reused
        assert sink.connections == 2
        await wait_for_verb(sink, "QUIT")  # the expired one got a QUIT
    finally:
        await cache.aclose()


async def test_session_older_than_max_age_is_not_reused(sink: SmtpSink) -> None:
    clock = Clock()
    cache = SessionCache(idle_seconds=600, max_age=300, monotonic=clock)
    try:
        await send(sink, cache)
        clock.now += 200
        assert (await send(sink, cache)).reused  # idle 200 s < 600, age 200 s < 300
        clock.now += 150
        assert not (await send(sink, cache)).reused  # age 350 s
        assert sink.connections == 2
    finally:
        await cache.aclose()


async def test_reaper_quits_idle_sessions(sink: SmtpSink) -> None:
    cache = SessionCache(idle_seconds=0.1)
    try:
        await send(sink, cache)
        assert len(cache) == 1
        await wait_for_verb(sink, "QUIT")
        assert len(cache) == 0
    finally:
        await cache.aclose()


async def test_refused_message_resets_the_session_and_it_is_reused(
    sink: SmtpSink, cache: SessionCache
) -> None:
    sink.data = ["554 5.7.1 message refused", "250 2.0.0 OK"]
    first = await send(sink, cache, "one@example.test")
    second = await send(sink, cache, "two@example.test")
    assert first.recipients[0].outcome is Outcome.BOUNCED
    assert second.recipients[0].outcome is Outcome.DELIVERED and second.reused
    assert sink.connections == 1
    assert sink.verbs() == ["EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA"]


async def test_every_recipient_refused_resets_and_reuses(
    sink: SmtpSink, cache: SessionCache
) -> None:
    sink.rcpt = {"gone@example.test": "550 5.1.1 no such user"}
    first = await send(sink, cache, "gone@example.test")
    second = await send(sink, cache, "two@example.test")
    assert first.recipients[0].outcome is Outcome.BOUNCED
    assert second.reused and second.recipients[0].outcome is Outcome.DELIVERED
    assert sink.connections == 1


async def test_connection_lost_in_data_is_never_cached(sink: SmtpSink, cache: SessionCache) -> None:
    sink.disconnect_in_data = True
    first = await send(sink, cache)
    assert first.recipients[0].outcome is Outcome.DEFERRED
    assert len(cache) == 0
    sink.disconnect_in_data = False
    second = await send(sink, cache)
    assert second.recipients[0].outcome is Outcome.DELIVERED and not second.reused
    assert sink.connections == 2


async def test_sessions_are_not_shared_across_tls_policies(
    sink: SmtpSink, cache: SessionCache
) -> None:
    await send(sink, cache, tls=TlsPolicy(mode=TlsMode.NONE))
    # an opportunistic delivery would have tried STARTTLS: it gets a session of its own
    result = await send(sink, cache, tls=TlsPolicy(mode=TlsMode.OPPORTUNISTIC))
    assert not result.reused
    assert sink.connections == 2


async def test_two_domains_with_one_mx_host_share_its_session(
    sink: SmtpSink, cache: SessionCache
) -> None:
    zone = {"mx.shared.test": {"A": ["127.0.0.1"]}}
    with DNSServer(zone) as dns:
        resolver = dns.async_resolver()
        a = await send(sink, cache, "x@one.test", host="mx.shared.test", resolver=resolver)
        b = await send(sink, cache, "y@two.test", host="MX.shared.test", resolver=resolver)
    assert (a.reused, b.reused) == (False, True)
    assert b.remote_host == "mx.shared.test[127.0.0.1]"
    assert sink.connections == 1


async def test_transport_from_settings_caches_unless_turned_off(tmp_path: Path) -> None:
    on = make_network_transport(make_settings(tmp_path, delivery={"mode": "mx"}))
    off = make_network_transport(
        make_settings(tmp_path, delivery={"mode": "mx", "connection_cache_seconds": 0})
    )
    assert on.sessions is not None and on.sessions.idle_seconds == 2.0
    assert off.sessions is None
    await on.aclose()
    await off.aclose()


async def test_without_a_cache_a_refused_message_goes_straight_to_quit(sink: SmtpSink) -> None:
    sink.data = "554 5.7.1 message refused"
    result = await send(sink, None)
    assert result.recipients[0].outcome is Outcome.BOUNCED
    assert sink.verbs() == ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]  # no RSET round trip
