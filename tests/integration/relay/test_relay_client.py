"""The outbound SMTP client against real peers: the loopback DNS server and SMTP sinks.

Two sinks share one port number: sink ``a`` on 127.0.0.1 and sink ``b`` on ::1, so the MX
``mx1.example.test`` (A 127.0.0.1) and ``mx2.example.test`` (AAAA ::1) are told apart by which
sink received the mail, with one ``port`` for every host as in production.
"""

from __future__ import annotations

import random
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from relaygate.relay.client import DeliveryResult, Outcome, Timeouts, deliver, deliver_via
from relaygate.relay.routing import (
    MxRouter,
    RouteDeferred,
    RouteFailed,
    SmarthostRouter,
    SmarthostSecurity,
)
from relaygate.relay.tlspolicy import TlsMode, TlsPolicies, TlsPolicy
from relaygate.testing.dns import DNSServer
from relaygate.testing.smtp_sink import SmtpSink

MSG = b"From: a@src.test\r\nTo: r@example.test\r\nSubject: t\r\n\r\nhello\r\n.leading dot\r\n"
FAST = Timeouts(connect=2, greeting=2, command=2, data=2, quit=1)

ZONE = {
    "pref.test": {"MX": [(10, "mx1.example.test"), (20, "mx2.example.test")]},
    "backup.test": {"MX": [(10, "mx2.example.test"), (20, "mx1.example.test")]},
    "tie.test": {"MX": [(10, "mx1.example.test"), (10, "mx2.example.test")]},
    "implicit.test": {"A": ["127.0.0.1"]},
    "null.test": {"MX": [(0, ".")]},
    "unresolvable-mx.test": {"MX": [(10, "gone.example.test"), (20, "mx1.example.test")]},
    "mx1.example.test": {"A": ["127.0.0.1"]},
    "mx2.example.test": {"AAAA": ["::1"]},
    "wrongname.example.test": {"A": ["127.0.0.1"]},
    "smarthost.test": {"A": ["127.0.0.1"]},
}


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DNSServer]:
    with DNSServer(ZONE) as server:
        yield server


@dataclass
class Pair:
    a: SmtpSink  # 127.0.0.1 (mx1)
    b: SmtpSink  # ::1 (mx2)

    @property
    def port(self) -> int:
        return self.a.port


async def make_pair(**kwargs: object) -> Pair:
    for _ in range(20):
        a = await SmtpSink(**kwargs).start()  # type: ignore[arg-type]
        b = SmtpSink(host="::1", port=a.port, **kwargs)  # type: ignore[arg-type]
        try:
            await b.start()
        except OSError:
            await a.stop()
            continue
        return Pair(a=a, b=b)
    raise OSError("no port free on both 127.0.0.1 and ::1")


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    p = await make_pair()
    yield p
    await p.a.stop()
    await p.b.stop()


async def send(
    dns_server: DNSServer, domain: str, port: int, rcpts: list[str], seed: int = 1, **kw: object
) -> DeliveryResult:
    router = MxRouter(dns_server.async_resolver(), port=port, rng=random.Random(seed))
    route = await router.route(domain)
    kw.setdefault("timeouts", FAST)
    return await deliver(
        hosts=route.hosts,
        port=port,
        helo="relay.test",
        mail_from="bounce+1@rp.test",
        recipients=rcpts,
        data=MSG,
        resolver=dns_server.async_resolver(),
        **kw,  # type: ignore[arg-type]
    )


# -- MX order and fail-over ---------------------------------------------------------------------


async def test_mx_preference_order(dns_server: DNSServer, pair: Pair) -> None:
    result = await send(dns_server, "pref.test", pair.port, ["r@pref.test"])
    assert [r.outcome for r in result.recipients] == [Outcome.DELIVERED]
    assert result.remote_host == "mx1.example.test[127.0.0.1]"
    assert len(pair.a.messages) == 1 and pair.b.messages == []
    msg = pair.a.messages[0]
    assert msg.mail_from == "bounce+1@rp.test" and msg.rcpt_tos == ("r@pref.test",)
    assert msg.data == MSG  # dot-stuffing undone by the server: the bytes arrive intact
    assert msg.helo == "relay.test"
    r = result.recipients[0]
    assert (r.code, r.status) == (250, "2.0.0")
    assert r.smtp_response == "250 2.0.0 OK queued"


async def test_backup_mx_first_when_it_has_the_lower_preference(
    dns_server: DNSServer, pair: Pair
) -> None:
    result = await send(dns_server, "backup.test", pair.port, ["r@backup.test"])
    assert result.remote_host == "mx2.example.test[::1]"
    assert len(pair.b.messages) == 1 and pair.a.messages == []


async def test_failover_when_first_mx_port_is_closed(dns_server: DNSServer, pair: Pair) -> None:
    await pair.a.stop()
    result = await send(dns_server, "pref.test", pair.port, ["r@pref.test"])
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert len(pair.b.messages) == 1
    [tried] = result.attempts
    assert (tried.host, tried.address, tried.status) == ("mx1.example.test", "127.0.0.1", "4.4.1")
    assert "Connection refused" in tried.text


@pytest.mark.parametrize(
    "greeting", ["421 4.3.2 busy, come back later", "554 5.7.1 no service for you"]
)
async def test_failover_on_4xx_and_5xx_greeting(
    dns_server: DNSServer, pair: Pair, greeting: str
) -> None:
    pair.a.greeting = greeting
    result = await send(dns_server, "pref.test", pair.port, ["r@pref.test"])
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert len(pair.b.messages) == 1
    assert result.attempts[0].status[0] == "4"  # an abandoned host is never a bounce
    assert greeting.split()[0] in result.attempts[0].text


async def test_failover_past_an_unresolvable_mx_host(dns_server: DNSServer, pair: Pair) -> None:
    result = await send(dns_server, "unresolvable-mx.test", pair.port, ["r@x.test"])
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert result.attempts[0].host == "gone.example.test"
    assert result.attempts[0].address is None


async def test_all_hosts_failing_defers_with_the_last_error(
    dns_server: DNSServer, pair: Pair
) -> None:
    pair.a.greeting = "421 4.3.2 busy"
    pair.b.greeting = "554 5.7.1 go away"
    result = await send(dns_server, "pref.test", pair.port, ["r1@pref.test", "r2@pref.test"])
    assert [r.outcome for r in result.recipients] == [Outcome.DEFERRED, Outcome.DEFERRED]
    r = result.recipients[0]
    assert r.code == 554 and r.status == "4.7.1"  # the last error, but transient
    assert r.remote_host == "mx2.example.test[::1]"
    assert len(result.attempts) == 2
    assert pair.a.messages == [] and pair.b.messages == []


async def test_equal_preferences_are_shuffled(dns_server: DNSServer, pair: Pair) -> None:
    winners = []
    for seed in range(12):
        result = await send(dns_server, "tie.test", pair.port, ["r@tie.test"], seed=seed)
        winners.append(result.remote_host)
        again = await send(dns_server, "tie.test", pair.port, ["r@tie.test"], seed=seed)
        assert again.remote_host == result.remote_host  # deterministic for one seed
    assert set(winners) == {"mx1.example.test[127.0.0.1]", "mx2.example.test[::1]"}


async def test_implicit_mx(dns_server: DNSServer, pair: Pair) -> None:
    result = await send(dns_server, "implicit.test", pair.port, ["r@implicit.test"])
    assert result.remote_host == "implicit.test[127.0.0.1]"
    assert pair.a.recipients() == ["r@implicit.test"]


async def test_null_mx_and_nxdomain_bounce_before_any_connection(
    dns_server: DNSServer, pair: Pair
) -> None:
    with pytest.raises(RouteFailed) as null:
        await send(dns_server, "null.test", pair.port, ["r@null.test"])
    assert null.value.status == "5.1.10"
    with pytest.raises(RouteFailed) as nx:
        await send(dns_server, "nowhere.test", pair.port, ["r@nowhere.test"])
    assert nx.value.status == "5.1.2"
    assert pair.a.connections == 0 and pair.b.connections == 0


async def test_servfail_defers_then_recovers(dns_server: DNSServer, pair: Pair) -> None:
    dns_server.set("flaky.test", None, "SERVFAIL")
    with pytest.raises(RouteDeferred) as err:
        await send(dns_server, "flaky.test", pair.port, ["r@flaky.test"])
    assert err.value.status == "4.4.3"
    dns_server.set("flaky.test", None, {"MX": [(10, "mx1.example.test")]})
    result = await send(dns_server, "flaky.test", pair.port, ["r@flaky.test"])
    assert result.recipients[0].outcome is Outcome.DELIVERED


# -- per-recipient replies -------------------------------------------------------------------------


async def test_mixed_recipient_replies_in_one_transaction(
    dns_server: DNSServer, pair: Pair
) -> None:
    pair.a.rcpt = {
        "grey@pref.test": "450 4.2.0 greylisted, try again",
        "nobody@pref.test": "550 5.1.1 <nobody@pref.test>: user unknown",
    }
    rcpts = ["ok@pref.test", "grey@pref.test", "nobody@pref.test", "ok2@pref.test"]
    result = await send(dns_server, "pref.test", pair.port, rcpts)
    got = {r.recipient: (r.outcome, r.code, r.status) for r in result.recipients}
    assert got == {
        "ok@pref.test": (Outcome.DELIVERED, 250, "2.0.0"),
        "grey@pref.test": (Outcome.DEFERRED, 450, "4.2.0"),
        "nobody@pref.test": (Outcome.BOUNCED, 550, "5.1.1"),
        "ok2@pref.test": (Outcome.DELIVERED, 250, "2.0.0"),
    }
    assert [r.recipient for r in result.recipients] == rcpts  # input order kept
    assert result.for_recipient("nobody@pref.test").text == "5.1.1 <nobody@pref.test>: user unknown"
    [msg] = pair.a.messages
    assert msg.rcpt_tos == ("ok@pref.test", "ok2@pref.test")  # one transaction, one copy


async def test_duplicate_recipients_are_sent_once(dns_server: DNSServer, pair: Pair) -> None:
    result = await send(dns_server, "pref.test", pair.port, ["r@pref.test", "r@pref.test"])
    assert len(result.recipients) == 1
    assert pair.a.messages[0].rcpt_tos == ("r@pref.test",)


async def test_reply_without_enhanced_code_gets_a_class_default(
    dns_server: DNSServer, pair: Pair
) -> None:
    pair.a.rcpt = {"x@pref.test": "550 no such user here"}
    result = await send(dns_server, "pref.test", pair.port, ["x@pref.test"])
    assert result.recipients[0].status == "5.0.0"
    assert pair.a.messages == []
    assert "RSET" in pair.a.verbs()  # nobody accepted: no DATA, the envelope is reset


async def test_greylisting_deferred_then_delivered(dns_server: DNSServer, pair: Pair) -> None:
    pair.a.rcpt = {"r@pref.test": ["450 4.2.0 greylisted", "250 2.1.5 ok"]}
    first = await send(dns_server, "pref.test", pair.port, ["r@pref.test"])
    assert first.recipients[0].outcome is Outcome.DEFERRED
    assert pair.a.messages == []
    second = await send(dns_server, "pref.test", pair.port, ["r@pref.test"])
    assert second.recipients[0].outcome is Outcome.DELIVERED
    assert len(pair.a.messages) == 1


@pytest.mark.parametrize(
    ("reply", "outcome", "status"),
    [
        ("553 5.7.1 sender rejected", Outcome.BOUNCED, "5.7.1"),
        ("451 4.3.0 try later", Outcome.DEFERRED, "4.3.0"),
    ],
)
async def test_mail_from_reply_applies_to_every_recipient(
    dns_server: DNSServer, pair: Pair, reply: str, outcome: Outcome, status: str
) -> None:
    pair.a.mail = reply
    result = await send(dns_server, "pref.test", pair.port, ["r1@pref.test", "r2@pref.test"])
    assert [(r.outcome, r.status) for r in result.recipients] == [(outcome, status)] * 2
    assert "RCPT" not in pair.a.verbs()
    assert pair.b.connections == 0  # MAIL FROM answered: no fail-over


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("554 5.6.0 message content rejected", Outcome.BOUNCED),
        ("452 4.3.1 insufficient storage", Outcome.DEFERRED),
    ],
)
async def test_data_reply_applies_to_accepted_recipients(
    dns_server: DNSServer, pair: Pair, reply: str, outcome: Outcome
) -> None:
    pair.a.data = reply
    pair.a.rcpt = {"nobody@pref.test": "550 5.1.1 unknown"}
    result = await send(
        dns_server, "pref.test", pair.port, ["r1@pref.test", "nobody@pref.test", "r2@pref.test"]
    )
    assert result.for_recipient("r1@pref.test").outcome is outcome
    assert result.for_recipient("r2@pref.test").smtp_response == reply
    assert result.for_recipient("nobody@pref.test").status == "5.1.1"


async def test_421_during_rcpt_defers_the_rest(dns_server: DNSServer, pair: Pair) -> None:
    pair.a.rcpt = {"r2@pref.test": "421 4.7.0 too many errors, closing"}
    rcpts = ["r1@pref.test", "r2@pref.test", "r3@pref.test"]
    result = await send(dns_server, "pref.test", pair.port, rcpts)
    assert [r.outcome for r in result.recipients] == [Outcome.DEFERRED] * 3
    assert pair.a.messages == [] and pair.a.dropped == []


async def test_connection_lost_mid_data_defers_never_delivers(
    dns_server: DNSServer, pair: Pair
) -> None:
    pair.a.disconnect_in_data = True
    pair.a.rcpt = {"nobody@pref.test": "550 5.1.1 unknown"}
    result = await send(dns_server, "pref.test", pair.port, ["r1@pref.test", "nobody@pref.test"])
    r1 = result.for_recipient("r1@pref.test")
    assert (r1.outcome, r1.status, r1.code) == (Outcome.DEFERRED, "4.4.2", None)
    assert "while sending message data" in r1.text
    assert result.for_recipient("nobody@pref.test").outcome is Outcome.BOUNCED
    assert len(pair.a.dropped) == 1  # the server had the whole message, yet it is not "delivered"
    assert pair.b.connections == 0


async def test_slow_data_reply_times_out_as_deferred(dns_server: DNSServer, pair: Pair) -> None:
    pair.a.data_delay = 1.0
    result = await send(
        dns_server, "pref.test", pair.port, ["r@pref.test"], timeouts=Timeouts(command=2, data=0.3)
    )
    r = result.recipients[0]
    assert (r.outcome, r.status) == (Outcome.DEFERRED, "4.4.2")
    assert "timed out" in r.text


async def test_slow_greeting_fails_over(dns_server: DNSServer, pair: Pair) -> None:
    pair.a.delay = 1.0
    result = await send(
        dns_server,
        "pref.test",
        pair.port,
        ["r@pref.test"],
        timeouts=Timeouts(greeting=0.3, command=2),
    )
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert result.remote_host == "mx2.example.test[::1]"
    assert "greeting" in result.attempts[0].text


async def test_message_over_the_advertised_size_bounces(dns_server: DNSServer) -> None:
    async with SmtpSink(data_size_limit=10) as sink:
        result = await send(dns_server, "implicit.test", sink.port, ["r@implicit.test"])
    assert result.recipients[0].outcome is Outcome.BOUNCED
    assert result.recipients[0].status == "5.3.4"
    assert "MAIL" not in sink.verbs()


async def test_size_and_8bitmime_are_declared(dns_server: DNSServer, pair: Pair) -> None:
    router = MxRouter(dns_server.async_resolver(), port=pair.port, rng=random.Random(1))
    data = "Subject: é\r\n\r\nnaïve\r\n".encode()
    result = await deliver_via(
        await router.route("pref.test"),
        helo="relay.test",
        mail_from="b@rp.test",
        recipients=["r@pref.test"],
        data=data,
        resolver=dns_server.async_resolver(),
        timeouts=FAST,
    )
    assert result.recipients[0].outcome is Outcome.DELIVERED
    msg = pair.a.messages[0]
    assert msg.data == data
    assert f"SIZE={len(data)}" in msg.mail_options and "BODY=8BITMIME" in msg.mail_options


# -- TLS -----------------------------------------------------------------------------------------


async def test_opportunistic_starttls_is_used(
    dns_server: DNSServer, server_tls: ssl.SSLContext
) -> None:
    async with SmtpSink(tls_context=server_tls) as sink:
        result = await send(dns_server, "implicit.test", sink.port, ["r@implicit.test"])
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert sink.messages[0].tls is True
    assert result.tls is not None and result.tls.version.startswith("TLS") and result.tls.cipher
    assert result.tls.verified is False  # a test CA nobody trusts: opportunistic does not care
    assert [c.tls for c in sink.commands if c.verb == "MAIL"] == [True]


async def test_opportunistic_without_starttls_goes_plaintext(
    dns_server: DNSServer, pair: Pair
) -> None:
    result = await send(dns_server, "pref.test", pair.port, ["r@pref.test"])
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert result.tls is None and pair.a.messages[0].tls is False


async def test_opportunistic_handshake_failure_retries_in_plaintext(
    dns_server: DNSServer, ca: object, server_tls: ssl.SSLContext
) -> None:
    import trustme

    assert isinstance(ca, trustme.CA)
    picky = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("sink.test").configure_cert(picky)
    picky.verify_mode = ssl.CERT_REQUIRED  # demands a client certificate we do not have
    ca.configure_trust(picky)
    async with SmtpSink(tls_context=picky) as sink:
        result = await send(dns_server, "implicit.test", sink.port, ["r@implicit.test"])
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert sink.messages[0].tls is False
    assert [a.status for a in result.attempts] == ["4.7.5"]


async def test_required_tls_against_a_server_without_starttls_defers(
    dns_server: DNSServer, pair: Pair
) -> None:
    result = await send(
        dns_server, "pref.test", pair.port, ["r@pref.test"], tls=TlsPolicy(mode=TlsMode.REQUIRED)
    )
    r = result.recipients[0]
    assert (r.outcome, r.status) == (Outcome.DEFERRED, "4.7.4")
    assert "TLS is required" in r.text
    for sink in (pair.a, pair.b):  # both MX hosts tried, neither got a MAIL FROM in clear
        assert sink.connections == 1
        assert "MAIL" not in sink.verbs()


async def test_required_tls_accepts_an_unverified_certificate(
    dns_server: DNSServer, server_tls: ssl.SSLContext
) -> None:
    async with SmtpSink(tls_context=server_tls) as sink:
        result = await send(
            dns_server,
            "implicit.test",
            sink.port,
            ["r@implicit.test"],
            tls=TlsPolicy(mode=TlsMode.REQUIRED),
        )
    assert result.recipients[0].outcome is Outcome.DELIVERED and sink.messages[0].tls


async def test_verified_tls_with_the_right_ca(
    dns_server: DNSServer, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    async with SmtpSink(tls_context=server_tls) as sink:
        result = await send(
            dns_server,
            "pref.test",
            sink.port,
            ["r@pref.test"],
            tls=TlsPolicy(mode=TlsMode.VERIFIED, trust=client_tls),
        )
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert result.tls is not None and result.tls.verified


async def test_verified_tls_with_the_wrong_ca_defers(
    dns_server: DNSServer, server_tls: ssl.SSLContext, other_ca_client_tls: ssl.SSLContext
) -> None:
    async with SmtpSink(tls_context=server_tls) as sink:
        result = await send(
            dns_server,
            "pref.test",
            sink.port,
            ["r@pref.test"],
            tls=TlsPolicy(mode=TlsMode.VERIFIED, trust=other_ca_client_tls),
        )
    assert result.recipients[0].outcome is Outcome.DEFERRED
    # mx1 (the sink) fails verification; mx2 has nothing listening on ::1 at that port
    assert [a.status for a in result.attempts] == ["4.7.5", "4.4.1"]
    assert "certificate verification failed" in result.attempts[0].text
    assert "MAIL" not in sink.verbs()
    assert sink.connections == 1  # no plaintext retry when verification is required


async def test_verified_tls_checks_the_mx_name_not_the_address(
    dns_server: DNSServer, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    async with SmtpSink(tls_context=server_tls) as sink:
        result = await deliver(
            hosts=["wrongname.example.test"],  # resolves to 127.0.0.1, which the cert does name
            port=sink.port,
            helo="relay.test",
            mail_from="b@rp.test",
            recipients=["r@x.test"],
            data=MSG,
            resolver=dns_server.async_resolver(),
            tls=TlsPolicy(mode=TlsMode.VERIFIED, trust=client_tls),
            timeouts=FAST,
        )
    assert result.recipients[0].status == "4.7.5"
    assert sink.messages == []


async def test_per_domain_policy_from_the_router(
    dns_server: DNSServer, server_tls: ssl.SSLContext, other_ca_client_tls: ssl.SSLContext
) -> None:
    policies = TlsPolicies(
        per_domain={"pref.test": TlsPolicy(mode=TlsMode.VERIFIED, trust=other_ca_client_tls)}
    )
    async with SmtpSink(tls_context=server_tls) as sink:
        router = MxRouter(
            dns_server.async_resolver(), port=sink.port, tls=policies, rng=random.Random(1)
        )
        strict = await deliver_via(
            await router.route("pref.test"),
            helo="relay.test",
            mail_from="b@rp.test",
            recipients=["r@pref.test"],
            data=MSG,
            resolver=dns_server.async_resolver(),
            timeouts=FAST,
        )
        relaxed = await deliver_via(
            await router.route("implicit.test"),
            helo="relay.test",
            mail_from="b@rp.test",
            recipients=["r@implicit.test"],
            data=MSG,
            resolver=dns_server.async_resolver(),
            timeouts=FAST,
        )
    assert strict.recipients[0].outcome is Outcome.DEFERRED
    assert relaxed.recipients[0].outcome is Outcome.DELIVERED


# -- smarthost -------------------------------------------------------------------------------------


async def smarthost_send(dns_server: DNSServer, router: SmarthostRouter) -> DeliveryResult:
    return await deliver_via(
        await router.route("anywhere.example"),
        helo="relay.test",
        mail_from="b@rp.test",
        recipients=["r@anywhere.example"],
        data=MSG,
        resolver=dns_server.async_resolver(),
        timeouts=FAST,
    )


async def test_smarthost_starttls_and_auth_plain(
    dns_server: DNSServer, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    async with SmtpSink(
        tls_context=server_tls, auth=("user", "s3cret"), auth_required=True
    ) as sink:
        router = SmarthostRouter(
            "smarthost.test",
            sink.port,
            security=SmarthostSecurity.STARTTLS,
            auth=("user", "s3cret"),
            trust=client_tls,
        )
        result = await smarthost_send(dns_server, router)
    assert result.recipients[0].outcome is Outcome.DELIVERED
    msg = sink.messages[0]
    assert msg.tls and msg.auth == ("user", "s3cret")
    assert result.tls is not None and result.tls.verified
    assert [c.verb for c in sink.commands if not c.tls] == ["EHLO"]  # only EHLO before STARTTLS
    assert "s3cret" not in repr(result) and "s3cret" not in repr(await router.route("x.test"))


async def test_smarthost_wrong_password_defers(
    dns_server: DNSServer, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    async with SmtpSink(
        tls_context=server_tls, auth=("user", "s3cret"), auth_required=True
    ) as sink:
        router = SmarthostRouter(
            "smarthost.test", sink.port, auth=("user", "nope"), trust=client_tls
        )
        result = await smarthost_send(dns_server, router)
    r = result.recipients[0]
    assert (r.outcome, r.status, r.code) == (Outcome.DEFERRED, "4.7.8", 535)
    assert "nope" not in r.text
    assert sink.auth_attempts == [("user", "nope", False)]
    assert sink.messages == []


async def test_smarthost_implicit_tls_with_auth(
    dns_server: DNSServer, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    async with SmtpSink(tls_context=server_tls, implicit_tls=True, auth=("u", "p")) as sink:
        router = SmarthostRouter(
            "smarthost.test",
            sink.port,
            security=SmarthostSecurity.IMPLICIT,
            auth=("u", "p"),
            trust=client_tls,
        )
        result = await smarthost_send(dns_server, router)
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert sink.messages[0].tls and sink.messages[0].auth == ("u", "p")
    assert result.tls is not None and result.tls.verified


async def test_smarthost_implicit_tls_against_plaintext_server_defers(
    dns_server: DNSServer,
) -> None:
    async with SmtpSink() as sink:
        router = SmarthostRouter(
            "smarthost.test", sink.port, security=SmarthostSecurity.IMPLICIT, verify=False
        )
        result = await smarthost_send(dns_server, router)
    r = result.recipients[0]
    assert r.outcome is Outcome.DEFERRED and r.status[0] == "4"
    assert sink.messages == []


async def test_smarthost_starttls_is_required(dns_server: DNSServer) -> None:
    async with SmtpSink(auth=("u", "p"), auth_require_tls=False) as sink:
        router = SmarthostRouter("smarthost.test", sink.port, auth=("u", "p"), verify=False)
        result = await smarthost_send(dns_server, router)
    assert result.recipients[0].status == "4.7.4"
    assert sink.auth_attempts == []  # credentials never sent in clear


async def test_smarthost_plaintext_by_explicit_choice(dns_server: DNSServer) -> None:
    async with SmtpSink(auth=("u", "p"), auth_require_tls=False) as sink:
        router = SmarthostRouter(
            "127.0.0.1", sink.port, security=SmarthostSecurity.NONE, auth=("u", "p")
        )
        result = await smarthost_send(dns_server, router)
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert sink.messages[0].auth == ("u", "p") and not sink.messages[0].tls


# -- the caller's side -------------------------------------------------------------------------------


async def test_cancellation_propagates_promptly(dns_server: DNSServer, pair: Pair) -> None:
    import asyncio
    import time

    pair.a.data_delay = 5.0
    task = asyncio.create_task(
        send(
            dns_server, "pref.test", pair.port, ["r@pref.test"], timeouts=Timeouts(data=10, quit=5)
        )
    )
    await asyncio.sleep(0.3)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.0  # no polite QUIT wait on shutdown


async def test_invalid_calls_are_refused(dns_server: DNSServer) -> None:
    common = {
        "hosts": ["127.0.0.1"],
        "port": 9,
        "helo": "relay.test",
        "mail_from": "b@rp.test",
        "data": MSG,
        "resolver": dns_server.async_resolver(),
    }
    with pytest.raises(ValueError):
        await deliver(recipients=[], **common)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await deliver(
            recipients=["r@x.test"],
            implicit_tls=True,
            tls=TlsPolicy(mode=TlsMode.NONE),
            **common,  # type: ignore[arg-type]
        )


async def test_bad_recipient_syntax_bounces_only_that_recipient(
    dns_server: DNSServer, pair: Pair
) -> None:
    result = await send(
        dns_server, "pref.test", pair.port, ["ok@pref.test", "evil@pref.test\r\nRSET"]
    )
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert (result.recipients[1].outcome, result.recipients[1].status) == (Outcome.BOUNCED, "5.1.3")
    assert pair.a.messages[0].rcpt_tos == ("ok@pref.test",)


async def test_null_sender(dns_server: DNSServer, pair: Pair) -> None:
    router = MxRouter(dns_server.async_resolver(), port=pair.port, rng=random.Random(1))
    result = await deliver_via(
        await router.route("pref.test"),
        helo="relay.test",
        mail_from="",
        recipients=["r@pref.test"],
        data=MSG,
        resolver=dns_server.async_resolver(),
        timeouts=FAST,
    )
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert pair.a.messages[0].mail_from == ""
