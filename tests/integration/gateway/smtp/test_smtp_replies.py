"""Every reply code of the SMTP contract, from the line a client sees."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from relaygate.errors import StoreUnavailable
from relaygate.store.sqlite import SqliteStore as Store


def plain(secret: str) -> bytes:
    return b"AUTH PLAIN " + base64.b64encode(f"\0apikey\0{secret}".encode())


async def authed(connect: Any, secret: str) -> Any:
    c = await connect()
    assert (await c.cmd("EHLO client.test")).startswith("250-relay.test")
    assert (await c.cmd(plain(secret))).startswith("235 2.7.0")
    return c


async def data(c: Any, payload: bytes) -> str:
    assert (await c.cmd("DATA")).startswith("354 ")
    stuffed = b"\r\n".join(
        b"." + ln if ln.startswith(b".") else ln for ln in payload.split(b"\r\n")
    )
    return await c.cmd(stuffed.rstrip(b"\r\n") + b"\r\n.")


async def test_mail_from_unverified_identity_is_550_at_mail(
    gw: Any, connect: Any, sender: dict[str, Any]
) -> None:
    c = await authed(connect, sender["secret"])
    reply = await c.cmd("MAIL FROM:<someone@elsewhere.test>")
    assert reply.startswith("550 5.7.1 MAIL FROM someone@elsewhere.test is not a verified identity")
    assert (await c.cmd("MAIL FROM:<app@example.com>")).startswith("250 2.1.0")


async def test_header_from_unverified_identity_is_550_after_data(
    gw: Any, connect: Any, store: Store, sender: dict[str, Any], msg: Callable[..., bytes]
) -> None:
    c = await authed(connect, sender["secret"])
    await c.cmd("MAIL FROM:<app@example.com>")
    await c.cmd("RCPT TO:<r@dest.test>")
    reply = await data(c, msg(frm="Boss <ceo@bank.test>"))
    assert reply.startswith("550 5.7.1 header From ceo@bank.test is not a verified identity")
    await c.cmd("MAIL FROM:<app@example.com>")
    await c.cmd("RCPT TO:<r@dest.test>")
    assert (await data(c, msg(extra="From: second@example.com\r\n"))).startswith("550 5.6.0 ")
    await c.cmd("MAIL FROM:<app@example.com>")
    await c.cmd("RCPT TO:<r@dest.test>")
    assert (await data(c, b"Subject: no from\r\n\r\nbody\r\n")).startswith("550 5.6.0 ")
    assert store.queue.count_by_state() == {}


async def test_free_plan_is_550_naming_the_reason(
    gw: Any, connect: Any, store: Store, sender: dict[str, Any]
) -> None:
    store.accounts.update(sender["account"].id, plan="free")
    c = await authed(connect, sender["secret"])
    reply = await c.cmd("MAIL FROM:<app@example.com>")
    assert reply.startswith("550 5.7.1 ") and "free plan" in reply


async def test_trusted_network_on_free_plan_is_550_too(
    start_gateway: Any, connect: Any, store: Store, sender: dict[str, Any]
) -> None:
    store.accounts.update(sender["account"].id, plan="free")
    gw = await start_gateway(trusted_networks={"127.0.0.1/32": sender["account"].id})
    c = await connect(port=gw.port)
    await c.cmd("EHLO client.test")
    reply = await c.cmd("MAIL FROM:<app@example.com>")
    assert reply.startswith("550 5.7.1 ") and "free plan" in reply


async def test_fifty_first_recipient_is_452(
    gw: Any, connect: Any, store: Store, sender: dict[str, Any], msg: Callable[..., bytes]
) -> None:
    c = await authed(connect, sender["secret"])
    await c.cmd("MAIL FROM:<app@example.com>")
    for i in range(50):
        assert (await c.cmd(f"RCPT TO:<r{i}@dest.test>")).startswith("250 2.1.5")
    assert (await c.cmd("RCPT TO:<r50@dest.test>")).startswith("452 4.5.3 ")
    reply = await data(c, msg())
    assert reply.startswith("250 2.0.0 OK queued as msg_")
    assert len(store.messages.recipients(reply.rsplit(" ", 1)[1])) == 50


async def test_size_param_and_actual_size_are_552(
    start_gateway: Any,
    connect: Any,
    store: Store,
    sender: dict[str, Any],
    msg: Callable[..., bytes],
) -> None:
    gw = await start_gateway(max_message_bytes=4096)
    c = await connect(port=gw.port)
    ehlo = await c.cmd("EHLO client.test")
    assert "250-SIZE 4096" in ehlo
    await c.cmd(plain(sender["secret"]))
    assert (await c.cmd("MAIL FROM:<app@example.com> SIZE=5000")).startswith("552 5.3.4 ")
    assert (await c.cmd("MAIL FROM:<app@example.com> SIZE=1000")).startswith("250 ")
    await c.cmd("RCPT TO:<r@dest.test>")
    reply = await data(c, msg(body="x" * 70 + "\r\n" * 1 + ("y" * 70 + "\r\n") * 80))
    assert reply.startswith("552 5.3.4 ")
    assert store.queue.count_by_state() == {}
    # The session goes on.
    assert (await c.cmd("MAIL FROM:<app@example.com>")).startswith("250 ")


async def test_rate_limit_and_quota_are_451_471(
    gw: Any, connect: Any, store: Store, sender: dict[str, Any], msg: Callable[..., bytes]
) -> None:
    store.accounts.update(sender["account"].id, rate_limit=1, daily_quota=2)
    c = await authed(connect, sender["secret"])
    for expected in ("250 2.0.0", "451 4.7.1 rate limit"):
        await c.cmd("MAIL FROM:<app@example.com>")
        await c.cmd("RCPT TO:<r@dest.test>")
        assert (await data(c, msg())).startswith(expected)
    store.accounts.update(sender["account"].id, rate_limit=100)
    await c.cmd("MAIL FROM:<app@example.com>")
    await c.cmd("RCPT TO:<a@dest.test>")
    await c.cmd("RCPT TO:<b@dest.test>")
    assert (await data(c, msg())).startswith("451 4.7.1 daily quota exceeded")


async def test_store_unavailable_and_internal_errors_are_451_430_without_internals(
    gw: Any,
    connect: Any,
    store: Store,
    sender: dict[str, Any],
    msg: Callable[..., bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = await authed(connect, sender["secret"])

    async def broken(**kwargs: Any) -> Any:
        raise RuntimeError("boom at /srv/secret/path.py line 42")

    monkeypatch.setattr(gw.admission, "submit_smtp", broken)
    await c.cmd("MAIL FROM:<app@example.com>")
    await c.cmd("RCPT TO:<r@dest.test>")
    reply = await data(c, msg())
    assert reply == "451 4.3.0 Internal error; try again later"

    def locked(account_id: int) -> Any:
        raise StoreUnavailable("database is locked at /var/lib/x")

    monkeypatch.setattr(store.accounts, "get", locked)
    assert (await c.cmd("MAIL FROM:<app@example.com>")).startswith("451 4.3.0 The spool")
    monkeypatch.undo()
    store.stop_writer()  # the group-commit writer is gone: commits fail
    await c.cmd("MAIL FROM:<app@example.com>")
    await c.cmd("RCPT TO:<r@dest.test>")
    assert (await data(c, msg())).startswith("451 4.3.0 The spool cannot accept mail")


async def test_unauthenticated_client_is_no_open_relay(gw: Any, connect: Any) -> None:
    c = await connect()
    await c.cmd("EHLO client.test")
    assert (await c.cmd("MAIL FROM:<anyone@anywhere.test>")).startswith("250 ")
    tricks = [
        "victim@external.test",
        "VICTIM@EXTERNAL.TEST",
        "victim%external.test@bounces.relay.test",  # percent hack
        "victim!external.test@bounces.relay.test",  # bang path
        "@bounces.relay.test:victim@external.test",  # source route
        '"victim@external.test"@bounces.relay.test',  # quoted local part with @
        "victim@external.test@bounces.relay.test",
        "victim@[127.0.0.1]",  # IP literal
        "victim@bounces.relay.test.external.test",
        "victim@evil.bounces.relay.test",
        "postmaster@relay.test",
    ]
    for address in tricks:
        reply = await c.cmd(f"RCPT TO:<{address}>")
        assert reply.startswith(("554 5.7.1", "553 5.1.3")), (address, reply)
    assert (await c.cmd("RCPT TO:<victim@external.test.>")).startswith(("554 5.7.1", "553 5.1.3"))
    assert (await c.cmd("DATA")).startswith("503 5.5.1")  # nothing was accepted


async def test_bounce_and_feedback_mail_goes_to_the_inbound_table(
    gw: Any, connect: Any, store: Store
) -> None:
    c = await connect()
    await c.cmd("EHLO mx.remote.test")
    assert (await c.cmd("MAIL FROM:<>")).startswith("250 ")
    assert (await c.cmd("RCPT TO:<b-abc123@BOUNCES.relay.test>")).startswith("250 2.1.5")
    assert (await c.cmd("RCPT TO:<fbl@bounces.relay.test>")).startswith("250 2.1.5")
    assert (await c.cmd("RCPT TO:<victim@external.test>")).startswith("554 5.7.1")
    dsn = b"From: MAILER-DAEMON@remote.test\r\nSubject: failure\r\n\r\n\xff binary \x00 kept\r\n"
    reply = await data(c, dsn)
    assert reply.startswith("250 2.0.0 OK received as in_")
    [row] = store.inbound.pending()
    assert row.id == reply.rsplit(" ", 1)[1]
    assert row.data == dsn
    assert row.mail_from == ""
    assert row.rcpts == ("b-abc123@BOUNCES.relay.test", "fbl@bounces.relay.test")
    assert row.peer == "127.0.0.1"
    assert store.inbound.mark_failed(row.id) and store.inbound.pending() == []
    assert store.queue.count_by_state() == {}


async def test_authenticated_sessions_keep_outbound_and_inbound_apart(
    gw: Any, connect: Any, sender: dict[str, Any]
) -> None:
    c = await authed(connect, sender["secret"])
    await c.cmd("MAIL FROM:<app@example.com>")
    assert (await c.cmd("RCPT TO:<r@dest.test>")).startswith("250 ")
    assert (await c.cmd("RCPT TO:<x@bounces.relay.test>")).startswith("452 4.5.3 ")
    assert (await c.cmd("RCPT TO:<victim@[127.0.0.1]>")).startswith("553 5.1.3 ")
    assert (await c.cmd('RCPT TO:<"a@b"@dest.test>')).startswith("553 5.1.3 ")
    await c.cmd("RSET")
    assert (await c.cmd("MAIL FROM:<>")).startswith("250 ")
    assert (await c.cmd("RCPT TO:<r@dest.test>")).startswith("550 5.7.1 The null sender")


async def test_pipelined_transaction_gets_replies_in_order(
    gw: Any, connect: Any, store: Store, sender: dict[str, Any], msg: Callable[..., bytes]
) -> None:
    c = await connect()
    ehlo = await c.cmd("EHLO client.test")
    assert "250-PIPELINING" in ehlo and "250-ENHANCEDSTATUSCODES" in ehlo
    await c.send(
        plain(sender["secret"])
        + b"\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<a@dest.test>\r\nRCPT TO:<nope@[1.2.3.4]>\r\n"
        + b"RCPT TO:<b@dest.test>\r\nDATA\r\n"
    )
    replies = [await c.reply() for _ in range(6)]
    assert [r[:3] for r in replies] == ["235", "250", "250", "553", "250", "354"]
    await c.send(msg() + b".\r\nQUIT\r\n")
    queued = await c.reply()
    assert queued.startswith("250 2.0.0 OK queued as msg_")
    assert (await c.reply()).startswith("221 2.0.0")
    assert [r.address for r in store.messages.recipients(queued.rsplit(" ", 1)[1])] == [
        "a@dest.test",
        "b@dest.test",
    ]


async def test_smtputf8_and_8bitmime_content_is_kept_byte_for_byte(
    gw: Any, connect: Any, store: Store, sender: dict[str, Any]
) -> None:
    c = await authed(connect, sender["secret"])
    assert (await c.cmd("MAIL FROM:<jörg@example.com>")).startswith("553 5.6.7")
    assert (await c.cmd("MAIL FROM:<jörg@example.com> SMTPUTF8 BODY=8BITMIME")).startswith("250 ")
    assert (await c.cmd("RCPT TO:<用户@例子.测试>")).startswith("250 ")
    payload = (
        "From: Jörg <jörg@example.com>\r\nTo: 用户@例子.测试\r\nSubject: Grüße\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Grüße, 你好 — ünïcödé\r\n..leading dot kept\r\n"
    ).encode()
    reply = await data(c, payload)
    assert reply.startswith("250 2.0.0 OK queued as ")
    msg_id = reply.rsplit(" ", 1)[1]
    body = store.messages.body(msg_id)
    assert body.endswith(payload)
    found = store.messages.get(msg_id)
    assert found is not None and found["subject"] == "Grüße" and found["from"] == "jörg@example.com"


async def test_line_and_command_limits(gw: Any, connect: Any, sender: dict[str, Any]) -> None:
    c = await connect()
    await c.cmd("EHLO client.test")
    assert (await c.cmd("NOOP " + "x" * 2000)).startswith("500 5.5.2 ")
    assert (await c.cmd("MAIL FROM:<" + "a" * 600 + "@example.com>")).startswith("500 5.5.2 ")
    c2 = await authed(connect, sender["secret"])
    await c2.cmd("MAIL FROM:<app@example.com>")
    await c2.cmd("RCPT TO:<r@dest.test>")
    long_line = b"From: app@example.com\r\n\r\n" + b"z" * 1200
    assert (await data(c2, long_line)).startswith("500 5.5.2 Line too long")
    c3 = await connect()
    for _ in range(100):
        assert (await c3.cmd("NOOP")).startswith("250 2.0.0")
    assert (await c3.cmd("NOOP")).startswith("421 4.7.0 ")
    with pytest.raises(ConnectionError):
        await c3.cmd("NOOP")


async def test_helo_vrfy_rset_noop_quit_and_unknown_commands(gw: Any, connect: Any) -> None:
    c = await connect()
    assert (await c.cmd("MAIL FROM:<a@example.com>")).startswith("503 5.5.1 ")
    assert await c.cmd("HELO client.test") == "250 relay.test"
    assert (await c.cmd("VRFY someone")).startswith("252 2.5.0")
    assert (await c.cmd("EXPN list")).startswith("502 5.5.1")
    assert (await c.cmd("RSET")) == "250 2.0.0 OK"
    assert (await c.cmd("NOOP")) == "250 2.0.0 OK"
    assert (await c.cmd("FOO bar")).startswith("500 5.5.2 ")
    assert (await c.cmd("AUTH PLAIN x")).startswith("500 5.5.2 ")  # no AUTH after HELO
    assert (await c.cmd("QUIT")) == "221 2.0.0 Bye"


async def test_session_times_out(start_gateway: Any, connect: Any) -> None:
    gw = await start_gateway(timeout=0.3)
    c = await connect(port=gw.port)
    await c.cmd("EHLO client.test")
    await asyncio.sleep(0.6)
    assert await c.reader.read() == b""


async def test_activity_keeps_a_session_open_until_it_idles_out(
    start_gateway: Any, connect: Any
) -> None:
    """One timer per connection: a command moves the deadline, an early timer waits for it."""
    gw = await start_gateway(timeout=0.5)
    c = await connect(port=gw.port)
    await c.cmd("EHLO client.test")
    for _ in range(8):  # 0.8 s of commands 0.1 s apart: past the first deadline
        await asyncio.sleep(0.1)
        assert (await c.cmd("NOOP")).startswith("250 ")
    assert await asyncio.wait_for(c.reader.read(), 5) == b""  # then 0.5 s idle: closed


async def test_shutdown_lets_open_transactions_finish_and_answers_421(
    gw: Any, connect: Any, store: Store, sender: dict[str, Any], msg: Callable[..., bytes]
) -> None:
    idle = await connect()
    await idle.cmd("EHLO client.test")
    busy = await authed(connect, sender["secret"])
    await busy.cmd("MAIL FROM:<app@example.com>")
    await busy.cmd("RCPT TO:<r@dest.test>")
    stopping = asyncio.create_task(gw.gateway.stop(timeout=5))
    assert (await idle.reply()).startswith("421 4.3.2 ")
    with pytest.raises(OSError):
        await connect()
    assert (await data(busy, msg())).startswith("250 2.0.0 OK queued as msg_")
    assert (await busy.cmd("MAIL FROM:<app@example.com>")).startswith("421 4.3.2 ")
    await asyncio.wait_for(stopping, 5)
    assert json.loads(json.dumps(store.queue.count_by_state())) == {"queued": 1}
