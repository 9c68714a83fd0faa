"""The retry schedule: age clamped to [min, max], jitter bounded, lifetime respected."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relaygate.relay.backoff import RetryPolicy

T0 = 1_790_000_000.0
NOJ = RetryPolicy(jitter=0.0)


class FixedRandom(random.Random):
    """uniform() always returns the given point of the interval (0 = low end, 1 = high end)."""

    def __init__(self, where: float) -> None:
        super().__init__(0)
        self.where = where

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.where


@pytest.mark.parametrize(
    ("age", "wait"),
    [
        (0, 300),  # first deferral right after queueing: the floor
        (10, 300),
        (299, 300),
        (300, 300),
        (1000, 1000),  # in between: the age itself
        (3999, 3999),
        (4000, 4000),
        (4001, 4000),  # beyond: the ceiling
        (86400, 4000),
    ],
)
def test_age_clamped_without_jitter(age: float, wait: float) -> None:
    now = T0 + age
    assert NOJ.next_attempt(queued_at=T0, now=now, rng=random.Random(1)) == now + wait


def test_defaults_match_the_contract() -> None:
    p = RetryPolicy()
    assert (p.min_backoff, p.max_backoff, p.lifetime, p.jitter) == (300, 4000, 432000, 0.1)


def test_jitter_extremes() -> None:
    p = RetryPolicy(jitter=0.1)
    now = T0 + 1000
    low = p.next_attempt(queued_at=T0, now=now, rng=FixedRandom(0.0))
    high = p.next_attempt(queued_at=T0, now=now, rng=FixedRandom(1.0))
    mid = p.next_attempt(queued_at=T0, now=now, rng=FixedRandom(0.5))
    assert low == pytest.approx(now + 900)
    assert high == pytest.approx(now + 1100)
    assert mid == pytest.approx(now + 1000)


def test_jitter_actually_spreads() -> None:
    p = RetryPolicy()
    rng = random.Random(7)
    times = {p.next_attempt(queued_at=T0, now=T0 + 600, rng=rng) for _ in range(50)}
    assert len(times) > 40


def test_expired_at_and_after_lifetime() -> None:
    p = RetryPolicy(lifetime=86400)
    rng = random.Random(1)
    assert p.next_attempt(queued_at=T0, now=T0 + 86400, rng=rng) is None
    assert p.next_attempt(queued_at=T0, now=T0 + 86400 * 3, rng=rng) is None
    assert p.is_expired(queued_at=T0, now=T0 + 86400)
    assert not p.is_expired(queued_at=T0, now=T0 + 86399.9)


def test_last_attempt_is_at_the_lifetime_end() -> None:
    p = RetryPolicy(lifetime=86400, jitter=0.0)
    now = T0 + 86400 - 100  # a deferral 100 s before the end would normally wait 4000 s
    assert p.next_attempt(queued_at=T0, now=now, rng=random.Random(1)) == T0 + 86400


def test_clock_before_queue_time_uses_the_floor() -> None:
    assert NOJ.next_attempt(queued_at=T0, now=T0 - 50, rng=random.Random(1)) == T0 - 50 + 300


def test_full_schedule_over_five_days() -> None:
    """Simulate always-deferring delivery: waits grow, cap at max, and end at the lifetime."""
    p = RetryPolicy()
    rng = random.Random(3)
    now = T0
    attempts = [now]
    while (nxt := p.next_attempt(queued_at=T0, now=now, rng=rng)) is not None:
        assert nxt > now
        now = nxt
        attempts.append(now)
    assert attempts[-1] == T0 + p.lifetime
    waits = [b - a for a, b in itertools.pairwise(attempts)]
    assert waits[0] == pytest.approx(300, rel=0.1)
    assert max(waits) <= 4000 * 1.1
    # about 5 days / ~4000 s: a little over a hundred attempts, not thousands
    assert 100 < len(attempts) < 140


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_backoff": 0},
        {"min_backoff": 500, "max_backoff": 400},
        {"lifetime": 0},
        {"jitter": 1.0},
        {"jitter": -0.1},
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


policies = st.builds(
    RetryPolicy,
    min_backoff=st.floats(1, 3600),
    max_backoff=st.floats(3600, 86400),
    lifetime=st.floats(60, 30 * 86400),
    jitter=st.floats(0, 0.5),
)


@given(policy=policies, age=st.floats(-1000, 40 * 86400), seed=st.integers(0, 2**32))
def test_property_bounds(policy: RetryPolicy, age: float, seed: int) -> None:
    now = T0 + age
    nxt = policy.next_attempt(queued_at=T0, now=now, rng=random.Random(seed))
    end = T0 + policy.lifetime
    if now >= end:
        assert nxt is None
        return
    assert nxt is not None
    assert now < nxt <= end  # always in the future, never past the lifetime
    wait = nxt - now
    assert wait <= policy.max_backoff * (1 + policy.jitter) + 1e-6  # ceiling
    if nxt < end:  # not cut short by the lifetime
        assert wait >= policy.min_backoff * (1 - policy.jitter) - 1e-6  # floor


@given(
    policy=policies,
    a=st.floats(0, 20 * 86400),
    b=st.floats(0, 20 * 86400),
)
def test_property_unjittered_wait_is_monotone_in_age(
    policy: RetryPolicy, a: float, b: float
) -> None:
    flat = RetryPolicy(
        min_backoff=policy.min_backoff, max_backoff=policy.max_backoff, lifetime=1e9, jitter=0
    )
    lo, hi = sorted((a, b))
    rng = random.Random(0)
    w_lo = flat.backoff(queued_at=T0, now=T0 + lo, rng=rng)
    w_hi = flat.backoff(queued_at=T0, now=T0 + hi, rng=rng)
    assert flat.min_backoff <= w_lo <= w_hi <= flat.max_backoff


@given(policy=policies, age=st.floats(0, 20 * 86400), seed=st.integers(0, 2**32))
def test_property_jitter_is_bounded_around_the_clamped_age(
    policy: RetryPolicy, age: float, seed: int
) -> None:
    base = min(max(age, policy.min_backoff), policy.max_backoff)
    wait = policy.backoff(queued_at=T0, now=T0 + age, rng=random.Random(seed))
    assert abs(wait - base) <= base * policy.jitter + 1e-6
