"""Connection slots: caps per listener and per client, exemptions, one log line a minute."""

from __future__ import annotations

import logging

import pytest

from relaygate.clock import FakeClock
from relaygate.gateway.connlimit import ConnectionSlots, Listener


def test_caps_exemptions_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    slots = ConnectionSlots(per_client=2, exempt=lambda ip: ip == "10.0.0.1", clock=clock)
    a, b = Listener(limit=4, name="a"), Listener(limit=1, name="b")
    with caplog.at_level(logging.INFO, logger="relaygate.smtp"):
        assert [slots.take(a, "192.0.2.1") for _ in range(3)] == [None, None, "client"]
        assert slots.take(b, "192.0.2.1") == "client"  # per client across listeners
        assert [slots.take(a, "10.0.0.1") for _ in range(3)] == [None, None, "listener"]
        assert slots.take(b, "192.0.2.2") is None
        assert slots.take(b, "192.0.2.3") == "listener"
        clock.advance(60)
        assert slots.take(b, "192.0.2.3") == "listener"
    # The first refusal and the first a minute later are logged, with the count in between.
    assert [(r.levelname, r.cap, r.refused) for r in caplog.records] == [  # type: ignore[attr-defined]
        ("INFO", "client", 1),
        ("WARNING", "listener", 4),
    ]
    assert (a.open, b.open, slots.clients) == (
        4,
        1,
        {"192.0.2.1": 2, "10.0.0.1": 2, "192.0.2.2": 1},
    )
    slots.give_back(a, "192.0.2.1")
    slots.give_back(a, "192.0.2.1")
    assert (a.open, "192.0.2.1" in slots.clients) == (2, False)
    assert slots.take(a, "192.0.2.1") is None
