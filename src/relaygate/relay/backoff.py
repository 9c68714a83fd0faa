"""The retry schedule for deferred recipients (pure: no clock, no I/O, randomness injected).

Postfix's rule with the jitter Postfix's own documentation admits it lacks: after a deferral the
wait is the message's *age* (time since it was queued) clamped to ``[min_backoff, max_backoff]``,
then spread by ``±jitter`` (a fraction) so a burst deferred together does not come back together:

    wait = clamp(now - queued_at, min_backoff, max_backoff) * (1 + jitter * U(-1, 1))

The queue lifetime has the last word. ``next_attempt`` returns None (expire) once
``now >= queued_at + lifetime``, and never schedules past that moment: when the computed time
would fall after it, the final attempt is scheduled *exactly at* the end of the lifetime, and a
deferral from that attempt expires the recipient. So every recipient gets a last try at the
deadline instead of expiring up to ``max_backoff`` early.

Bounds: the wait lies in ``[min_backoff * (1 - jitter), max_backoff * (1 + jitter)]``, except
that it is cut short at the end of the lifetime.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Back-off floor and ceiling, queue lifetime (seconds) and jitter (a fraction in [0, 1))."""

    min_backoff: float = 300.0
    max_backoff: float = 4000.0
    lifetime: float = 5 * 86400.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        problems = []
        if not self.min_backoff > 0:
            problems.append("min_backoff must be > 0")
        if not self.max_backoff >= self.min_backoff:
            problems.append("max_backoff must be >= min_backoff")
        if not self.lifetime > 0:
            problems.append("lifetime must be > 0")
        if not 0 <= self.jitter < 1:
            problems.append("jitter must be in [0, 1)")
        if problems:
            raise ValueError("; ".join(problems))

    def expires_at(self, queued_at: float) -> float:
        """The moment after which a recipient queued at ``queued_at`` is expired."""
        return queued_at + self.lifetime

    def is_expired(self, *, queued_at: float, now: float) -> bool:
        return now >= self.expires_at(queued_at)

    def backoff(self, *, queued_at: float, now: float, rng: random.Random) -> float:
        """The wait after a deferral at ``now`` (age clamped, then jittered), ignoring lifetime."""
        age = max(0.0, now - queued_at)
        base = min(max(age, self.min_backoff), self.max_backoff)
        if self.jitter == 0:
            return base
        return base * (1.0 + self.jitter * rng.uniform(-1.0, 1.0))

    def next_attempt(self, *, queued_at: float, now: float, rng: random.Random) -> float | None:
        """When to try again after a deferral at ``now``; None when the recipient has expired."""
        end = self.expires_at(queued_at)
        if now >= end:
            return None
        return min(now + self.backoff(queued_at=queued_at, now=now, rng=rng), end)
