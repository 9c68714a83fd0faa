"""Values the store hands in and out (frozen, keyword-only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Account:
    id: int
    name: str
    plan: str
    daily_quota: int
    rate_limit: int
    track_opens: bool = False
    track_clicks: bool = False
    created_at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class ApiKey:
    id: str
    account_id: int
    name: str
    scopes: tuple[str, ...]
    hint: str
    created_at: float
    revoked_at: float | None = None


@dataclass(frozen=True, kw_only=True)
class Identity:
    id: int
    account_id: int
    kind: str
    value: str
    status: str
    token: str
    created_at: float
    verified_at: float | None = None


@dataclass(frozen=True, kw_only=True)
class NewRecipient:
    address: str
    kind: str  # to | cc | bcc
    suppressed: str | None = None  # reason, when on the suppression list at admission


@dataclass(frozen=True, kw_only=True)
class NewMessage:
    id: str
    account_id: int
    channel: str  # http | smtp
    from_addr: str
    sender_domain: str
    subject: str
    header_message_id: str
    tags: tuple[str, ...]
    body: bytes
    recipients: tuple[NewRecipient, ...]
    idempotency: tuple[str, str] | None = None  # (Idempotency-Key, hash of the request body)
    #: Per-recipient bodies (open/click tracking), in the order of ``recipients``; empty when shared.
    recipient_bodies: tuple[bytes, ...] = ()
    #: Look the recipients up on the suppression list inside the admission transaction (their
    #: ``suppressed`` is then replaced): no read of its own on the caller's thread, and the list
    #: as committed at that moment. Callers that need the answer earlier (tracked bodies) look
    #: it up themselves and say False. No default: a caller must decide.
    check_suppressions: bool


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What the admission transaction saw of the account's limits (for X-RateLimit-* headers)."""

    rate_limit: int
    rate_remaining: int
    rate_reset: int
    quota: int
    quota_remaining: int


@dataclass(frozen=True, kw_only=True)
class Claimed:
    """A recipient leased to one delivery worker."""

    id: int
    message_id: str
    account_id: int
    address: str
    domain: str
    attempts: int
    queued_at: float
    sender_domain: str
    ordinal: int = 0
    tracked: bool = False  # the message has one body per recipient


@dataclass(frozen=True, kw_only=True, repr=False)
class PreparedBody:
    """A message body in its final form (signed, or final unsigned), to be stored with the
    outcome of the first attempt that sent it; ``ordinal`` names a per-recipient variant."""

    message_id: str
    ordinal: int | None
    data: bytes


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """The result of one delivery attempt for one recipient."""

    recipient_id: int
    state: str  # delivered | deferred | bounced | expired
    response: str
    next_attempt_at: float | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Event:
    id: int
    account_id: int
    message_id: str | None
    recipient_id: int | None
    type: str
    state_from: str | None
    state_to: str | None
    created_at: float
    data: dict[str, Any]
