"""The state tables: recipients (with the one table of allowed transitions, ARCHITECTURE.md),
sending domains, DKIM keys and webhook deliveries. Every backend enforces these.

A message's state is derived from its recipients' states; it is never stored.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    CANCELLED = "cancelled"  # API.md §14: terminal; an event records it


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
        (State.QUEUED, State.CANCELLED),  # API.md §14: not yet delivered, not in flight
        (State.DEFERRED, State.CANCELLED),
        (State.HELD, State.CANCELLED),
    }
)

#: States from which nothing more will be attempted.
FINAL = (
    State.DELIVERED,
    State.BOUNCED,
    State.COMPLAINED,
    State.SUPPRESSED,
    State.EXPIRED,
    State.CANCELLED,
)

#: States a recipient waits in for its next attempt, and the ones not yet final.
WAITING = (State.QUEUED, State.DEFERRED)
PENDING = (State.QUEUED, State.ACTIVE, State.DEFERRED, State.HELD)
PENDING_STATES: tuple[str, ...] = tuple(s.value for s in PENDING)

#: Outcome names ``relaygate status`` counts over a window.
OUTCOMES = ("accepted", "delivered", "deferred", "bounced", "expired", "suppressed", "complained")


def allowed(src: State, dst: State) -> bool:
    return (src, dst) in ALLOWED


def message_state(states: Sequence[str]) -> str:
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


class DomainStatus(StrEnum):
    """A sending domain's verification state (API.md §5, §14).

    ``pending`` (added, records not yet seen) → ``verified`` (seen) → ``at_risk`` (a re-check
    misses them: still sends) → ``failed`` (missing for ``[domains] failure_grace``: refuses mail)
    → ``verified`` again when they return. ``asserted``: added by the operator with
    ``--verified``; sends, and the re-check only reports what it finds. Schema 10 turned
    yesterday's ``failing`` rows into ``at_risk``."""

    PENDING = "pending"
    VERIFIED = "verified"
    AT_RISK = "at_risk"
    FAILED = "failed"
    ASSERTED = "asserted"


#: The statuses in which an account holds a domain: one account at most, the first to verify
#: it (a pending claim holds nothing, so it never blocks another account; API.md §11).
DOMAIN_HELD: tuple[str, ...] = ("verified", "at_risk", "asserted")

#: The event type a domain's move into a status writes.
EVENT_FOR_DOMAIN_STATUS = {
    DomainStatus.VERIFIED: "domain_verified",
    DomainStatus.PENDING: "domain_pending",
    DomainStatus.AT_RISK: "domain_at_risk",
    DomainStatus.FAILED: "domain_failed",
    DomainStatus.ASSERTED: "domain_asserted",
}


class KeyState(StrEnum):
    """A DKIM key: ``pending`` (made, not yet seen in DNS) → ``active`` (signing) →
    ``retiring`` (replaced; still published for a grace period) → ``retired`` (its record may
    be removed from DNS)."""

    PENDING = "pending"
    ACTIVE = "active"
    RETIRING = "retiring"
    RETIRED = "retired"


class DeliveryState(StrEnum):
    """A webhook delivery: pending → active (leased) → succeeded | pending (retry) | abandoned."""

    PENDING = "pending"
    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    ABANDONED = "abandoned"


#: The event types a webhook can receive (API.md §8, §14). ``domain`` (a sending domain's moves,
#: not about a message) goes only to endpoints that name it; an endpoint registered without a
#: list gets the message events.
WEBHOOK_EVENT_TYPES: tuple[str, ...] = (
    "delivery",
    "bounce",
    "open",
    "click",
    "complaint",
    "domain",
)
#: The stored event types that are delivered as ``domain`` events.
DOMAIN_EVENT_TYPES: tuple[str, ...] = tuple(sorted(set(EVENT_FOR_DOMAIN_STATUS.values())))
