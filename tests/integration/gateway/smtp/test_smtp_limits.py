"""Connection caps (per listener, per client address) and STARTTLS inside TLS (issue 15 item 7)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiosmtplib
import pytest

from .conftest import RawClient


async def greeting(host: str, port: int) -> tuple[str, bool]:
    """The first reply of a new connection, and whether the server closed it right after."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        line = await asyncio.wait_for(reader.readline(), 10)
        closed = await asyncio.wait_for(reader.read(1), 10) == b""
    finally:
        writer.close()
    return line.decode().rstrip("\r\n"), closed


async def quit_and_wait(client: RawClient) -> None:
    """QUIT, then wait for the server to close: its connection_lost has run by then."""
    assert (await client.cmd("QUIT")).startswith("221 ")
    assert await asyncio.wait_for(client.reader.read(), 10) == b""


async def test_one_client_may_hold_only_so_many_connections(
    start_gateway: Any, caplog: pytest.LogCaptureFixture
) -> None:
    gw = await start_gateway(max_connections=10, max_connections_per_client=2)
    first = await RawClient.connect(gw.host, gw.port)
    second = await RawClient.connect(gw.host, gw.port)
    with caplog.at_level(logging.INFO, logger="relaygate.smtp"):
        line, closed = await greeting(gw.host, gw.port)
    assert line == "421 4.7.0 Too many connections from your address; try again later"
    assert closed
    assert [(r.levelname, r.getMessage(), r.cap) for r in caplog.records] == [  # type: ignore[attr-defined]
        ("INFO", "connections refused", "client")
    ]
    # The two sessions work on; when one ends, its slot is free again.
    assert (await second.cmd("EHLO client.test")).startswith("250")
    await quit_and_wait(first)
    third = await RawClient.connect(gw.host, gw.port)
    assert (await third.cmd("NOOP")).startswith("250 ")
    for c in (second, third):
        await c.close()


async def test_a_listener_takes_only_so_many_connections_even_from_trusted_networks(
    start_gateway: Any, sender: dict[str, Any]
) -> None:
    gw = await start_gateway(
        max_connections=3,
        max_connections_per_client=1,
        trusted_networks={"127.0.0.0/8": sender["account"].id},
    )
    # A trusted network is exempt from the per-client cap (Postfix: $mynetworks)...
    clients = [await RawClient.connect(gw.host, gw.port) for _ in range(3)]
    # ...not from the listener's.
    line, closed = await greeting(gw.host, gw.port)
    assert (line, closed) == ("421 4.7.0 Too many connections; try again later", True)
    await quit_and_wait(clients.pop())
    clients.append(await RawClient.connect(gw.host, gw.port))
    assert gw.gateway.slots.clients == {"127.0.0.1": 3}
    for c in clients:
        await quit_and_wait(c)
    assert gw.gateway.slots.clients == {}


async def test_caps_count_per_listener_and_per_client_across_listeners(
    start_gateway: Any, certs: Any
) -> None:
    gw = await start_gateway(tls=True, max_connections=1, max_connections_per_client=2)
    plain = await RawClient.connect(gw.host, gw.port)
    assert (await greeting(gw.host, gw.port))[0].startswith("421 4.7.0 Too many connections;")
    tls = aiosmtplib.SMTP(
        hostname=gw.host,
        port=gw.tls_port,
        use_tls=True,
        tls_context=certs.client_context(),
        local_hostname="client.test",
        timeout=10,
    )
    await tls.connect()  # the other listener has its own slot
    assert gw.gateway.slots.clients == {"127.0.0.1": 2}
    await tls.quit()
    await plain.close()


async def test_starttls_inside_tls_is_503_and_the_session_goes_on(
    start_gateway: Any, certs: Any, sender: dict[str, Any]
) -> None:
    gw = await start_gateway(tls=True)
    client = aiosmtplib.SMTP(
        hostname=gw.host,
        port=gw.port,
        local_hostname="client.test",
        start_tls=False,
        tls_context=certs.client_context(),
        timeout=10,
    )
    async with client:
        await client.ehlo()
        await client.starttls()
        again = await client.execute_command(b"STARTTLS")
        assert (again.code, again.message) == (503, "5.5.1 TLS already active")
        await client.ehlo()
        await client.login("apikey", sender["secret"])
        assert (await client.noop()).code == 250
    # The implicit-TLS port answers the same (aiosmtpd: 454 "TLS not available").
    implicit = aiosmtplib.SMTP(
        hostname=gw.host,
        port=gw.tls_port,
        use_tls=True,
        tls_context=certs.client_context(),
        local_hostname="client.test",
        timeout=10,
    )
    async with implicit:
        await implicit.ehlo()
        again = await implicit.execute_command(b"STARTTLS")
        assert (again.code, again.message) == (503, "5.5.1 TLS already active")
        assert (await implicit.noop()).code == 250
