"""Tracking tokens expire (issue 15 item 7): after the lifetime a click shows a page naming the
target instead of redirecting, and nothing is recorded; over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
import uvicorn

from relaygate.clock import FakeClock
from relaygate.events.tracking import make_token
from relaygate.events.tracking_app import PIXEL_GIF, HitRecorder, TrackingHit, tracking_app

KEY = b"tracking-key-for-tests-0123456789"
MSG = "msg_" + "c" * 32
NOW = 1_790_000_000.0
DAY = 86400.0
TARGET = 'https://shop.example/sale?a=1&b="2"&c=<script>alert(1)</script>'


def token(kind: str, *, issued_at: float = NOW, url: str | None = None) -> str:
    return make_token(
        kind=kind,  # type: ignore[arg-type]
        account_id=5,
        message_id=MSG,
        recipient_id=3,
        url=url,
        key=KEY,
        issued_at=issued_at,
    )


class Served:
    def __init__(self, base_url: str, clock: FakeClock, recorder: HitRecorder) -> None:
        self.base_url = base_url
        self.clock = clock
        self.recorder = recorder
        self.hits: list[TrackingHit] = []

    async def recorded(self) -> list[TrackingHit]:
        await self.recorder.flush()
        return self.hits


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    clock = FakeClock(NOW)
    hits: list[TrackingHit] = []

    async def sink(batch: Sequence[TrackingHit]) -> None:
        hits.extend(batch)

    recorder = HitRecorder(sink, flush_interval_s=0.01)
    app = tracking_app(keys=[KEY], recorder=recorder, clock=clock, lifetime=30 * DAY)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        s = Served(f"http://127.0.0.1:{port}", clock, recorder)
        s.hits = hits
        yield s
    finally:
        server.should_exit = True
        await task


async def test_a_click_after_the_lifetime_names_the_target_instead_of_redirecting(
    served: Served,
) -> None:
    click = token("c", url=TARGET)
    async with httpx.AsyncClient(base_url=served.base_url) as client:
        fresh = await client.get(f"/t/c/{click}")
        assert fresh.status_code == 302
        served.clock.advance(30 * DAY)  # the last second of its life
        assert (await client.get(f"/t/c/{click}")).status_code == 302
        served.clock.advance(1)
        expired = await client.get(f"/t/c/{click}")
        head = await client.head(f"/t/c/{click}")
    assert expired.status_code == head.status_code == 410
    assert "location" not in expired.headers and "location" not in head.headers
    assert expired.headers["content-security-policy"] == "default-src 'none'"
    assert expired.headers["cache-control"] == "no-store"
    page = expired.text
    assert "This link has expired" in page
    assert f"<code>{html.escape(TARGET, quote=True)}</code>" in page
    assert "<script>" not in page and "href" not in page  # named as text, not a link
    assert [h.kind for h in await served.recorded()] == ["c", "c"]  # the two live clicks only


async def test_an_expired_pixel_is_still_a_pixel_but_records_nothing(served: Served) -> None:
    pixel = token("o", issued_at=NOW - 31 * DAY)
    async with httpx.AsyncClient(base_url=served.base_url) as client:
        r = await client.get(f"/t/o/{pixel}")
        live = await client.get(f"/t/o/{token('o')}")
    assert r.status_code == live.status_code == 200 and r.content == PIXEL_GIF
    assert [h.kind for h in await served.recorded()] == ["o"]


async def test_a_version_1_token_has_no_issue_time_and_counts_as_expired(served: Served) -> None:
    """Links made before tokens carried a time: the page, not a redirect, not a 404."""
    body = bytes((1, 0x01, 5)) + bytes.fromhex(MSG[4:]) + bytes((3,)) + b"https://old.example/"
    tag = hmac.new(KEY, b"relaygate/tracking/v1\0" + body, hashlib.sha256).digest()[:16]
    old = base64.urlsafe_b64encode(body + tag).rstrip(b"=").decode()
    async with httpx.AsyncClient(base_url=served.base_url) as client:
        r = await client.get(f"/t/c/{old}")
    assert r.status_code == 410 and "<code>https://old.example/</code>" in r.text
    assert await served.recorded() == []
