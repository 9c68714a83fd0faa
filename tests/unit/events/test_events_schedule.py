from __future__ import annotations

import pytest

from relaygate.events.schedule import MAX_ATTEMPTS, RETRY_DELAYS, next_attempt

NOW = 1_790_000_000.0


def test_contract_waits_then_abandon_after_six_attempts() -> None:
    waits = []
    attempts = 1
    while (due := next_attempt(attempts_made=attempts, now=NOW)) is not None:
        waits.append(due - NOW)
        attempts += 1
    assert waits == [30, 300, 1800, 7200, 21600]
    assert attempts == MAX_ATTEMPTS == 6
    assert next_attempt(attempts_made=7, now=NOW) is None


def test_jitter_only_lengthens_and_is_bounded() -> None:
    assert next_attempt(attempts_made=1, now=NOW, rng=lambda: 0.0) == NOW + 30
    assert next_attempt(attempts_made=2, now=NOW, rng=lambda: 0.5, jitter=0.1) == NOW + 300 + 15
    high = next_attempt(attempts_made=5, now=NOW, rng=lambda: 0.999999, jitter=0.2)
    assert high is not None and NOW + RETRY_DELAYS[4] < high < NOW + RETRY_DELAYS[4] * 1.2


@pytest.mark.parametrize("bad", [0, -1, True])
def test_attempts_made_must_count_the_failure(bad: int) -> None:
    with pytest.raises(ValueError):
        next_attempt(attempts_made=bad, now=NOW)


def test_bad_rng_or_jitter_rejected() -> None:
    with pytest.raises(ValueError):
        next_attempt(attempts_made=1, now=NOW, rng=lambda: 1.0)
    with pytest.raises(ValueError):
        next_attempt(attempts_made=1, now=NOW, jitter=2.0)
