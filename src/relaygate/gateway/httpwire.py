"""The HTTP wire under uvicorn: connection timeouts and cap, one system call per response.

``http_protocol(...)`` is the protocol class given to uvicorn. It keeps a stranger from holding
connections (uvicorn closes only connections idle *after* a response):

* a request's headers must be complete within ``header_timeout`` seconds of the connection's
  start, or of the request's first byte on a kept-alive connection (a client that sends nothing,
  or trickles its headers a byte at a time, is closed);
* a request body may pause at most ``idle_timeout`` seconds between two reads, and a kept-alive
  connection may sit idle that long between requests;
* at most ``max_connections`` are open: one more is answered ``503`` with ``Retry-After`` and a
  JSON ``detail`` as soon as its request is read (within ``OVER_CAP_SECONDS``), then closed.

One timer per connection, re-armed lazily: a request costs a few attribute writes.

uvicorn's httptools protocol writes a response's status line and headers, then its body, with
two ``transport.write`` calls; each is a ``send()`` (and usually a TCP segment) of its own.
``CoalescingHttpToolsProtocol`` hands the protocol a transport whose writes made during one
event-loop step are joined and written once at the end of that step (``loop.call_soon``), so a
small response goes out in one segment. Ordering is kept; ``close()`` flushes first; everything
else is the real transport's. Nothing here parses or trusts request data.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("relaygate.http")

#: Seconds an over-cap connection may take to send its request before it is closed unanswered.
OVER_CAP_SECONDS = 1.0
#: The cap's warning is logged at most this often (with the count of refusals since).
_WARN_EVERY = 60.0
_WAITING, _BODY, _HANDLING = 0, 1, 2


class _CoalescingTransport:
    """A transport whose writes within one loop step go out as one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(p) for p in self._pending)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        wrapped: Any = _CoalescingTransport(transport, asyncio.get_running_loop())
        super().connection_made(wrapped)


async def _too_many_connections(scope: Scope, receive: Receive, send: Send) -> None:
    body = json.dumps({"detail": "too many connections; retry later"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _Refusals:
    """How many connections the cap refused, for one warning a minute."""

    count = 0
    warned_at: float | None = None


class GuardedHttpProtocol(CoalescingHttpToolsProtocol):
    """Header and idle timeouts and a connection cap (see the module docstring)."""

    header_timeout = 10.0
    idle_timeout = 30.0
    max_connections = 1000
    refusals = _Refusals

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._state = _WAITING
        self._since = self._last = self.loop.time()
        limit = self.header_timeout
        if len(self.connections) > self.max_connections:
            self.app = _too_many_connections
            self.header_timeout = limit = min(limit, OVER_CAP_SECONDS)
            self._note_refusal()
        self._timer: asyncio.TimerHandle | None = self.loop.call_later(limit, self._check)

    def _note_refusal(self) -> None:
        cls = self.refusals
        cls.count += 1
        now = self.loop.time()
        if cls.warned_at is None or now - cls.warned_at >= _WARN_EVERY:
            log.warning(
                "http connection cap reached; connections refused",
                extra={"max_connections": self.max_connections, "refused": cls.count},
            )
            cls.warned_at = now
            cls.count = 0

    def data_received(self, data: bytes) -> None:
        self._last = self.loop.time()
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._state == _HANDLING:  # the next request of a kept-alive connection
            self._state = _WAITING
            self._since = self._last

    def on_headers_complete(self) -> None:
        self._state = _BODY
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._state = _HANDLING
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def _check(self) -> None:
        """The connection's one timer: close it past its deadline, else look again later."""
        self._timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self._state == _WAITING:
            deadline = self._since + self.header_timeout
            reason = "request headers not received in time"
        elif self._state == _BODY:
            deadline = self._last + self.idle_timeout
            reason = "request body stalled"
        else:  # a request is being handled, or the connection idles (uvicorn's keep-alive)
            deadline = now + self.header_timeout
            reason = ""
        if reason and now >= deadline:
            log.info("http connection closed: " + reason, extra={"peer": _peer(self.client)})
            self.transport.close()
            return
        self._timer = self.loop.call_later(deadline - now, self._check)


def _peer(client: tuple[str, int] | None) -> str:
    return client[0] if client else ""


def http_protocol(
    *, header_timeout: float, idle_timeout: float, max_connections: int
) -> type[GuardedHttpProtocol]:
    """The protocol class for uvicorn, with these limits (uvicorn's own keep-alive timeout
    should be ``idle_timeout`` too)."""
    return type(
        "RelaygateHttpProtocol",
        (GuardedHttpProtocol,),
        {
            "header_timeout": header_timeout,
            "idle_timeout": idle_timeout,
            "max_connections": max_connections,
            "refusals": type("Refusals", (_Refusals,), {}),
        },
    )
