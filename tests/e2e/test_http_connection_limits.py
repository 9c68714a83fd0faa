"""A stranger cannot hold HTTP connections (issue 15 item 7): a connection that sends nothing,
stops mid-headers, trickles its headers a byte at a time, stalls mid-body or idles after a
response is closed by the server; past ``[http] max_connections`` one more connection gets a
503 with ``Retry-After`` and a JSON ``detail``, and connections are served again once others
close.

Connection timeouts are wall-clock by nature (real sockets, the server's own timers), so the
server runs with timeouts of half a second and the test waits on the socket for the server's
close (bounded by a socket timeout), never for a fixed time.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaygate.testing.process import RelaygateProcess

HEADER_TIMEOUT = 0.5
IDLE_TIMEOUT = 0.5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelaygateProcess]:
    rg = RelaygateProcess(
        Path(tmp_path_factory.mktemp("conn")),
        roles=["http"],
        http={
            "header_timeout": HEADER_TIMEOUT,
            "idle_timeout": IDLE_TIMEOUT,
            "max_connections": 3,
        },
    )
    with rg:
        yield rg


def _connect(rg: RelaygateProcess) -> socket.socket:
    host, _, port = rg.info["http"].rpartition(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    return s


def _closed_by_server(s: socket.socket) -> bytes:
    """Everything the server sends until it closes (the socket timeout bounds the wait)."""
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_a_silent_connection_is_closed(server: RelaygateProcess) -> None:
    with _connect(server) as s:
        started = time.monotonic()
        assert _closed_by_server(s) == b""
        assert time.monotonic() - started < HEADER_TIMEOUT + 5


def test_a_connection_stuck_mid_headers_is_closed(server: RelaygateProcess) -> None:
    with _connect(server) as s:
        s.sendall(b"POST /v1/send HTTP/1.1\r\nHost: relay.test\r\nX-API-Key: ")
        assert _closed_by_server(s) == b""


def test_headers_trickled_a_byte_at_a_time_do_not_keep_a_connection(
    server: RelaygateProcess,
) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: relay.test\r\n" + b"X-Pad: " + b"a" * 1000
    with _connect(server) as s:
        started = time.monotonic()
        sent = 0
        for byte in request:
            try:
                s.sendall(bytes([byte]))
            except OSError:  # closed while we were still sending: what we want
                break
            sent += 1
            # one byte per tenth of a second, as long as the server has not closed
            if select.select([s], [], [], 0.1)[0] and not s.recv(1):
                break
        else:
            pytest.fail("the server kept a trickling connection open")
        assert sent * 0.1 >= HEADER_TIMEOUT / 2  # bytes kept coming while it decided
        assert time.monotonic() - started < HEADER_TIMEOUT + 5


def test_a_stalled_body_is_closed(server: RelaygateProcess) -> None:
    with _connect(server) as s:
        s.sendall(
            b"POST /v1/send HTTP/1.1\r\nHost: relay.test\r\nX-API-Key: nope\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"from'
        )
        reply = _closed_by_server(s)
        assert b" 500 " not in reply
    assert "internal error" not in server.log_path.read_text()


def test_an_idle_kept_alive_connection_is_closed(server: RelaygateProcess) -> None:
    with _connect(server) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay.test\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 200")
        rest = _closed_by_server(s)  # no second request: closed after the idle timeout
        assert b"HTTP/1.1" not in rest


def test_past_the_cap_one_more_connection_gets_503_then_service_resumes(
    server: RelaygateProcess,
) -> None:
    held = [_connect(server) for _ in range(3)]
    try:
        for s in held:  # keep them open past the header timeout: each sends a request
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay.test\r\n\r\n")
        for s in held:
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
        with _connect(server) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay.test\r\n\r\n")
            reply = _closed_by_server(extra)
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503"), reply
        assert b"retry-after: 1" in head.lower()
        assert json.loads(body) == {"detail": "too many connections; retry later"}
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 10
    while True:  # the server notices the closes on its next loop steps
        with _connect(server) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay.test\r\nConnection: close\r\n\r\n")
            reply = _closed_by_server(s)
        if reply.startswith(b"HTTP/1.1 200") or time.monotonic() > deadline:
            break
    assert reply.startswith(b"HTTP/1.1 200"), reply
    assert "http connection cap reached" in server.log_path.read_text()
