"""Fixtures for the SMTP gateway: a real server on the running loop (port 0), a real store,
trustme certificates, and a small raw client for dialogues smtplib would not produce."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme

from relaygate.clock import FakeClock
from relaygate.gateway.admission import Admission
from relaygate.gateway.smtp import SmtpGateway
from relaygate.settings import Settings, from_mapping
from relaygate.store.sqlite import SqliteStore as Store

CLIENT = "client.test"


@dataclass
class Certs:
    ca: trustme.CA
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    ca = trustme.CA()
    server = ca.issue_cert("relay.test", "127.0.0.1", "::1", "localhost")
    d = tmp_path_factory.mktemp("certs")
    server.cert_chain_pems[0].write_to_path(d / "cert.pem")
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(d / "cert.pem", append=True)
    server.private_key_pem.write_to_path(d / "key.pem")
    return Certs(ca=ca, cert=d / "cert.pem", key=d / "key.pem")


@dataclass
class Running:
    gateway: SmtpGateway
    admission: Admission
    settings: Settings
    host: str
    port: int
    tls_port: int | None
    inbound: list[dict[str, Any]] = field(default_factory=list)


def smtp_settings(tmp_path: Path, **smtp: Any) -> Settings:
    data: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "hostname": "relay.test",
        "delivery": {"mode": "capture", "capture_dir": str(tmp_path / "capture")},
        "smtp": {"listen": ["127.0.0.1:0"], **smtp},
    }
    return from_mapping(data, path=tmp_path / "relaygate.toml")


def _listen(host: str = "127.0.0.1") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


StartGateway = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_gateway(
    tmp_path: Path, store: Store, clock: FakeClock, certs: Certs
) -> AsyncIterator[StartGateway]:
    started: list[SmtpGateway] = []

    async def start(*, tls: bool = False, host: str = "127.0.0.1", **smtp: Any) -> Running:
        if tls:
            smtp.setdefault("tls_cert", str(certs.cert))
            smtp.setdefault("tls_key", str(certs.key))
        settings = smtp_settings(tmp_path, **smtp)
        admission = Admission(store=store, settings=settings, clock=clock)
        gateway = SmtpGateway(admission=admission, settings=settings, clock=clock)
        started.append(gateway)
        server = await gateway.start(_listen(host))
        tls_port = None
        if tls:
            tls_server = await gateway.start(_listen(host), implicit_tls=True)
            tls_port = tls_server.sockets[0].getsockname()[1]
        return Running(
            gateway=gateway,
            admission=admission,
            settings=settings,
            host=host,
            port=server.sockets[0].getsockname()[1],
            tls_port=tls_port,
        )

    yield start
    for gateway in started:
        await gateway.stop(timeout=1)


@pytest.fixture
async def gw(start_gateway: StartGateway) -> Running:
    return await start_gateway()


class RawClient:
    """Line-level SMTP: send exactly what a test says, read whole (multi-line) replies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, host: str, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection(host, port, limit=2**20)
        client = cls(reader, writer)
        greeting = await client.reply()
        assert greeting.startswith("220 "), greeting
        return client

    async def reply(self, timeout: float = 10.0) -> str:
        lines = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
            if not line:
                raise ConnectionError("closed: " + "".join(lines))
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                return "\n".join(lines)

    async def send(self, data: bytes | str) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def cmd(self, line: bytes | str) -> str:
        await self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return await self.reply()

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


@pytest.fixture
async def raw(gw: Running) -> AsyncIterator[RawClient]:
    client = await RawClient.connect(gw.host, gw.port)
    yield client
    await client.close()


def message(
    *,
    frm: str = "App <app@example.com>",
    to: str = "r@dest.test",
    subject: str = "Hello",
    extra: str = "",
    body: str = "Hi there.\r\n",
) -> bytes:
    return (
        f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


Connect = Callable[..., Awaitable[RawClient]]


@pytest.fixture
async def connect(gw: Running) -> AsyncIterator[Connect]:
    """``await connect()`` → a RawClient on ``gw`` (closed at teardown)."""
    clients: list[RawClient] = []

    async def make(host: str | None = None, port: int | None = None) -> RawClient:
        client = await RawClient.connect(host or gw.host, port or gw.port)
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.close()


@pytest.fixture
def msg() -> Callable[..., bytes]:
    return message
