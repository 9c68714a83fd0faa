"""The failed-authentication throttle: a sliding window per client, on the injected clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relaygate.clock import FakeClock
from relaygate.gateway.authlimit import AuthLimits, FailedAuthThrottle, client_of


def test_the_failure_after_the_limit_is_throttled_until_the_window_has_passed() -> None:
    clock = FakeClock()
    throttle = FailedAuthThrottle(clock, AuthLimits(failures=3, window=60))
    assert [throttle.failed("192.0.2.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert throttle.retry_after("192.0.2.1") == 60.0
    clock.advance(10)
    assert throttle.failed("192.0.2.1") == 50.0  # the 3 failures before it, at t=0, leave at 60
    assert throttle.retry_after("192.0.2.2") == 0.0  # another client is not affected
    clock.advance(50)
    # Within the last 60 s: the one at t=10 only.
    assert throttle.retry_after("192.0.2.1") == 0.0
    assert throttle.failed("192.0.2.1") == 0.0


def test_ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() -> None:
    assert client_of("2001:db8:1:2::1") == client_of("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_of("2001:db8:1:3::1") != client_of("2001:db8:1:2::1")
    assert client_of("::ffff:192.0.2.7") == client_of("192.0.2.7") == "192.0.2.7"
    assert client_of("fe80::1%eth0") == "fe80::/64"
    assert client_of("not an address") == "not an address"
    throttle = FailedAuthThrottle(FakeClock(), AuthLimits(failures=2, window=60))
    throttle.failed("2001:db8::1")
    throttle.failed("2001:db8::2")
    assert throttle.failed("2001:db8::3") > 0


def test_memory_is_bounded_and_the_least_recently_failed_client_goes_first() -> None:
    clock = FakeClock()
    throttle = FailedAuthThrottle(clock, AuthLimits(failures=2, window=60, max_clients=3))
    for ip in ("192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.3"):
        throttle.failed(ip)
    throttle.failed("192.0.2.2")  # order of last failure: .1, .3, .2
    throttle.failed("192.0.2.4")  # a fourth client: .1 is forgotten
    assert throttle.retry_after("192.0.2.1") == 0.0
    assert throttle.retry_after("192.0.2.2") == 60.0
    assert len(throttle._failures) == 3


@given(
    st.lists(
        st.tuples(st.sampled_from(["192.0.2.1", "192.0.2.2"]), st.floats(0, 100)), max_size=40
    ),
    st.integers(1, 5),
    st.floats(1, 200),
)
def test_matches_counting_every_failure_in_the_window(
    steps: list[tuple[str, float]], limit: int, window: float
) -> None:
    """A failure is throttled exactly when ``limit`` earlier failures of its client lie within
    the ``window`` seconds before it (a model that keeps every timestamp)."""
    clock = FakeClock()
    throttle = FailedAuthThrottle(clock, AuthLimits(failures=limit, window=window))
    history: dict[str, list[float]] = {}
    for ip, wait in steps:
        clock.advance(wait)
        now = clock.now()
        earlier = history.setdefault(ip, [])
        recent = [t for t in earlier if t > now - window]
        expected = len(recent) >= limit
        assert (throttle.failed(ip) > 0) == expected
        earlier.append(now)
