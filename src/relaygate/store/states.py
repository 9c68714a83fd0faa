"""Per-recipient states and the one table of allowed transitions (ARCHITECTURE.md).

A message's state is derived from its recipients' states; it is never stored.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    QUEUED = "queued"
    ACTIVE = "active"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    SUPPRESSED = "suppressed"
    EXPIRED = "expired"
    HELD = "held"


#: (from, to) pairs that a guarded update may perform.
ALLOWED: frozenset[tuple[State, State]] = frozenset(
    {
        (State.QUEUED, State.ACTIVE),
        (State.DEFERRED, State.ACTIVE),
        (State.ACTIVE, State.QUEUED),  # lease released or expired
        (State.ACTIVE, State.DELIVERED),
        (State.ACTIVE, State.DEFERRED),
        (State.ACTIVE, State.BOUNCED),
        (State.ACTIVE, State.EXPIRED),
        (State.ACTIVE, State.HELD),  # too many lease losses
        (State.DEFERRED, State.EXPIRED),
        (State.QUEUED, State.HELD),
        (State.DEFERRED, State.HELD),
        (State.HELD, State.QUEUED),
        (State.DELIVERED, State.BOUNCED),  # late DSN
        (State.DELIVERED, State.COMPLAINED),
        (State.QUEUED, State.BOUNCED),  # operator delete / suppressed after admission
        (State.DEFERRED, State.BOUNCED),
        (State.HELD, State.BOUNCED),
    }
)

#: States from which nothing more will be attempted.
FINAL = (State.DELIVERED, State.BOUNCED, State.COMPLAINED, State.SUPPRESSED, State.EXPIRED)


def allowed(src: State, dst: State) -> bool:
    return (src, dst) in ALLOWED


def message_state(states: list[str]) -> str:
    """Summarise recipient states into the message's state (most pending first)."""
    for candidate in ("active", "queued", "deferred", "held"):
        if candidate in states:
            return "queued" if candidate == "active" else candidate
    if not states:
        return "queued"
    if all(s == states[0] for s in states):
        return states[0]
    if "delivered" in states:
        return "delivered"
    return states[0]
