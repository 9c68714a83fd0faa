from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from relaygate.clock import utc_day


def test_utc_day_boundaries() -> None:
    assert utc_day(0) == "1970-01-01"
    assert utc_day(86399.999) == "1970-01-01"
    assert utc_day(86400) == "1970-01-02"
    assert utc_day(-0.5) == "1969-12-31"
    assert utc_day(1_790_035_199.99) == "2026-09-21"
    assert utc_day(1_790_035_200.0) == "2026-09-22"


@given(st.integers(min_value=-2 * 10**15, max_value=4 * 10**15))
def test_utc_day_is_the_utc_calendar_day(micros: int) -> None:
    ts = micros / 1e6  # timestamps to the microsecond, as datetime reads them
    assert utc_day(ts) == datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")
