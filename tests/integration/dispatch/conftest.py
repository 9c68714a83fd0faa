"""Fixtures for the webhook dispatcher's tests: a scriptable receiver on loopback, seeded events,
and the loopback-only guard (every socket address lookup must be a loopback IP literal)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from relaygate.settings import Settings
from relaygate.store.sqlite import SqliteStore as Store


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        text = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ok = ipaddress.ip_address(text.split("%")[0]).is_loopback
        except ValueError:
            ok = False
        if not ok:
            raise socket.gaierror(socket.EAI_NONAME, f"test guard: {text!r} is not a loopback IP")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the request was complete

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """HTTP/1.1 on 127.0.0.1. Path /ok → 200, /fail → 500, /hang → never answers (until the client closes),
    /slow → 200 after ``slow_seconds``. ``hits`` records every complete request."""

    port: int = 0
    slow_seconds: float = 0.3
    hits: list[Hit] = field(default_factory=list)
    open_now: int = 0
    max_open: dict[str, int] = field(default_factory=dict)
    log: list[tuple[float, str, int]] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _open_by_path: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def paths(self) -> list[str]:
        return [h.path for h in self.hits]

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        path = "?"
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            path = head[0].split(" ")[1]
            headers = {}
            for line in head[1:]:
                if line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self._open_by_path[path] = self._open_by_path.get(path, 0) + 1
            self.log.append((time.monotonic(), path, self._open_by_path[path]))
            self.max_open[path] = max(self.max_open.get(path, 0), self._open_by_path[path])
            self.hits.append(Hit(path, headers, body, time.monotonic()))
            if path.startswith("/hang"):
                try:  # never answer; end when the client gives up and closes
                    await reader.read()
                except asyncio.CancelledError:  # at stop(): end quietly, not as "cancelled"
                    pass
                return
            if path.startswith("/slow"):
                await asyncio.sleep(self.slow_seconds)
            status = "500 Internal Server Error" if path.startswith("/fail") else "200 OK"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if path in self._open_by_path:
                self._open_by_path[path] -= 1
                self.log.append((time.monotonic(), path, self._open_by_path[path]))
            self._tasks.discard(task)
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
def webhook_settings(tmp_path: Any) -> Callable[..., Settings]:
    """Settings for the dispatcher: private targets and http allowed, a short timeout."""
    from relaygate.settings import from_mapping

    def make(**webhooks: Any) -> Settings:
        data: dict[str, Any] = {
            "state_dir": str(tmp_path / "state"),
            "hostname": "relay.test",
            "delivery": {"mode": "capture", "capture_dir": str(tmp_path / "capture")},
            "dns": {"nameservers": ["127.0.0.1:1"], "timeout": 0.5},
            "webhooks": {"allow_private": True, "timeout": 2.0, **webhooks},
        }
        return from_mapping(data, path=tmp_path / "relaygate.toml")

    return make


def seed_message(
    store: Store,
    *,
    account_id: int,
    message_id: str,
    recipients: tuple[str, ...] = ("r@example.net",),
    tags: tuple[str, ...] = ("welcome",),
) -> list[int]:
    """A message row with its recipients (direct SQL; the tests care about events). Returns recipient ids."""
    now = store.clock.now()

    def fn(c: Any) -> list[int]:
        c.execute(
            "INSERT INTO messages (id, account_id, channel, from_addr, sender_domain, subject,"
            " header_message_id, tags, size, created_at) VALUES (?, ?, 'http', 'a@example.com',"
            " 'example.com', 's', ?, ?, 1, ?)",
            (message_id, account_id, f"<{message_id}@example.com>", json.dumps(list(tags)), now),
        )
        ids = []
        for address in recipients:
            ids.append(
                c.execute(
                    "INSERT INTO recipients (message_id, account_id, address, domain, kind, state,"
                    " queued_at, next_attempt_at, updated_at) VALUES (?, ?, ?, ?, 'to', 'delivered',"
                    " ?, ?, ?)",
                    (message_id, account_id, address, address.rpartition("@")[2], now, now, now),
                ).lastrowid
            )
        return ids

    return _sql(store, fn)


def _sql(store: Store, fn: Any) -> Any:
    """``fn(conn)`` in one transaction on a connection of its own to the store's file."""
    conn = sqlite3.connect(str(store.path), isolation_level=None, timeout=10)
    try:
        conn.execute("BEGIN IMMEDIATE")
        result = fn(conn)
        conn.execute("COMMIT")
        return result
    finally:
        conn.close()


def add_event(
    store: Store,
    *,
    account_id: int,
    message_id: str | None,
    recipient_id: int | None,
    type_: str,
    data: dict[str, Any] | None = None,
) -> int:
    now = store.clock.now()
    payload = json.dumps(data if data is not None else {"smtp_response": "250 2.0.0 ok"})
    return int(
        _sql(
            store,
            lambda c: (
                c.execute(
                    "INSERT INTO events (account_id, message_id, recipient_id, type, created_at, data)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (account_id, message_id, recipient_id, type_, now, payload),
                ).lastrowid
            ),
        )
    )


@dataclass
class Seeder:
    """``seed.message(...)`` and ``seed.event(...)`` on one store (a fixture, so tests need no import)."""

    store: Store

    def message(self, **kwargs: Any) -> list[int]:
        return seed_message(self.store, **kwargs)

    def event(self, **kwargs: Any) -> int:
        return add_event(self.store, **kwargs)

    def on(self, other: Store) -> Seeder:
        return Seeder(other)


@pytest.fixture
def seed(store: Store) -> Seeder:
    return Seeder(store)
