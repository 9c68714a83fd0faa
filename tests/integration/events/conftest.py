"""A tiny scriptable HTTP/1.1 server on loopback for the webhook sender's tests.

Behaviour is chosen by request path: /ok, /fail, /hang, /trickle, /redirect, /landed, /big.
Every connection and request is recorded, so tests can assert that none happened.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import pytest

from relaygate.testing.dns import DNSServer


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HookServer:
    host: str
    port: int = 0
    ssl_context: ssl.SSLContext | None = None
    connections: int = 0
    requests: list[Seen] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> HookServer:
        if self.ssl_context is not None:
            self.ssl_context.sni_callback = self._on_sni
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def _on_sni(self, sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        self.sni.append(name)

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
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Seen(method, target, headers, body))
            await self._respond(target.split("?")[0], writer)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _respond(self, path: str, writer: asyncio.StreamWriter) -> None:
        def reply(status: str, body: bytes = b"", extra: str = "") -> None:
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}"
                "Connection: close\r\n\r\n".encode()
                + body
            )

        if path == "/ok":
            reply("200 OK", b"thanks")
        elif path == "/accepted":
            reply("204 No Content")
        elif path == "/fail":
            reply("500 Internal Server Error", b"boom")
        elif path == "/redirect":
            reply("302 Found", extra=f"Location: http://{self.host}:{self.port}/landed\r\n")
        elif path == "/landed":
            reply("200 OK", b"should never be reached")
        elif path == "/big":
            reply("200 OK", b"x" * (1024 * 1024))
        elif path == "/hang":
            await asyncio.sleep(3600)
        elif path == "/trickle":
            writer.write(b"HTTP/1.1 200 OK\r\n")
            while True:  # a header line that never ends, one byte at a time
                writer.write(b"X")
                await writer.drain()
                await asyncio.sleep(0.05)
        else:
            reply("404 Not Found")
        await writer.drain()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Belt and braces for the network rule: every socket address lookup in these tests (anyio,
    hence httpx, looks up even IP literals before connecting) must be a loopback IP literal.
    A name or a non-loopback address fails here, before any packet could leave the host."""
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


@pytest.fixture
async def start_hook_server() -> AsyncIterator[Callable[..., Awaitable[HookServer]]]:
    """``await start_hook_server(host, port=0, ssl_context=None)``; stopped at teardown."""
    started: list[HookServer] = []

    async def start(
        host: str, *, port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> HookServer:
        server = await HookServer(host, port=port, ssl_context=ssl_context).start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def hook_server(start_hook_server: Callable[..., Awaitable[HookServer]]) -> HookServer:
    return await start_hook_server("127.0.0.1")


@pytest.fixture
def dns_server() -> Iterator[DNSServer]:
    with DNSServer({}) as server:
        yield server
