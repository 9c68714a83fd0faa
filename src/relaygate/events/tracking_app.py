"""The two public tracking endpoints, and the bounded path from a hit to the store.

* ``GET|HEAD /t/o/{token}``: a 43-byte transparent GIF with no-cache headers.
* ``GET|HEAD /t/c/{token}``: ``302`` to the original URL carried in the signed token (``410``
  and a page naming it once the token has expired).

A token that does not verify (forged, altered, signed with an unknown key, wrong kind, too
long) gets a small 404 HTML page, never a redirect, and records nothing.

A genuine token honours its link for ``lifetime`` seconds after it was made (default one year,
``[tracking] token_lifetime``; a version 1 token, which has no issue time, counts as expired).
Then a click gets a ``410`` page that names the link's target as text (HTML-escaped, not a link,
under a ``default-src 'none'`` Content-Security-Policy) instead of a redirect: the recipient can
still go there by hand, while an old token found anywhere no longer turns our domain into a
one-click hop to wherever an account once linked. An expired pixel is still a pixel. Neither
records anything.

A verified hit becomes a ``TrackingHit`` that is rate limited (token buckets per client IP and
per token, with an injected clock) and then *offered* to a ``HitRecorder``: a bounded in-memory
buffer that a background task drains in batches into a sink (the store). The response never
waits on the store; when the buffer is full the hit is dropped and counted. Memory is bounded by
the buffer capacity plus one batch, and by the rate limiter's key cap.

Trusts: nothing in the request. The account, message, recipient and URL come only from the
verified token. The client IP is ``request.client.host`` (what uvicorn reports; put uvicorn's
``--proxy-headers``/``forwarded_allow_ips`` in front if a reverse proxy sets X-Forwarded-For)
unless the caller injects another ``client_ip``. The tracking keys are secrets and never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import inspect
import logging
import urllib.parse
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from relaygate.clock import Clock
from relaygate.events.tracking import TrackingRef, read_token, trackable_url
from relaygate.store.models import TrackingHit

__all__ = [
    "PIXEL_GIF",
    "HitRecorder",
    "HitSink",
    "RateLimits",
    "TrackingCounters",
    "TrackingHit",
    "tracking_app",
    "tracking_routes",
]

log = logging.getLogger("relaygate.events.tracking")

PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    b"!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
"""A 1x1 transparent GIF89a (43 bytes)."""

NO_CACHE_HEADERS = {
    "Cache-Control": "no-store, no-cache, must-revalidate, private",
    "Pragma": "no-cache",
    "Expires": "0",
    "X-Robots-Tag": "noindex, nofollow",
}
_REDIRECT_HEADERS = {
    "Cache-Control": "no-store, private",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}
_NOT_FOUND_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}
_EXPIRED_HEADERS = {**_NOT_FOUND_HEADERS, "Content-Security-Policy": "default-src 'none'"}
EXPIRED_HTML = (
    '<!doctype html><html><head><meta charset="utf-8"><title>Link expired</title></head>'
    "<body><h1>This link has expired</h1><p>It led to:</p><p><code>{url}</code></p>"
    "<p>If you still want to go there, copy the address into your browser.</p></body></html>"
)
DEFAULT_LIFETIME = 365 * 86400.0
NOT_FOUND_HTML = (
    '<!doctype html><html><head><meta charset="utf-8"><title>Link not found</title></head>'
    "<body><h1>Link not found</h1><p>This link is not valid.</p></body></html>"
)
MAX_USER_AGENT = 512
# Everything printable in ASCII stays; spaces and non-ASCII become %XX (UTF-8).
_LOCATION_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


HitSink = Callable[[Sequence[TrackingHit]], Awaitable[None] | None]
"""Writes a batch of hits (e.g. one store transaction). May be sync or async."""


# --------------------------------------------------------------------------- rate limiting


@dataclass(frozen=True, kw_only=True)
class RateLimits:
    """Token buckets: ``burst`` hits at once, refilled at ``per_second``.

    Per IP is generous (many people behind one corporate NAT open the same newsletter);
    per token is tight (one recipient's one link or pixel). ``max_keys`` caps each table; the
    least recently seen key is forgotten first (it then starts with a full bucket again).
    """

    per_ip_burst: float = 120.0
    per_ip_per_second: float = 20.0
    per_token_burst: float = 10.0
    per_token_per_second: float = 0.2
    max_keys: int = 50_000


class _Buckets:
    def __init__(self, burst: float, rate: float, max_keys: int) -> None:
        self._burst = burst
        self._rate = rate
        self._max = max_keys
        self._table: OrderedDict[object, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._table)

    def take(self, key: object, now: float) -> bool:
        got = self._table.pop(key, None)
        if got is None:
            tokens = self._burst
        else:
            tokens, last = got
            tokens = min(self._burst, tokens + max(0.0, now - last) * self._rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._table[key] = (tokens, now)
        while len(self._table) > self._max:
            self._table.popitem(last=False)
        return allowed


class _Limiter:
    def __init__(self, limits: RateLimits) -> None:
        self.per_ip = _Buckets(limits.per_ip_burst, limits.per_ip_per_second, limits.max_keys)
        self.per_token = _Buckets(
            limits.per_token_burst, limits.per_token_per_second, limits.max_keys
        )

    def allow(self, ip: str, token: str, now: float) -> bool:
        digest = hashlib.blake2b(token.encode("ascii"), digest_size=16).digest()
        ip_ok = self.per_ip.take(ip, now)
        token_ok = self.per_token.take(digest, now)
        return ip_ok and token_ok


# --------------------------------------------------------------------------- recorder


@dataclass(kw_only=True)
class RecorderStats:
    """Counters for metrics. ``accepted = written + failed + pending``, give or take a batch."""

    accepted: int = 0
    dropped: int = 0
    written: int = 0
    failed: int = 0
    batches: int = 0


class HitRecorder:
    """A bounded buffer of hits drained in batches into ``sink`` by one background task.

    ``offer`` never blocks and never awaits: it appends, or drops (and counts) when ``capacity``
    hits are already waiting. The task writes up to ``batch_size`` hits per call, as soon as a
    batch is full or ``flush_interval_s`` after the first waiting hit. A failing sink loses that
    batch (counted in ``stats.failed`` and logged); tracking is best effort, sending is not
    affected. Use as ``async with HitRecorder(...)`` or ``start()`` / ``stop()``; ``stop`` writes
    what is still buffered.
    """

    def __init__(
        self,
        sink: HitSink,
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
        flush_interval_s: float = 0.25,
    ) -> None:
        if capacity < 1 or batch_size < 1 or flush_interval_s < 0:
            raise ValueError("capacity and batch_size must be positive")
        self._sink = sink
        self._capacity = capacity
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._buf: deque[TrackingHit] = deque()
        self._has_items = asyncio.Event()
        self._full = asyncio.Event()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self.stats = RecorderStats()

    @property
    def pending(self) -> int:
        return len(self._buf)

    def offer(self, hit: TrackingHit) -> bool:
        """Queue ``hit`` for writing; ``False`` (and counted) when full or stopped."""
        if self._closed or len(self._buf) >= self._capacity:
            self.stats.dropped += 1
            return False
        self._buf.append(hit)
        self.stats.accepted += 1
        self._has_items.set()
        if len(self._buf) >= self._batch_size:
            self._full.set()
        return True

    async def start(self) -> None:
        if self._task is None:
            self._closed = False
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="relaygate-tracking-recorder"
            )

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop taking hits, write what is buffered (up to ``timeout`` seconds), end the task."""
        self._closed = True
        self._has_items.set()
        self._full.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, timeout)
            except TimeoutError:
                log.error("tracking recorder stopped with %d hits unwritten", len(self._buf))

    async def flush(self) -> None:
        """Write everything buffered now, in batches (for shutdown and tests)."""
        while self._buf:
            await self._write_batch()

    async def __aenter__(self) -> HitRecorder:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        while True:
            if not self._buf:
                if self._closed:
                    return
                self._has_items.clear()
                await self._has_items.wait()
                continue
            if len(self._buf) < self._batch_size and not self._closed:
                self._full.clear()
                try:
                    await asyncio.wait_for(self._full.wait(), self._interval)
                except TimeoutError:
                    pass
            await self._write_batch()

    async def _write_batch(self) -> None:
        n = min(len(self._buf), self._batch_size)
        batch = [self._buf.popleft() for _ in range(n)]
        if not batch:
            return
        try:
            result = self._sink(batch)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            self.stats.failed += len(batch)
            raise
        except Exception as exc:
            self.stats.failed += len(batch)
            log.error("tracking sink failed, %d hits lost: %s", len(batch), type(exc).__name__)
        else:
            self.stats.written += len(batch)
            self.stats.batches += 1


# --------------------------------------------------------------------------- endpoints


@dataclass(kw_only=True)
class TrackingCounters:
    """Request counters for metrics."""

    hits: int = 0
    invalid: int = 0
    limited: int = 0
    expired: int = 0


def _default_client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _location(url: str) -> str:
    return urllib.parse.quote(url, safe=_LOCATION_SAFE)


def tracking_routes(
    *,
    keys: Sequence[bytes],
    recorder: HitRecorder,
    clock: Clock,
    limits: RateLimits | None = None,
    client_ip: Callable[[Request], str] = _default_client_ip,
    counters: TrackingCounters | None = None,
    lifetime: float = DEFAULT_LIFETIME,
) -> list[BaseRoute]:
    """Routes for ``/t/o/{token}`` and ``/t/c/{token}`` to add to the public HTTP app.

    ``keys`` verify tokens, newest first (see ``tracking.read_token``). Verified, not rate
    limited hits of tokens younger than ``lifetime`` seconds are offered to ``recorder``; pass
    ``counters`` to read request counts.
    """
    key_list = list(keys)
    limiter = _Limiter(limits or RateLimits())
    count = counters if counters is not None else TrackingCounters()

    def not_found() -> Response:
        count.invalid += 1
        return HTMLResponse(NOT_FOUND_HTML, status_code=404, headers=_NOT_FOUND_HEADERS)

    def expired(ref: TrackingRef) -> bool:
        if ref.issued_at is None or clock.now() - ref.issued_at > lifetime:
            count.expired += 1
            return True
        return False

    def note(request: Request, token: str, ref: TrackingRef) -> None:
        count.hits += 1
        ip = client_ip(request)
        now = clock.now()
        if not limiter.allow(ip, token, now):
            count.limited += 1
            return
        recorder.offer(
            TrackingHit(
                kind=ref.kind,
                account_id=ref.account_id,
                message_id=ref.message_id,
                recipient_id=ref.recipient_id,
                url=ref.url,
                ip=ip,
                user_agent=request.headers.get("user-agent", "")[:MAX_USER_AGENT],
                method=request.method,
                at=now,
            )
        )

    async def open_pixel(request: Request) -> Response:
        token = request.path_params["token"]
        ref = read_token(token, keys=key_list, kind="o")
        if ref is None:
            return not_found()
        if not expired(ref):
            note(request, token, ref)
        return Response(PIXEL_GIF, media_type="image/gif", headers=NO_CACHE_HEADERS)

    async def click(request: Request) -> Response:
        token = request.path_params["token"]
        ref = read_token(token, keys=key_list, kind="c")
        if ref is None or ref.url is None or trackable_url(ref.url) != ref.url:
            return not_found()
        if expired(ref):
            page = EXPIRED_HTML.format(url=html.escape(ref.url, quote=True))
            return HTMLResponse(page, status_code=410, headers=_EXPIRED_HEADERS)
        note(request, token, ref)
        return Response(
            status_code=302, headers={**_REDIRECT_HEADERS, "Location": _location(ref.url)}
        )

    return [
        Route("/t/o/{token}", open_pixel, methods=["GET", "HEAD"], name="tracking_open"),
        Route("/t/c/{token}", click, methods=["GET", "HEAD"], name="tracking_click"),
    ]


def tracking_app(
    *,
    keys: Sequence[bytes],
    recorder: HitRecorder,
    clock: Clock,
    limits: RateLimits | None = None,
    client_ip: Callable[[Request], str] = _default_client_ip,
    counters: TrackingCounters | None = None,
    lifetime: float = DEFAULT_LIFETIME,
) -> Starlette:
    """A standalone Starlette app serving only the tracking routes; starts/stops ``recorder``."""
    routes = tracking_routes(
        keys=keys,
        recorder=recorder,
        clock=clock,
        limits=limits,
        client_ip=client_ip,
        counters=counters,
        lifetime=lifetime,
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with recorder:
            yield

    return Starlette(routes=routes, lifespan=lifespan)
