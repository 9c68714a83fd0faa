"""Signed webhooks, sent by relaygate's sender, checked by receivers written the way customers
write them: the reference's Node.js snippet, our Python ``verify``/``verify_v2``, and the
Standard Webhooks library."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from relaygate.events.payloads import build_payload
from relaygate.events.sender import SendOutcome, post_event
from relaygate.events.signing import new_secret, signature_headers, verify, verify_v2
from relaygate.testing.dns import DNSServer

HERE = Path(__file__).parent
NODE = shutil.which("node") or ("/usr/bin/node" if os.path.exists("/usr/bin/node") else None)


def _body(**extra: object) -> bytes:
    return build_payload(
        event_type="bounce",
        user_id=42,
        sm_mail_id="msg_3f8c1b2e",
        message_id="<m@x.test>",
        recipients=["jörg@exämple.test"],
        smtp_response="550 5.1.1 unknown",
        tags=["welcome", "ü"],
        event_timestamp=time.time(),
        extra={
            "bounce_type": "hard",
            "status": "5.1.1",
            "diagnostic": "550 no such user",
            "reason": "userunknown",
            **extra,
        },
    )


@pytest.fixture
def dns() -> Iterator[DNSServer]:
    with DNSServer({}) as server:
        yield server


async def _send(dns: DNSServer, port: int, body: bytes, headers: dict[str, str]):
    return await post_event(
        url=f"http://127.0.0.1:{port}/events",
        body=body,
        headers=headers,
        resolver=dns.async_resolver(),
        allow_private=True,
        allow_http=True,
        timeout=5.0,
    )


# -- the reference's Node.js snippet -------------------------------------------------------


@pytest.fixture
async def node_receiver(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[int, str, list[dict]]]:
    if NODE is None:
        pytest.skip("node is not installed; the Node.js receiver cannot run")
    secret = new_secret()
    proc = await asyncio.create_subprocess_exec(
        NODE,
        str(HERE / "receiver.js"),
        cwd=HERE,
        env={"PATH": os.environ.get("PATH", ""), "WEBHOOK_SECRET": secret},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.readline(), 10)
    port = json.loads(first)["port"]
    log: list[dict] = []

    async def collect() -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            log.append(json.loads(line))

    reader = asyncio.create_task(collect())
    try:
        yield port, secret, log
    finally:
        proc.terminate()
        await proc.wait()
        await reader


async def test_node_reference_snippet_accepts_our_signature(node_receiver, dns: DNSServer) -> None:
    port, secret, log = node_receiver
    body = _body()
    # during a rotation's grace the receiver still holds the previous secret: it verifies
    headers = signature_headers(
        body=body, secrets=[new_secret(), secret], event_id="evt_1", timestamp=int(time.time())
    )
    result = await _send(dns, port, body, headers)
    assert result.ok and result.status == 200, result.error
    assert log[-1] == {"verified": True, "event_id": "evt_1", "event_type": "bounce"}


async def test_node_reference_snippet_refuses_tampering(node_receiver, dns: DNSServer) -> None:
    port, secret, log = node_receiver
    body = _body()
    headers = signature_headers(
        body=body, secrets=[secret], event_id="evt_2", timestamp=int(time.time())
    )
    tampered = body.replace(b'"hard"', b'"soft"')
    assert tampered != body
    result = await _send(dns, port, tampered, headers)
    assert not result.ok and result.status == 401 and result.outcome is SendOutcome.HTTP_STATUS
    # X-SM-Signature carries one secret only (the oldest live one): another secret is refused
    old = signature_headers(
        body=body, secrets=[secret, new_secret()], event_id="evt_3", timestamp=1
    )
    assert (await _send(dns, port, body, old)).status == 401
    # malformed header (wrong length would make timingSafeEqual throw): 401, receiver still up
    bad = dict(headers, **{"X-SM-Signature": "sha256=abc"})
    assert (await _send(dns, port, body, bad)).status == 401
    assert (await _send(dns, port, body, headers)).status == 200
    assert [e["verified"] for e in log] == [False, False, False, True]


# -- a Python receiver using relaygate.events.signing -------------------------------------


@pytest.fixture
async def python_receiver() -> AsyncIterator[tuple[int, list[str], list[tuple[bool, bool]]]]:
    secrets = [new_secret(), new_secret()]  # current, then the one being rotated out
    outcomes: list[tuple[bool, bool]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in head[1:] if line)
        lower = {k.lower(): v for k, v in headers.items()}
        body = await reader.readexactly(int(lower["content-length"]))
        v1 = verify(body, lower.get("x-sm-signature", ""), secrets)
        v2 = verify_v2(body=body, headers=headers, secrets=secrets, now=time.time())
        outcomes.append((v1, v2))
        status = "200 OK" if v1 and v2 else "401 Unauthorized"
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], secrets, outcomes
    server.close()
    await server.wait_closed()


async def test_python_receiver_verifies_both_forms_through_rotation(
    python_receiver, dns: DNSServer
) -> None:
    port, (current, old), outcomes = python_receiver
    body = _body()
    now = int(time.time())
    for signer in ([current, old], [old]):  # the sender may still hold only the old secret
        headers = signature_headers(body=body, secrets=signer, event_id="evt_py", timestamp=now)
        result = await _send(dns, port, body, headers)
        assert result.ok, result.error
    stale = signature_headers(body=body, secrets=[current], event_id="evt_py", timestamp=now - 3600)
    assert (await _send(dns, port, body, stale)).status == 401
    fresh = signature_headers(body=body, secrets=[current], event_id="evt_py", timestamp=now)
    assert (await _send(dns, port, body + b" ", fresh)).status == 401
    assert outcomes == [(True, True), (True, True), (True, False), (False, False)]


def test_standard_webhooks_library_verifies_our_v2_headers() -> None:
    standardwebhooks = pytest.importorskip(
        "standardwebhooks", reason="the standardwebhooks package is not installed"
    )
    secret = new_secret()
    body = _body()
    headers = signature_headers(
        body=body, secrets=[new_secret(), secret], event_id="evt_std", timestamp=int(time.time())
    )
    parsed = standardwebhooks.Webhook(secret).verify(body, headers)
    assert parsed["event_type"] == "bounce"
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(body + b" ", headers)
