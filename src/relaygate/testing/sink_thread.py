"""An ``SmtpSink`` on its own event loop in a background thread, for synchronous tests and benches
that drive a real ``relaygate serve`` process (the sink must keep answering while the test blocks).

    with ThreadedSink(data_delay=0.1) as sink:
        ... [delivery] mx_port = sink.port ...
        sink.wait_for(20, timeout=10)
        rcpts = sink.recipients()

The sink's lists are only appended to by the sink's loop; readers here take copies.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from relaygate.testing.smtp_sink import ReceivedMessage, SmtpSink


class ThreadedSink:
    def __init__(self, **sink_options: Any) -> None:
        self._options = sink_options
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="smtp-sink", daemon=True
        )
        self.sink: SmtpSink | None = None

    def start(self) -> ThreadedSink:
        self._thread.start()

        async def make() -> SmtpSink:
            return await SmtpSink(**self._options).start()

        self.sink = asyncio.run_coroutine_threadsafe(make(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if self.sink is not None:
            asyncio.run_coroutine_threadsafe(self.sink.stop(), self._loop).result(timeout=10)
            self.sink = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    @property
    def port(self) -> int:
        assert self.sink is not None
        return self.sink.port

    def messages(self) -> list[ReceivedMessage]:
        assert self.sink is not None
        return list(self.sink.messages)

    def recipients(self) -> list[str]:
        return [r for m in self.messages() for r in m.rcpt_tos]

    def wait_for(self, count: int, *, timeout: float) -> list[ReceivedMessage]:
        """Until ``count`` messages were accepted (or the timeout passes); returns them."""
        deadline = time.monotonic() + timeout
        while len(self.messages()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages()

    def __enter__(self) -> ThreadedSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
