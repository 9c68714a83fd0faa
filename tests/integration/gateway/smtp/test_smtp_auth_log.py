"""No API key in the log: every way an AUTH exchange can go wrong, played against the running
gateway with every logger at DEBUG (aiosmtpd's ``mail.log`` included: the worst an operator can
configure), through relaygate's own log handler and formatter.

A key counts as leaked when any log line holds the key, its base64 (alone, or inside the AUTH
PLAIN blob) in any letter case — aiosmtpd upper-cases an unrecognised command — or any 12
characters of those in a row.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from relaygate.gateway import smtp as smtp_module
from relaygate.logs import configure_logging

WINDOW = 12


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """relaygate's handler at DEBUG, aiosmtpd's logger at DEBUG; restored afterwards."""
    root = logging.getLogger()
    wire = logging.getLogger("mail.log")
    saved = (root.level, wire.level)
    buffer = io.StringIO()
    handler = configure_logging("DEBUG", json=True, stream=buffer)
    wire.setLevel(logging.DEBUG)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(saved[0])
    wire.setLevel(saved[1])


def secrets_of(key: str, user: str = "apikey") -> list[str]:
    """The key and the base64 forms a client sends it in, lower-cased."""
    login = base64.b64encode(key.encode()).decode()
    blob = base64.b64encode(f"\0{user}\0{key}".encode()).decode()
    return [s.lower() for s in (key, login, blob)]


def leaks(text: str, key: str) -> list[str]:
    found = []
    for line in text.lower().splitlines():
        for secret in secrets_of(key):
            windows = {secret[i : i + WINDOW] for i in range(len(secret) - WINDOW + 1)}
            if any(w in line for w in windows):
                found.append(line)
                break
    return found


def b64(text: str) -> bytes:
    return base64.b64encode(text.encode())


async def test_refused_auth_login_before_ehlo_leaks_nothing(
    gw: Any, connect: Any, sender: dict[str, Any], log_lines: io.StringIO
) -> None:
    """The issue's case: 503 before EHLO, the client's pipelined base64 lines read as commands."""
    key = sender["secret"]
    c = await connect()
    await c.send(b"AUTH LOGIN\r\n" + b64("apikey") + b"\r\n" + b64(key) + b"\r\n")
    assert (await c.reply()).startswith("503 ")
    assert (await c.reply()).startswith("500 ")
    assert (await c.reply()).startswith("500 ")
    assert (await c.cmd("QUIT")).startswith("221 ")
    text = log_lines.getvalue()
    assert "mail.log" in text  # aiosmtpd's lines were captured...
    assert leaks(text, key) == []  # ...and none holds the key


async def test_refused_auth_after_helo_without_tls_and_unknown_mechanism_leak_nothing(
    start_gateway: Any,
    connect: Any,
    sender: dict[str, Any],
    log_lines: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = sender["secret"]
    gw = await start_gateway()
    # 500 after HELO (AUTH is an ESMTP command), then the lines as commands.
    c = await connect(port=gw.port)
    await c.cmd("HELO client.test")
    await c.send(b"AUTH LOGIN\r\n" + b64(key) + b"\r\n")
    assert (await c.reply()).startswith("500 ")
    assert (await c.reply()).startswith("500 ")
    # 504 for a mechanism we do not offer, with an initial response, in lower case.
    await c.cmd("EHLO client.test")
    assert (await c.cmd(b"auth xoauth2 " + b64(f"\0apikey\0{key}"))).startswith("504 ")
    # 538 off loopback before TLS.
    monkeypatch.setattr(smtp_module, "is_loopback", lambda ip: False)
    d = await connect(port=gw.port)
    await d.cmd("EHLO client.test")
    await d.send(b"AUTH LOGIN\r\n" + b64("apikey") + b"\r\n" + b64(key) + b"\r\n")
    assert (await d.reply()).startswith("538 ")
    assert (await d.reply()).startswith("500 ")
    assert (await d.reply()).startswith("500 ")
    assert leaks(log_lines.getvalue(), key) == []


async def test_auth_exchanges_that_fail_or_succeed_leak_nothing(
    gw: Any, connect: Any, sender: dict[str, Any], log_lines: io.StringIO
) -> None:
    key = sender["secret"]
    c = await connect()
    await c.cmd("EHLO client.test")
    # AUTH PLAIN with the initial response, the command in lower case (aiosmtpd's own masking
    # only knows upper-case "AUTH").
    assert (await c.cmd(b"auth PLAIN " + b64(f"\0apikey\0{key}"))).startswith("235 ")
    d = await connect()
    await d.cmd("EHLO client.test")
    # The key itself instead of its base64 ("can't decode base64"), then '*'.
    assert (await d.cmd("AUTH LOGIN")).startswith("334 ")
    assert (await d.cmd(b64("apikey"))).startswith("334 ")
    assert (await d.cmd(key)).startswith("501 ")
    # The key as a command line, as it is and upper-cased.
    assert (await d.cmd(key)).startswith("500 ")
    assert (await d.cmd(key.upper())).startswith("500 ")
    # A wrong key, then the right one by AUTH LOGIN.
    assert (await d.cmd(b"AUTH PLAIN " + b64("\0apikey\0sk_live_wrong"))).startswith("535 ")
    assert (await d.cmd("AUTH LOGIN " + b64("apikey").decode())).startswith("334 ")
    assert (await d.cmd(b64(key))).startswith("235 ")
    assert leaks(log_lines.getvalue(), key) == []


async def test_auth_login_while_throttled_leaks_nothing_and_the_right_key_works(
    gw: Any, connect: Any, sender: dict[str, Any], log_lines: io.StringIO
) -> None:
    """The issue's second case: 454 while throttled left the base64 lines to be read as commands."""
    key = sender["secret"]
    for _ in range(gw.gateway.handler.throttle.limit):
        c = await connect()
        await c.cmd("EHLO client.test")
        assert (await c.cmd(b"AUTH PLAIN " + b64("\0apikey\0sk_live_wrong"))).startswith("535 ")
    assert (await c.cmd(b"AUTH PLAIN " + b64("\0apikey\0sk_live_wrong"))).startswith("454 ")
    d = await connect()
    await d.cmd("EHLO client.test")
    await d.send(b"AUTH LOGIN\r\n" + b64("apikey") + b"\r\n" + b64(key) + b"\r\n")
    replies = [await d.reply() for _ in range(3)]
    assert replies[-1].startswith("235 "), replies
    assert leaks(log_lines.getvalue(), key) == []
