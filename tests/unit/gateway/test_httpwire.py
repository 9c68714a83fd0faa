"""The coalescing transport under uvicorn's protocol (a double stands in for the real transport:
this tests the seam; every HTTP e2e test runs the real thing)."""

from __future__ import annotations

import asyncio
from typing import Any

from relaygate.gateway.httpwire import _CoalescingTransport


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5)}.get(name, default)


async def test_writes_of_one_loop_step_go_out_as_one() -> None:
    real = FakeTransport()
    t = _CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    t.write(memoryview(b"ok"))
    assert real.writes == [] and t.get_write_buffer_size() == 7 + 40
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
    t.write(b"next")
    await asyncio.sleep(0)
    assert real.writes[-1] == b"next" and len(real.writes) == 2


async def test_close_flushes_first_and_late_writes_are_dropped() -> None:
    real = FakeTransport()
    t = _CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    t.close()
    assert real.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"] and real.closed
    t.write(b"after close")
    await asyncio.sleep(0)  # the scheduled flush finds the transport closing: nothing written
    assert len(real.writes) == 1


async def test_everything_else_is_the_real_transports() -> None:
    real = FakeTransport()
    t = _CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    assert t.get_extra_info("peername") == ("127.0.0.1", 5)
    assert t.is_closing() is False
