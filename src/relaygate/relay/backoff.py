"""Retry policy (placeholder until the full module lands): age clamped to [min, max] plus jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    min_backoff: float = 300.0
    max_backoff: float = 4000.0
    lifetime: float = 5 * 86400.0
    jitter: float = 0.1

    def next_attempt(self, *, queued_at: float, now: float, rng: random.Random) -> float | None:
        end = queued_at + self.lifetime
        if now >= end:
            return None
        wait = min(max(now - queued_at, self.min_backoff), self.max_backoff)
        wait *= 1 + self.jitter * rng.uniform(-1, 1)
        return min(now + wait, end)
