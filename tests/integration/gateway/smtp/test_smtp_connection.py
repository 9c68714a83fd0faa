"""Per-connection machinery: what a new connection costs must not change what it does."""

from __future__ import annotations

import asyncio
import base64
import inspect
import weakref
from typing import Any

import aiosmtpd
import pytest
from aiosmtpd.smtp import SMTP, _AuthMechAttr

from relaygate.gateway.smtp import AIOSMTPD_SETUP_VERIFIED, SubmissionSMTP


async def test_multiline_reply_goes_out_in_one_write(gw: Any, raw: Any) -> None:
    (conn,) = gw.gateway.connections
    writes: list[bytes] = []
    write = conn._writer.write

    def counting(data: bytes) -> None:
        writes.append(bytes(data))
        write(data)

    conn._writer.write = counting
    ehlo = await raw.cmd("EHLO client.test")
    assert ehlo.startswith("250-relay.test\n") and ehlo.endswith("\n250 HELP")
    assert writes == [ehlo.replace("\n", "\r\n").encode() + b"\r\n"]
    writes.clear()
    assert (await raw.cmd("NOOP")).startswith("250 ")
    assert writes == [b"250 2.0.0 OK\r\n"]


async def test_only_plain_and_login_are_offered(raw: Any) -> None:
    """aiosmtpd takes every ``auth_*`` attribute of the handler for a mechanism."""
    ehlo = await raw.cmd("EHLO client.test")
    assert [line for line in ehlo.split("\n") if "AUTH" in line] == ["250-AUTH LOGIN PLAIN"]
    assert (await raw.cmd("AUTH allowed")).startswith("504 5.5.4 ")
    assert (await raw.cmd("AUTH PLAIN")).startswith("334 ")


def _shape(value: Any, owners: dict[int, str]) -> Any:
    """A comparable picture of one attribute: bound methods by function and owner role."""
    if inspect.ismethod(value):
        return ("method", value.__func__, owners.get(id(value.__self__), "other"))
    if isinstance(value, _AuthMechAttr):
        return ("auth", _shape(value.method, owners), value.is_builtin)
    if isinstance(value, dict):
        return (type(value), [(k, _shape(v, owners)) for k, v in value.items()])
    if isinstance(value, weakref.ref | asyncio.Future | asyncio.StreamReader):
        return type(value)
    if isinstance(value, asyncio.AbstractEventLoop):
        return "loop"
    return value


@pytest.mark.parametrize("implicit_tls", [False, True])
@pytest.mark.skipif(
    aiosmtpd.__version__ != AIOSMTPD_SETUP_VERIFIED, reason="aiosmtpd's own constructor runs"
)
async def test_cached_setup_equals_aiosmtpd_constructor(
    start_gateway: Any, implicit_tls: bool
) -> None:
    gw = await start_gateway(tls=True)
    factory = gw.gateway._factory(implicit_tls=implicit_tls)
    for _ in range(2):  # the first call fills the cache, the second uses it
        ours = factory()
    reference = SubmissionSMTP.__new__(SubmissionSMTP)
    handler = gw.gateway.handler
    SMTP.__init__(
        reference,
        handler,
        loop=asyncio.get_running_loop(),
        hostname=gw.settings.hostname,
        ident="relaygate",
        data_size_limit=gw.settings.smtp.max_message_bytes,
        enable_SMTPUTF8=True,
        decode_data=False,
        tls_context=None if implicit_tls else gw.gateway.tls_context,
        timeout=gw.settings.smtp.timeout,
        auth_require_tls=False,
        authenticator=handler.authenticate,
        command_call_limit=ours._call_limit_base,
    )
    for obj in (ours, reference):
        obj.__dict__.pop("_gateway", None)
        obj.__dict__.pop("busy", None)
        obj.__dict__.pop("_held", None)
        obj.__dict__.pop("_listener", None)
    # ours keeps the class's functions and binds one when dispatched; aiosmtpd binds them all
    assert all(ours._smtp_methods.get(k).smtp is ours for k in ours._smtp_methods)
    ours_smtp_methods = dict(ours._smtp_methods)
    ours.__dict__["_smtp_methods"] = ours_smtp_methods
    reference.__dict__["_smtp_methods"] = {
        k: m.__func__ for k, m in reference._smtp_methods.items()
    }
    assert ours_smtp_methods.keys() >= {"EHLO", "HELO", "MAIL", "RCPT", "DATA", "AUTH", "QUIT"}
    mine = {k: _shape(v, {id(ours): "smtp", id(handler): "handler"}) for k, v in vars(ours).items()}
    theirs = {
        k: _shape(v, {id(reference): "smtp", id(handler): "handler"})
        for k, v in vars(reference).items()
    }
    assert mine == theirs


async def test_auth_state_is_per_connection(gw: Any, connect: Any, sender: dict[str, Any]) -> None:
    first, second = await connect(), await connect()
    for c in (first, second):
        await c.cmd("EHLO client.test")
    creds = base64.b64encode(f"\0apikey\0{sender['secret']}".encode())
    assert (await first.cmd(b"AUTH PLAIN " + creds)).startswith("235 ")
    assert (await first.cmd(b"AUTH PLAIN " + creds)).startswith("503 ")  # already authenticated
    assert (await second.cmd("AUTH LOGIN")).startswith("334 ")  # its own state, own dialogue
    assert (await second.cmd(base64.b64encode(b"apikey"))).startswith("334 ")
    assert (await second.cmd(base64.b64encode(sender["secret"].encode()))).startswith("235 ")
    conns = list(gw.gateway.connections)
    assert len(conns) == 2
    a, b = conns
    assert a._auth_methods["PLAIN"].method.__self__ is a
    assert b._auth_methods["PLAIN"].method.__self__ is b
    assert a._smtp_methods.get("MAIL").smtp is a and b._smtp_methods.get("MAIL").smtp is b
