"""The fake clock for tests (re-exported from relaygate.clock, the only reader of time)."""

from __future__ import annotations

from relaygate.clock import FakeClock

__all__ = ["FakeClock"]
