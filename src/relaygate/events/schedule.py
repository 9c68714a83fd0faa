"""When to try a failed webhook delivery again, and when to give up. Pure.

API.md §8 is the contract: "retry after 30 s, 5 min, 30 min, 2 h, 6 h; when the try after the
6 h wait fails too, the webhook delivery is abandoned". So a delivery gets at most
``MAX_ATTEMPTS`` = 6 attempts: the first one plus 5 retries. The reference's sentence "After 5
failed attempts the delivery row is marked abandoned" lists the same five waits; read as "5
failed retries" it agrees, and where it reads otherwise API.md wins (it is our contract).

    attempts_made  1     2      3       4     5     6
    next try in    30 s  5 min  30 min  2 h   6 h   - (abandon)

Jitter is off by default so times are exact; pass ``rng`` (returning floats in [0, 1)) to spread
retries of many deliveries that failed together by up to ``jitter`` of each wait (added, never
subtracted, so no wait is shorter than the contract's).
"""

from __future__ import annotations

from collections.abc import Callable

RETRY_DELAYS: tuple[float, ...] = (30.0, 300.0, 1800.0, 7200.0, 21600.0)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


def next_attempt(
    *,
    attempts_made: int,
    now: float,
    rng: Callable[[], float] | None = None,
    jitter: float = 0.1,
) -> float | None:
    """When to try next, after ``attempts_made`` attempts that all failed; None = abandon.

    ``attempts_made`` counts every attempt so far including the one that just failed (>= 1).
    """
    if isinstance(attempts_made, bool) or attempts_made < 1:
        raise ValueError("attempts_made counts the failed attempt just made, so it is >= 1")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError("jitter is a fraction of the wait, between 0 and 1")
    if attempts_made >= MAX_ATTEMPTS:
        return None
    delay = RETRY_DELAYS[attempts_made - 1]
    if rng is not None:
        r = rng()
        if not 0.0 <= r < 1.0:
            raise ValueError("rng must return a float in [0, 1)")
        delay += delay * jitter * r
    return now + delay


def failing_for(attempts_made: int) -> float:
    """Seconds between a delivery's first failed attempt and its ``attempts_made``-th (the waits
    of the schedule, without jitter): how long its endpoint has been failing it."""
    return sum(RETRY_DELAYS[: max(0, attempts_made - 1)])
