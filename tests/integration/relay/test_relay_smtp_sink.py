"""The SMTP sink itself, driven by a real SMTP client (aiosmtplib)."""

from __future__ import annotations

import asyncio
import ssl

import aiosmtplib
import pytest

from relaygate.testing.smtp_sink import SmtpSink

MSG = b"Subject: hi\r\n\r\nbody\r\n"


def client(port: int, *, timeout: float = 5, **kw: object) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(
        hostname="127.0.0.1", port=port, local_hostname="client.test", timeout=timeout, **kw
    )


async def test_records_message_and_envelope() -> None:
    async with SmtpSink() as sink:
        smtp = client(sink.port, start_tls=False)
        await smtp.connect()
        await smtp.sendmail("a@src.test", ["b@dst.test", "c@dst.test"], MSG)
        await smtp.quit()
        [msg] = await sink.wait_for(1)
    assert msg.mail_from == "a@src.test"
    assert msg.rcpt_tos == ("b@dst.test", "c@dst.test")
    assert msg.data == MSG
    assert msg.tls is False
    assert msg.helo == "client.test"
    assert sink.verbs()[:2] == ["EHLO", "MAIL"]


async def test_per_recipient_replies_and_greylisting() -> None:
    rcpt = {
        "bad@dst.test": "550 5.1.1 user unknown",
        "grey@dst.test": ["450 4.2.0 greylisted", "250 2.1.5 ok"],
    }
    async with SmtpSink(rcpt=rcpt) as sink:
        smtp = client(sink.port, start_tls=False)
        await smtp.connect()
        await smtp.mail("a@src.test")
        assert (await smtp.rcpt("ok@dst.test")).code == 250
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as bad:
            await smtp.rcpt("bad@dst.test")
        assert bad.value.code == 550
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as grey:
            await smtp.rcpt("grey@dst.test")
        assert grey.value.code == 450
        assert (await smtp.rcpt("grey@dst.test")).code == 250
        await smtp.data(MSG)
        await smtp.quit()
    assert sink.messages[0].rcpt_tos == ("ok@dst.test", "grey@dst.test")


async def test_callable_scripts_and_mid_test_change() -> None:
    async with SmtpSink(rcpt=lambda r: "550 5.7.1 no" if r.startswith("x") else None) as sink:
        smtp = client(sink.port, start_tls=False)
        await smtp.connect()
        await smtp.mail("a@src.test")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused):
            await smtp.rcpt("x@dst.test")
        await smtp.rset()
        sink.mail = "451 4.3.0 try later"
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await smtp.mail("a@src.test")
        assert refused.value.code == 451
        sink.mail = None
        sink.data = "554 5.6.0 content rejected"
        await smtp.mail("a@src.test")
        await smtp.rcpt("y@dst.test")
        with pytest.raises(aiosmtplib.SMTPDataError) as data:
            await smtp.data(MSG)
        assert data.value.code == 554
        await smtp.quit()
    assert sink.messages == []
    assert len(sink.refused) == 1


async def test_greeting_refusal_and_drop_after_greeting() -> None:
    async with SmtpSink(greeting="554 5.7.1 go away") as sink:
        with pytest.raises(aiosmtplib.SMTPConnectResponseError) as err:
            await client(sink.port).connect()
        assert err.value.code == 554
    async with SmtpSink(drop_after_greeting=True) as sink:
        smtp = client(sink.port, start_tls=False)
        await smtp.connect()
        with pytest.raises(aiosmtplib.SMTPServerDisconnected):
            await smtp.ehlo()
            await smtp.ehlo()


async def test_disconnect_in_data_never_answers() -> None:
    async with SmtpSink(disconnect_in_data=True) as sink:
        smtp = client(sink.port, start_tls=False)
        await smtp.connect()
        await smtp.mail("a@src.test")
        await smtp.rcpt("b@dst.test")
        with pytest.raises(aiosmtplib.SMTPServerDisconnected):
            await smtp.data(MSG)
    assert sink.messages == []
    assert [m.data for m in sink.dropped] == [MSG]


async def test_slow_replies_delay_the_client() -> None:
    async with SmtpSink(delay=0.3) as sink:
        smtp = client(sink.port, start_tls=False, timeout=0.1)
        with pytest.raises(aiosmtplib.SMTPTimeoutError):
            await smtp.connect()


async def test_wait_for_times_out() -> None:
    async with SmtpSink() as sink:
        with pytest.raises(TimeoutError):
            await sink.wait_for(1, timeout=0.05)


async def test_starttls_and_auth(server_tls: ssl.SSLContext, client_tls: ssl.SSLContext) -> None:
    async with SmtpSink(tls_context=server_tls, auth=("u", "p"), auth_required=True) as sink:
        smtp = client(sink.port, tls_context=client_tls)
        await smtp.connect(hostname="127.0.0.1", start_tls=False)
        await smtp.starttls(server_hostname="sink.test")
        await smtp.ehlo()
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as err:
            await smtp.auth_plain("u", "wrong")
        assert err.value.code == 535
        await smtp.auth_plain("u", "p")
        await smtp.sendmail("a@src.test", ["b@dst.test"], MSG)
        await smtp.quit()
    [msg] = sink.messages
    assert msg.tls and msg.tls_version and msg.tls_version.startswith("TLS")
    assert msg.auth == ("u", "p")
    assert sink.auth_attempts == [("u", "wrong", False), ("u", "p", True)]


async def test_auth_refused_before_starttls(server_tls: ssl.SSLContext) -> None:
    async with SmtpSink(tls_context=server_tls, auth=("u", "p")) as sink:
        smtp = client(sink.port, start_tls=False)
        await smtp.connect()
        await smtp.ehlo()
        assert smtp.supports_extension("starttls")
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as err:
            await smtp.auth_plain("u", "p")
        assert err.value.code == 538
    assert sink.auth_attempts == []


async def test_implicit_tls_with_auth_login(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    async with SmtpSink(tls_context=server_tls, implicit_tls=True, auth=("u", "p")) as sink:
        smtp = client(sink.port, use_tls=True, tls_context=client_tls)
        # certificate names include 127.0.0.1, so connecting by address verifies
        await smtp.connect()
        await smtp.ehlo()
        await smtp.auth_login("u", "p")
        await smtp.sendmail("a@src.test", ["b@dst.test"], MSG)
        await smtp.quit()
    assert sink.messages[0].tls and sink.messages[0].auth == ("u", "p")


async def test_two_sinks_in_parallel_get_distinct_ports() -> None:
    async with SmtpSink() as one, SmtpSink() as two:
        assert one.port != two.port and one.port > 0
        await asyncio.sleep(0)
