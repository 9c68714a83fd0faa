"""The systemd notification protocol (sd_notify), written out so it needs no dependency.

Owns: telling the service manager that relaygate is ready, stopping, still alive (watchdog) and
what it is doing (``STATUS=``). The protocol is one AF_UNIX datagram of newline-separated
``KEY=VALUE`` lines sent to the socket named by ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the
Linux abstract namespace). The watchdog interval comes from ``$WATCHDOG_USEC``, and applies to
this process only if ``$WATCHDOG_PID`` is unset or names it.

Trusts: the environment systemd gave the process. Sends nothing secret; never raises into the
caller (a failed send is logged once as a warning, then at debug level), and is a no-op when
``$NOTIFY_SOCKET`` is unset, so ``relaygate serve`` behaves the same outside systemd.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping

__all__ = ["Notifier", "watchdog_loop"]

log = logging.getLogger(__name__)

_SEND_TIMEOUT_S = 1.0


class Notifier:
    """Sends sd_notify messages to one socket address, or nothing when ``address`` is None.

    ``address`` is the value of ``$NOTIFY_SOCKET``: a filesystem path, or ``@name`` for an
    abstract socket. ``watchdog_usec`` is the watchdog interval granted to this process (already
    checked against ``$WATCHDOG_PID``), or None when no watchdog applies.
    """

    def __init__(self, address: str | None, *, watchdog_usec: int | None = None) -> None:
        self._address = _socket_address(address) if address else None
        self._display = address or ""
        self._watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, pid: int | None = None
    ) -> Notifier:
        """Build a notifier from ``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC`` and ``$WATCHDOG_PID``.

        ``environ`` defaults to ``os.environ`` and ``pid`` to ``os.getpid()`` (injectable for tests).
        Malformed watchdog values disable the watchdog (logged), they never raise.
        """
        env = os.environ if environ is None else environ
        me = os.getpid() if pid is None else pid
        address = env.get("NOTIFY_SOCKET") or None
        watchdog_usec: int | None = None
        raw_usec = env.get("WATCHDOG_USEC")
        if raw_usec:
            raw_pid = env.get("WATCHDOG_PID")
            try:
                usec = int(raw_usec)
                for_us = raw_pid is None or raw_pid == "" or int(raw_pid) == me
            except ValueError:
                log.warning("ignoring malformed WATCHDOG_USEC/WATCHDOG_PID in the environment")
            else:
                if usec > 0 and for_us:
                    watchdog_usec = usec
        return cls(address, watchdog_usec=watchdog_usec)

    @property
    def enabled(self) -> bool:
        """True when a notification socket is configured (running under systemd Type=notify)."""
        return self._address is not None

    def watchdog_interval(self) -> float | None:
        """The watchdog timeout in seconds granted to this process, or None when there is none.

        Ping at half this interval (``watchdog_loop`` does).
        """
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 1_000_000

    def notify(self, *lines: str) -> bool:
        """Send ``KEY=VALUE`` lines as one datagram. True when sent; False when disabled or failed."""
        if self._address is None:
            return False
        if not lines or any("\n" in line or "=" not in line for line in lines):
            log.warning("sd_notify message refused: not KEY=VALUE lines")
            return False
        payload = "\n".join(lines).encode("utf-8")
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.settimeout(_SEND_TIMEOUT_S)
                self._sock = sock
            self._sock.sendto(payload, self._address)
        except OSError as exc:
            level = logging.DEBUG if self._warned else logging.WARNING
            self._warned = True
            log.log(
                level,
                "sd_notify to %s failed: %s",
                self._display,
                exc.strerror or type(exc).__name__,
                extra={"notify_socket": self._display},
            )
            self._drop_socket()
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: start-up finished (listeners bound, store open). Optionally a status line."""
        return self.notify("READY=1", *self._status_lines(status))

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: draining has begun; systemd shows the unit as deactivating."""
        return self.notify("STOPPING=1", *self._status_lines(status))

    def status(self, text: str) -> bool:
        """``STATUS=text``: a one-line free-form status shown by ``systemctl status``."""
        return self.notify(*self._status_lines(text))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the keep-alive ping. Only sent when a watchdog applies to this process."""
        if self._watchdog_usec is None:
            return False
        return self.notify("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> bool:
        """``EXTEND_TIMEOUT_USEC``: ask for more time to start or stop (e.g. a long drain)."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(0, round(seconds * 1_000_000))}")

    def close(self) -> None:
        """Close the socket; later calls reopen it."""
        self._drop_socket()

    @staticmethod
    def _status_lines(text: str | None) -> tuple[str, ...]:
        if text is None:
            return ()
        return ("STATUS=" + " ".join(text.split()),)

    def _drop_socket(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


def _socket_address(value: str) -> str:
    if value.startswith("@"):
        return "\0" + value[1:]
    return value


async def watchdog_loop(
    notifier: Notifier,
    is_healthy: Callable[[], bool | Awaitable[bool]],
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Ping the watchdog at half its interval while ``is_healthy()`` is true; run until cancelled.

    Returns at once when no watchdog applies to this process. ``is_healthy`` may be a coroutine
    function (a check that must not block the event loop). While it is false (or raises) no
    ping is sent, so systemd restarts a wedged process after ``WatchdogSec``; the
    change is reported once through ``STATUS=``.
    """
    interval = notifier.watchdog_interval()
    if interval is None:
        return
    period = interval / 2
    was_healthy = True
    while True:
        try:
            answer = is_healthy()
            healthy = bool(await answer if inspect.isawaitable(answer) else answer)
        except Exception:
            log.exception("watchdog health check raised; treating as unhealthy")
            healthy = False
        if healthy:
            notifier.watchdog()
            if not was_healthy:
                notifier.status("healthy again; watchdog pings resumed")
        elif was_healthy:
            log.warning("health check failed; withholding watchdog pings")
            notifier.status("unhealthy: watchdog pings withheld")
        was_healthy = healthy
        await sleep(period)
