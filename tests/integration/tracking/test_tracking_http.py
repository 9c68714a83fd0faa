"""The tracking endpoints over HTTP: pixel, redirect, forgery, isolation, floods."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from relaygate.clock import FakeClock
from relaygate.events.tracking import make_token
from relaygate.events.tracking_app import (
    PIXEL_GIF,
    HitRecorder,
    RateLimits,
    TrackingCounters,
    TrackingHit,
    tracking_app,
    tracking_routes,
)

KEY = b"tracking-key-for-tests-0123456789"
OLD_KEY = b"the previous tracking key 987654"
MSG_A = "msg_" + "a" * 32
MSG_B = "msg_" + "b" * 32
ACCOUNT_A, ACCOUNT_B = 101, 202
UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0"
NOW = 1_790_000_000.0  # the FakeClock's start: tokens made "now"
NO_LIMITS = RateLimits(per_ip_burst=1e9, per_token_burst=1e9)


def token(
    kind: str = "o",
    *,
    account_id: int = ACCOUNT_A,
    message_id: str = MSG_A,
    recipient_id: int = 1,
    url: str | None = None,
    key: bytes = KEY,
    issued_at: float = NOW,
) -> str:
    return make_token(
        kind=kind,  # type: ignore[arg-type]
        account_id=account_id,
        message_id=message_id,
        recipient_id=recipient_id,
        url=url,
        key=key,
        issued_at=issued_at,
    )


class Sink:
    def __init__(self) -> None:
        self.hits: list[TrackingHit] = []

    async def __call__(self, batch: Sequence[TrackingHit]) -> None:
        self.hits.extend(batch)


class Env:
    def __init__(self, *, limits: RateLimits = NO_LIMITS, capacity: int = 10_000) -> None:
        self.clock = FakeClock(1_790_000_000.0)
        self.sink = Sink()
        self.recorder = HitRecorder(self.sink, capacity=capacity, flush_interval_s=0.01)
        self.counters = TrackingCounters()
        routes = tracking_routes(
            keys=[KEY, OLD_KEY],
            recorder=self.recorder,
            clock=self.clock,
            limits=limits,
            client_ip=lambda r: r.headers.get("x-test-ip") or (r.client.host if r.client else ""),
            counters=self.counters,
        )
        self.app = Starlette(routes=routes)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, client=("203.0.113.9", 40000)),
            base_url="http://track.test",
            headers={"User-Agent": UA},
        )

    async def hits(self) -> list[TrackingHit]:
        await self.recorder.flush()
        return list(self.sink.hits)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    e = Env()
    yield e
    await e.client.aclose()


async def test_pixel_bytes_headers_and_recorded_open(env: Env) -> None:
    r = await env.client.get(f"/t/o/{token()}")
    assert r.status_code == 200
    assert r.content == PIXEL_GIF and len(PIXEL_GIF) == 43 and PIXEL_GIF.startswith(b"GIF89a")
    assert r.headers["content-type"] == "image/gif"
    assert r.headers["cache-control"] == "no-store, no-cache, must-revalidate, private"
    assert r.headers["pragma"] == "no-cache"
    assert r.headers["expires"] == "0"
    [hit] = await env.hits()
    assert hit == TrackingHit(
        kind="o",
        account_id=ACCOUNT_A,
        message_id=MSG_A,
        recipient_id=1,
        url=None,
        ip="203.0.113.9",
        user_agent=UA,
        method="GET",
        at=1_790_000_000.0,
    )
    assert hit.event_type == "open"


async def test_head_is_served_and_recorded_as_head(env: Env) -> None:
    r = await env.client.head(f"/t/o/{token()}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    r = await env.client.head(f"/t/c/{token('c', url='https://example.com/')}")
    assert r.status_code == 302
    assert [h.method for h in await env.hits()] == ["HEAD", "HEAD"]


async def test_click_redirects_to_the_original_url(env: Env) -> None:
    url = "https://shop.example.com/p?x=1&y=%2F#frag"
    r = await env.client.get(f"/t/c/{token('c', url=url)}")
    assert r.status_code == 302
    assert r.headers["location"] == url
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "no-store" in r.headers["cache-control"]
    [hit] = await env.hits()
    assert hit.kind == "c" and hit.url == url and hit.event_type == "click"


async def test_non_ascii_url_is_percent_encoded_in_location(env: Env) -> None:
    url = "https://example.com/straße?q=ü v"
    r = await env.client.get(f"/t/c/{token('c', url=url)}")
    assert r.status_code == 302
    assert r.headers["location"] == "https://example.com/stra%C3%9Fe?q=%C3%BC%20v"


async def test_old_key_still_verifies(env: Env) -> None:
    r = await env.client.get(f"/t/c/{token('c', url='http://a.example/', key=OLD_KEY)}")
    assert r.status_code == 302 and r.headers["location"] == "http://a.example/"


def _flip(tok: str, i: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    c = tok[i]
    return tok[:i] + alphabet[(alphabet.index(c) + 1) % 64] + tok[i + 1 :]


@pytest.mark.parametrize("path_kind", ["o", "c"])
async def test_forged_and_malformed_tokens_are_404_and_record_nothing(
    env: Env, path_kind: str
) -> None:
    good = token(path_kind, url="https://example.com/" if path_kind == "c" else None)
    other_key = token(
        path_kind, url="https://example.com/" if path_kind == "c" else None, key=b"x" * 32
    )
    wrong_kind = token(
        "c" if path_kind == "o" else "o", url="https://example.com/" if path_kind == "o" else None
    )
    bad = [
        _flip(good, 0),
        _flip(good, len(good) // 2),
        _flip(good, len(good) - 1),
        good[:-1],
        good + "A",
        other_key,
        wrong_kind,
        "A" * 9000,
        "garbage!",
        "%2e%2e",
    ]
    for t in bad:
        r = await env.client.get(f"/t/{path_kind}/{t}", follow_redirects=False)
        assert r.status_code == 404, t
        assert "location" not in r.headers
        assert r.headers["content-type"].startswith("text/html")
        assert "Link not found" in r.text
    assert await env.hits() == []
    assert env.counters.invalid == len(bad) and env.counters.hits == 0


async def test_a_token_for_account_a_only_ever_records_account_a(env: Env) -> None:
    """Every one-character change of A's token is refused; the genuine one records A only."""
    a = token("c", account_id=ACCOUNT_A, message_id=MSG_A, url="https://a.example/")
    b = token("c", account_id=ACCOUNT_B, message_id=MSG_B, url="https://b.example/")
    for i in range(len(a)):
        r = await env.client.get(f"/t/c/{_flip(a, i)}")
        assert r.status_code == 404
    # splicing B's payload onto A's signature (and back) is refused too
    raw_a = base64.urlsafe_b64decode(a + "=" * (-len(a) % 4))
    raw_b = base64.urlsafe_b64decode(b + "=" * (-len(b) % 4))
    for spliced in (raw_b[:-16] + raw_a[-16:], raw_a[:-16] + raw_b[-16:]):
        t = base64.urlsafe_b64encode(spliced).rstrip(b"=").decode()
        assert (await env.client.get(f"/t/c/{t}")).status_code == 404
    assert (await env.client.get(f"/t/c/{a}")).status_code == 302
    hits = await env.hits()
    assert [(h.account_id, h.message_id, h.url) for h in hits] == [
        (ACCOUNT_A, MSG_A, "https://a.example/")
    ]


async def test_rate_limit_per_token_still_answers_but_stops_recording() -> None:
    e = Env(limits=RateLimits(per_token_burst=3, per_token_per_second=0.5))
    t = token()
    for _ in range(10):
        r = await e.client.get(f"/t/o/{t}")
        assert r.status_code == 200 and r.content == PIXEL_GIF
    assert len(await e.hits()) == 3 and e.counters.limited == 7
    e.clock.advance(2.0)  # one token refilled
    for _ in range(3):
        await e.client.get(f"/t/o/{t}")
    assert len(await e.hits()) == 4
    # a different recipient's token has its own bucket
    await e.client.get(f"/t/o/{token(recipient_id=2)}")
    assert len(await e.hits()) == 5
    await e.client.aclose()


async def test_rate_limit_per_ip() -> None:
    e = Env(limits=RateLimits(per_ip_burst=5, per_ip_per_second=1.0))
    for i in range(20):
        r = await e.client.get(f"/t/c/{token('c', recipient_id=i, url='https://x.example/')}")
        assert r.status_code == 302
    assert len(await e.hits()) == 5
    r = await e.client.get(
        f"/t/c/{token('c', recipient_id=99, url='https://x.example/')}",
        headers={"x-test-ip": "198.51.100.7"},
    )
    assert r.status_code == 302
    assert [h.ip for h in await e.hits()][-1] == "198.51.100.7"
    await e.client.aclose()


async def test_limiter_tables_are_capped() -> None:
    e = Env(limits=RateLimits(per_token_burst=1, per_token_per_second=0.0, max_keys=2))
    t1, t2, t3 = (token(recipient_id=i) for i in (1, 2, 3))
    for t in (t1, t1, t2, t3, t1):  # t1 limited once, then forgotten (evicted) and fresh again
        await e.client.get(f"/t/o/{t}")
    assert [h.recipient_id for h in await e.hits()] == [1, 2, 3, 1]
    await e.client.aclose()


async def _asgi_get(app: Starlette, path: str, ip: str) -> int:
    """One request straight through the ASGI interface (no HTTP client overhead)."""
    status = 0

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])  # type: ignore[call-overload]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"track.test"), (b"user-agent", b"flood/1.0")],
        "client": (ip, 1234),
        "server": ("track.test", 80),
        "root_path": "",
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    return status


async def test_flood_of_10000_hits_is_fast_bounded_and_counted() -> None:
    """A flood neither slows the responses down waiting on a stuck store nor grows memory."""
    gate = asyncio.Event()
    written: list[int] = []

    async def stuck_sink(batch: Sequence[TrackingHit]) -> None:
        await gate.wait()
        written.append(len(batch))

    recorder = HitRecorder(stuck_sink, capacity=1000, batch_size=200, flush_interval_s=0.01)
    counters = TrackingCounters()
    app = Starlette(
        routes=tracking_routes(
            keys=[KEY],
            recorder=recorder,
            clock=FakeClock(),
            limits=RateLimits(max_keys=5000),
            counters=counters,
        )
    )
    await recorder.start()
    # 9,500 hits spread over 2,000 recipients' pixels and links from 250 addresses (the store is
    # stuck, so the buffer fills and the rest is dropped), then 500 hits on one token (limited).
    toks = [("o", token(recipient_id=i)) for i in range(1000)] + [
        ("c", token("c", recipient_id=i, url=f"https://x.example/{i}")) for i in range(1000)
    ]
    paths = [f"/t/{k}/{t}" for k, t in toks]
    started = time.perf_counter()
    statuses = []
    for i in range(9_500):
        statuses.append(await _asgi_get(app, paths[i % len(paths)], f"10.0.{i % 250}.1"))
    for _ in range(500):
        statuses.append(await _asgi_get(app, paths[0], "10.9.9.9"))
    elapsed = time.perf_counter() - started
    assert elapsed < 15.0
    assert statuses.count(200) + statuses.count(302) == 10_000
    assert counters.hits == 10_000
    # memory is bounded: at most `capacity` waiting plus one batch in the stuck sink
    assert recorder.pending <= 1000
    assert recorder.stats.accepted <= 1000 + 200
    assert counters.limited + recorder.stats.accepted + recorder.stats.dropped == 10_000
    assert counters.limited >= 490 and recorder.stats.dropped >= 8000
    gate.set()
    await recorder.stop()
    assert sum(written) == recorder.stats.accepted


async def test_real_uvicorn_on_loopback() -> None:
    sink = Sink()
    recorder = HitRecorder(sink, flush_interval_s=0.01)
    app = tracking_app(keys=[KEY], recorder=recorder, clock=FakeClock())
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            r = await client.get(f"/t/o/{token()}", headers={"User-Agent": UA})
            assert r.status_code == 200 and r.content == PIXEL_GIF
            r = await client.get(f"/t/c/{token('c', url='https://example.com/a?b=c')}")
            assert r.status_code == 302 and r.headers["location"] == "https://example.com/a?b=c"
            r = await client.get(f"/t/c/{_flip(token('c', url='https://example.com/'), 5)}")
            assert r.status_code == 404
    finally:
        server.should_exit = True
        await task
    # the lifespan stopped the recorder, which wrote everything
    assert [(h.kind, h.ip) for h in sink.hits] == [("o", "127.0.0.1"), ("c", "127.0.0.1")]


async def test_request_client_ip_default(env: Env) -> None:
    # the default client_ip reads request.client.host
    routes = tracking_routes(keys=[KEY], recorder=env.recorder, clock=env.clock)
    app = Starlette(routes=routes)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("192.0.2.55", 1)), base_url="http://t"
    ) as client:
        await client.get(f"/t/o/{token()}")
    assert [h.ip for h in await env.hits()] == ["192.0.2.55"]
