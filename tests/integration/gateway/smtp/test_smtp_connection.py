"""Per-connection machinery: what a new connection costs must not change what it does."""

from __future__ import annotations

from typing import Any


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
