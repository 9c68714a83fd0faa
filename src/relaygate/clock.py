"""The only reader of the time. Everything else gets a ``Clock`` injected.

Times are UTC, as float seconds since the epoch (``now()``) or aware datetimes (``utcnow()``).
``FakeClock`` lets tests move time by hours without sleeping.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch, UTC."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        return time.time()


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds

    def set(self, when: float) -> None:
        self._now = float(when)


def iso(ts: float) -> str:
    """RFC 3339 UTC timestamp with a Z, second precision (the webhook payload format)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_or_none(ts: float | None) -> str | None:
    """``iso(ts)``, or None for a time that has not happened (never checked, never expires)."""
    return None if ts is None else iso(ts)


def utc_day(ts: float) -> str:
    """The UTC calendar day of ``ts`` as YYYY-MM-DD (quota windows)."""
    return _utc_day(int(ts // 86400))  # POSIX days are 86,400 s; formatted once per day


@functools.lru_cache(maxsize=16)
def _utc_day(days: int) -> str:
    return datetime.fromtimestamp(days * 86400, UTC).strftime("%Y-%m-%d")
