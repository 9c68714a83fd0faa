"""Real clients (smtplib, aiosmtplib) over plain, STARTTLS and implicit TLS submit through the funnel."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Callable
from email import message_from_bytes
from typing import Any

import aiosmtplib

from relaygate.store.sqlite import SqliteStore as Store

CLIENT = "client.test"


def stored(store: Store, reply: str) -> tuple[dict[str, Any], bytes]:
    msg_id = reply.rsplit(" ", 1)[-1]
    assert msg_id.startswith("msg_"), reply
    found = store.messages.get(msg_id)
    assert found is not None
    return found, store.messages.body(msg_id)


async def test_smtplib_auth_plain_on_loopback_without_tls(
    gw: Any, store: Store, sender: dict[str, Any], msg: Callable[..., bytes]
) -> None:
    def send() -> tuple[int, bytes]:
        with smtplib.SMTP(gw.host, gw.port, local_hostname=CLIENT, timeout=10) as s:
            s.ehlo()
            assert s.has_extn("auth") and s.has_extn("pipelining") and s.has_extn("smtputf8")
            assert s.has_extn("8bitmime") and s.has_extn("size")
            assert s.esmtp_features["size"] == str(25 * 1024 * 1024)
            assert not s.has_extn("starttls")  # no certificate configured
            s.login("apikey", sender["secret"])
            s.mail("app@example.com")
            s.rcpt("r@dest.test")
            return s.data(msg(extra="X-SM-Tags: welcome, onboarding\r\n"))

    code, text = await asyncio.to_thread(send)
    assert code == 250
    found, body = stored(store, text.decode())
    assert found["channel"] == "smtp"
    assert found["tags"] == ["welcome", "onboarding"]
    assert [r["address"] for r in found["recipients"]] == ["r@dest.test"]
    assert found["recipients"][0]["kind"] == "to"
    assert b"X-SM-Tags" not in body
    parsed = message_from_bytes(body)
    assert parsed["Received"].startswith("from client.test ([127.0.0.1])")
    assert "with ESMTPA id " + found["id"] in " ".join(parsed["Received"].split())
    assert parsed["Message-ID"] == f"<{found['id']}@relay.test>"
    assert parsed["Date"]
    # The submitted bytes follow our headers untouched.
    assert body.endswith(msg().replace(b"X-SM-Tags: welcome, onboarding\r\n", b""))


async def test_aiosmtplib_auth_login(
    gw: Any, store: Store, sender: dict[str, Any], msg: Callable[..., bytes]
) -> None:
    async with aiosmtplib.SMTP(
        hostname=gw.host, port=gw.port, local_hostname=CLIENT, start_tls=False, timeout=10
    ) as client:
        await client.ehlo()
        await client.auth_login("anything-goes", sender["secret"])
        errors, text = await client.sendmail("app@example.com", ["r@dest.test"], msg())
    assert errors == {}
    found, _ = stored(store, text)
    assert found["from"] == "app@example.com"


async def test_starttls_then_auth_from_a_non_loopback_policy(
    start_gateway: Any, certs: Any, store: Store, sender: dict[str, Any], msg: Callable[..., bytes]
) -> None:
    gw = await start_gateway(tls=True)
    async with aiosmtplib.SMTP(
        hostname=gw.host,
        port=gw.port,
        local_hostname=CLIENT,
        start_tls=True,
        tls_context=certs.client_context(),
        timeout=10,
    ) as client:
        await client.login("apikey", sender["secret"])
        _errors, text = await client.sendmail("app@example.com", ["r@dest.test"], msg())
    _found, body = stored(store, text)
    assert b"with ESMTPSA id" in body


async def test_smtplib_starttls(
    start_gateway: Any, certs: Any, store: Store, sender: dict[str, Any], msg: Callable[..., bytes]
) -> None:
    gw = await start_gateway(tls=True)

    def send() -> tuple[int, bytes]:
        with smtplib.SMTP(gw.host, gw.port, local_hostname=CLIENT, timeout=10) as s:
            s.ehlo()
            assert s.has_extn("starttls")
            s.starttls(context=certs.client_context())
            s.ehlo()
            assert not s.has_extn("starttls")
            s.login("apikey", sender["secret"])
            s.mail("app@example.com")
            s.rcpt("r@dest.test")
            return s.data(msg())

    code, text = await asyncio.to_thread(send)
    assert code == 250
    stored(store, text.decode())


async def test_implicit_tls_smtplib_and_aiosmtplib(
    start_gateway: Any, certs: Any, store: Store, sender: dict[str, Any], msg: Callable[..., bytes]
) -> None:
    gw = await start_gateway(tls=True)

    def send() -> tuple[int, bytes]:
        with smtplib.SMTP_SSL(
            gw.host, gw.tls_port, local_hostname=CLIENT, context=certs.client_context(), timeout=10
        ) as s:
            s.login("apikey", sender["secret"])
            s.mail("app@example.com")
            s.rcpt("r@dest.test")
            return s.data(msg())

    code, text = await asyncio.to_thread(send)
    assert code == 250
    _, body = stored(store, text.decode())
    assert b"with ESMTPSA id" in body

    async with aiosmtplib.SMTP(
        hostname=gw.host,
        port=gw.tls_port,
        local_hostname=CLIENT,
        use_tls=True,
        tls_context=certs.client_context(),
        timeout=10,
    ) as client:
        await client.login("apikey", sender["secret"])
        _errors, text2 = await client.sendmail("app@example.com", ["r@dest.test"], msg())
    stored(store, text2)


async def test_trusted_network_sends_without_auth(
    start_gateway: Any, store: Store, sender: dict[str, Any], msg: Callable[..., bytes]
) -> None:
    gw = await start_gateway(trusted_networks={"127.0.0.0/8": sender["account"].id})
    async with aiosmtplib.SMTP(
        hostname=gw.host, port=gw.port, local_hostname=CLIENT, start_tls=False, timeout=10
    ) as client:
        _errors, text = await client.sendmail("app@example.com", ["r@dest.test"], msg())
    found, body = stored(store, text)
    assert b"with ESMTP id" in body
    assert found["from"] == "app@example.com"
