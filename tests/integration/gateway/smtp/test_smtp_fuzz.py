"""Random command lines, long lines and binary junk: never an exception text, never a crash."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

VERBS = [
    b"EHLO",
    b"HELO",
    b"MAIL FROM:",
    b"RCPT TO:",
    b"DATA",
    b"AUTH",
    b"STARTTLS",
    b"RSET",
    b"VRFY",
    b"BDAT",
    b"",
]


async def _session(host: str, port: int, lines: list[bytes]) -> list[str]:
    reader, writer = await asyncio.open_connection(host, port, limit=2**20)
    replies: list[str] = []
    try:
        replies.append((await asyncio.wait_for(reader.readline(), 5)).decode("utf-8", "replace"))
        for line in lines:
            writer.write(line + b"\r\n")
            await writer.drain()
            try:
                got = await asyncio.wait_for(reader.readline(), 2)
            except TimeoutError:
                continue  # inside DATA or an AUTH challenge: no reply per line
            if not got:
                break
            replies.append(got.decode("utf-8", "replace"))
    except ConnectionError:
        pass
    finally:
        writer.close()
    return replies


def _check(replies: list[str]) -> None:
    for reply in replies:
        assert "Traceback" not in reply and "Error: (" not in reply, reply
        assert not reply.startswith("500 Error"), reply
        if reply[:1] in "45" and reply[3:4] == " ":
            assert reply[4:5].isdigit() and reply[5:6] == ".", reply  # enhanced code on failures


async def test_random_junk_never_leaks_and_server_stays_up(gw: Any, connect: Any) -> None:
    rng = random.Random(4)
    for _ in range(25):
        lines = []
        for _ in range(rng.randint(1, 12)):
            kind = rng.random()
            if kind < 0.4:
                junk = bytes(rng.randrange(256) for _ in range(rng.randint(0, 80)))
                lines.append(
                    rng.choice(VERBS) + b" " + junk.replace(b"\n", b"").replace(b"\r", b"")
                )
            elif kind < 0.6:
                lines.append(rng.choice(VERBS) + b"x" * rng.choice([600, 1100, 5000]))
            elif kind < 0.8:
                lines.append(
                    bytes(rng.randrange(1, 256) for _ in range(rng.randint(1, 40)))
                    .replace(b"\n", b"")
                    .replace(b"\r", b"")
                )
            else:
                lines.append(
                    rng.choice(
                        [
                            b"MAIL FROM:<a@example.com> SIZE=abc",
                            b"RCPT TO:<>",
                            b"AUTH PLAIN ====",
                            b"AUTH LOGIN",
                            b"*",
                            b"MAIL FROM:<a@example.com> BODY=9BIT",
                            b"RCPT TO:<a@b> NOTIFY=NEVER",
                        ]
                    )
                )
        _check(await _session(gw.host, gw.port, lines))
    c = await connect()
    assert (await c.cmd("EHLO client.test")).startswith("250-relay.test")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.binary(min_size=0, max_size=120), min_size=1, max_size=6))
async def test_hypothesis_lines(gw: Any, lines: list[bytes]) -> None:
    clean = [ln.replace(b"\r", b"").replace(b"\n", b"") for ln in lines]
    _check(await _session(gw.host, gw.port, [b"EHLO fuzz.test", *clean]))
