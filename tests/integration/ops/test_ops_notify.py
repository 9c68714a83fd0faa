"""sd_notify against real AF_UNIX datagram sockets (path and abstract namespace)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaygate.notify import Notifier, watchdog_loop


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield sock, path
    sock.close()


@pytest.fixture
def abstract_socket() -> Iterator[tuple[socket.socket, str]]:
    name = f"relaygate-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    yield sock, "@" + name
    sock.close()


def recv_all(sock: socket.socket) -> list[str]:
    out: list[str] = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(2)
    return out


def test_ready_status_stopping_reach_a_path_socket(path_socket: tuple[socket.socket, str]) -> None:
    sock, path = path_socket
    n = Notifier.from_env({"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready("serving http on\n127.0.0.1:8025")
    assert sock.recv(4096) == b"READY=1\nSTATUS=serving http on 127.0.0.1:8025"
    assert n.status("draining 3 sessions")
    assert sock.recv(4096) == b"STATUS=draining 3 sessions"
    assert n.stopping()
    assert sock.recv(4096) == b"STOPPING=1"
    assert n.extend_timeout(90)
    assert sock.recv(4096) == b"EXTEND_TIMEOUT_USEC=90000000"
    n.close()


def test_abstract_namespace_socket(abstract_socket: tuple[socket.socket, str]) -> None:
    sock, address = abstract_socket
    n = Notifier.from_env({"NOTIFY_SOCKET": address})
    assert n.ready()
    assert sock.recv(4096) == b"READY=1"


def test_unset_socket_is_a_silent_no_op() -> None:
    n = Notifier.from_env({})
    assert not n.enabled
    assert n.ready() is False
    assert n.stopping() is False
    assert n.watchdog() is False
    assert n.watchdog_interval() is None


def test_watchdog_interval_respects_watchdog_pid(path_socket: tuple[socket.socket, str]) -> None:
    sock, path = path_socket
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"}
    assert Notifier.from_env(env).watchdog_interval() == 30.0
    mine = Notifier.from_env({**env, "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog_interval() == 30.0
    assert mine.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    other = Notifier.from_env({**env, "WATCHDOG_PID": "1"}, pid=4242)
    assert other.watchdog_interval() is None
    assert other.watchdog() is False
    assert Notifier.from_env({**env, "WATCHDOG_USEC": "soon"}).watchdog_interval() is None
    assert Notifier.from_env({**env, "WATCHDOG_USEC": "0"}).watchdog_interval() is None
    assert recv_all(sock) == []


def test_missing_socket_never_raises_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    n = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    with caplog.at_level(logging.DEBUG, logger="relaygate.notify"):
        assert n.ready() is False
        assert n.status("x") is False
        assert n.stopping() is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "sd_notify" in warnings[0].getMessage()


def test_malformed_lines_are_refused_not_raised(path_socket: tuple[socket.socket, str]) -> None:
    sock, path = path_socket
    n = Notifier.from_env({"NOTIFY_SOCKET": path})
    assert n.notify("READY=1\nMAINPID=1") is False
    assert n.notify("garbage") is False
    assert recv_all(sock) == []


async def test_watchdog_loop_pings_at_half_interval_only_while_healthy(
    path_socket: tuple[socket.socket, str],
) -> None:
    sock, path = path_socket
    n = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    health = iter([True, True, False, False, True])
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 5:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await watchdog_loop(n, lambda: next(health), sleep=fake_sleep)
    assert sleeps == [1.0] * 5
    assert recv_all(sock) == [
        "WATCHDOG=1",
        "WATCHDOG=1",
        "STATUS=unhealthy: watchdog pings withheld",
        "WATCHDOG=1",
        "STATUS=healthy again; watchdog pings resumed",
    ]


async def test_watchdog_loop_with_real_time_and_a_raising_check(
    path_socket: tuple[socket.socket, str],
) -> None:
    sock, path = path_socket
    n = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"})  # ping every 20 ms

    def broken() -> bool:
        raise RuntimeError("store gone")

    task = asyncio.create_task(watchdog_loop(n, broken))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert recv_all(sock) == ["STATUS=unhealthy: watchdog pings withheld"]

    task = asyncio.create_task(watchdog_loop(n, lambda: True))
    await asyncio.sleep(0.11)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pings = recv_all(sock)
    assert set(pings) == {"WATCHDOG=1"}
    assert 3 <= len(pings) <= 8


async def test_watchdog_loop_returns_when_no_watchdog() -> None:
    await asyncio.wait_for(watchdog_loop(Notifier.from_env({}), lambda: True), timeout=1)
