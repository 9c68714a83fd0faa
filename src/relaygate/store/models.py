"""Every value the store hands in and out (frozen, keyword-only), for every backend.

Grouped as the interface is (``relaygate.store.api``): accounts and keys, identities and DKIM
keys, templates, suppressions, admission, the queue, messages, webhooks, inbound reports,
tracking, status. Times are POSIX seconds (UTC); the JSON outputs format them (API.md §14).
Nothing here knows a database: a backend turns its rows into these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from relaygate.policy import Limits
from relaygate.store.states import DeliveryState, DomainStatus, KeyState

__all__ = [
    "Account",
    "Algorithm",
    "ApiKey",
    "Applied",
    "Attempt",
    "AttemptResult",
    "AuditEntry",
    "CheckResult",
    "Claimed",
    "ClaimedDelivery",
    "Delivery",
    "DeliveryState",
    "DomainIdentity",
    "DomainQueue",
    "Event",
    "FailingWebhook",
    "HitFlags",
    "Identity",
    "InboundMessage",
    "InboundReport",
    "Limits",
    "MessageView",
    "NewMessage",
    "NewRecipient",
    "Outcome",
    "PreparedBody",
    "QueueEntry",
    "Recipient",
    "ReportChange",
    "StoredKey",
    "Suppression",
    "Template",
    "TemplateInfo",
    "TrackingHit",
    "UnverifiedDomain",
    "UsageDay",
    "User",
    "UserSession",
    "Webhook",
]

Algorithm = Literal["rsa", "ed25519"]


# -- accounts and keys ----------------------------------------------------------------------------
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
class AuditEntry:
    """One management action as the audit log keeps it (``Audit``).

    ``actor`` is who acted: ``key:<id>``, ``user:<id>`` or ``cli``; ``action`` a dotted verb
    (``key.create``); ``target`` the object it acted on (``key_…``, a domain, ``wh_…``);
    ``address`` the client's address (empty from the command line); ``detail`` what else is
    worth knowing (never a secret)."""

    id: int
    account_id: int
    actor: str
    action: str
    target: str
    address: str
    created_at: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class UsageDay:
    """One account's UTC day, counted in recipients (``Usage.days`` says what counts)."""

    day: str
    """YYYY-MM-DD (UTC)."""
    accepted: int = 0
    delivered: int = 0
    deferred: int = 0
    bounced: int = 0
    complained: int = 0
    suppressed: int = 0
    opened: int = 0
    clicked: int = 0


# -- dashboard users and their sessions ------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class User:
    """A person who signs in to the dashboard: an operator (every account) or one account's user.
    ``password_hash`` is an argon2id hash; ``totp_secret`` (base32, empty: no second factor) is a
    secret: neither is in the repr."""

    id: int
    email: str
    account_id: int | None
    operator: bool
    created_at: float
    password_hash: str = field(default="", repr=False)
    totp_secret: str = field(default="", repr=False)
    disabled_at: float | None = None
    last_sign_in_at: float | None = None
    password_changed_at: float | None = None


@dataclass(frozen=True, kw_only=True)
class UserSession:
    """A server-side dashboard session. ``id`` is the hash of the cookie's token (the token
    itself is never stored); ``stage`` is ``signed_in`` or ``second_factor`` (password given,
    TOTP code awaited); ``account_id`` is the account an operator is looking at."""

    id: str
    user_id: int
    created_at: float
    seen_at: float
    csrf: str = field(repr=False)
    stage: str = "signed_in"
    account_id: int | None = None


# -- identities and DKIM keys ---------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Identity:
    id: int
    account_id: int
    kind: str  # domain | address
    value: str
    status: str
    token: str
    created_at: float
    verified_at: float | None = None


@dataclass(frozen=True, kw_only=True)
class DomainIdentity:
    """An identity with its DNS check state."""

    identity: Identity
    status_reason: str = ""
    failing_since: float | None = None
    last_checked_at: float | None = None
    last_check: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> DomainStatus:
        return DomainStatus(self.identity.status)


DEFAULT_GRACE = 7 * 86400.0
"""How long a replaced DKIM key stays published (signatures made with it still verify)."""


@dataclass(frozen=True, kw_only=True)
class StoredKey:
    """A DKIM key row: public material, where the private key file is, and its lifecycle.

    ``published`` is what the last DNS check saw: None never checked, True found, False missing
    or different."""

    id: int
    domain: str
    selector: str
    algorithm: Algorithm
    private_path: Path
    public_key: str
    state: KeyState
    created_at: float
    activated_at: float | None = None
    retire_after: float | None = None
    grace: float = DEFAULT_GRACE
    published: bool | None = None
    checked_at: float | None = None


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """What one DNS check decided, applied atomically by ``Identities.apply_check``.

    ``published``: key id → whether its record was found (keys absent were not looked at).
    ``activate``: pending key ids to make active; any active key of the same algorithm becomes
    ``retiring`` with ``retire_after = now + the new key's grace``. ``retire``: retiring key ids
    whose grace has passed. ``statuses``: identity id → (new status, reason). ``missing``: the
    identity ids whose required records this check did not find (their ``failing_since`` is set
    if it was not; the others' is cleared).
    """

    domain: str
    now: float
    published: dict[int, bool] = field(default_factory=dict)
    activate: tuple[int, ...] = ()
    retire: tuple[int, ...] = ()
    statuses: dict[int, tuple[DomainStatus, str]] = field(default_factory=dict)
    missing: frozenset[int] = frozenset()
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Applied:
    """What ``apply_check`` changed: status moves (identity id → (from, to)) and key moves."""

    moved: dict[int, tuple[str, str]] = field(default_factory=dict)
    activated: tuple[StoredKey, ...] = ()
    retiring: tuple[StoredKey, ...] = ()
    retired: tuple[StoredKey, ...] = ()


# -- templates and suppressions -------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Template:
    """A template's three sources (Jinja2). ``text`` may be empty (derived from ``html``)."""

    slug: str
    subject: str
    html: str
    text: str


@dataclass(frozen=True, kw_only=True)
class TemplateInfo:
    """An account template as listed (without its sources)."""

    slug: str
    source: str  # created | cloned
    created_at: float
    updated_at: float


@dataclass(frozen=True, kw_only=True)
class Suppression:
    account_id: int
    address: str
    reason: str
    bounce_type: str
    source: str
    event_id: int | None
    created_at: float
    expires_at: float | None = None


# -- admission ------------------------------------------------------------------------------------
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


# -- the queue ------------------------------------------------------------------------------------
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
    outcome of the first attempt that sent it; ``ordinal`` names a per-recipient variant.

    ``prefix``, when not None, says that ``data`` is ``prefix`` (the DKIM-Signature fields; empty
    for a body sent unchanged) followed byte for byte by the body the store holds: a store may
    keep just the prefix instead of writing ``data`` again (it is the whole message, 100 KB
    and more). A store that writes ``data`` whole is correct too."""

    message_id: str
    ordinal: int | None
    data: bytes
    prefix: bytes | None = None


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """The result of one delivery attempt for one recipient.

    ``suppress``: put the address on the account's suppression list with this reason, in the
    same transaction (the caller decides: ``bounces.suppressions``)."""

    recipient_id: int
    state: str  # delivered | deferred | bounced | expired
    response: str
    next_attempt_at: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    suppress: str | None = None


@dataclass(frozen=True, kw_only=True)
class QueueEntry:
    """A pending recipient as the operator's queue listing shows it."""

    id: int
    message_id: str
    address: str
    domain: str
    state: str
    attempts: int
    queued_at: float
    next_attempt_at: float
    last_response: str
    from_addr: str


# -- messages (the read side) ---------------------------------------------------------------------
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


@dataclass(frozen=True, kw_only=True)
class Recipient:
    """One recipient of a stored message, as it is now."""

    id: int
    message_id: str
    account_id: int
    address: str
    domain: str
    kind: str
    state: str
    attempts: int
    queued_at: float
    next_attempt_at: float
    last_response: str
    lease_owner: str | None
    lease_expires_at: float | None
    lease_losses: int
    updated_at: float
    ordinal: int


@dataclass(frozen=True, kw_only=True)
class MessageView:
    """A message as listed: its header fields and its recipients' states (in recipient order)."""

    id: str
    from_addr: str
    subject: str
    tags: tuple[str, ...]
    created_at: float
    states: tuple[str, ...]


# -- webhooks -------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Webhook:
    """A registered endpoint (never its secret)."""

    id: str
    account_id: int
    url: str
    events: tuple[str, ...]
    """Event types it receives; empty means all of them."""
    created_at: float
    removed_at: float | None = None
    previous_secret_expires_at: float | None = None


@dataclass(frozen=True, kw_only=True)
class Delivery:
    id: int
    webhook_id: str
    event_id: int
    account_id: int
    message_id: str | None
    event_type: str
    state: str
    attempts: int
    next_attempt_at: float
    last_status: int | None
    last_error: str
    replays: int
    created_at: float
    updated_at: float


@dataclass(frozen=True, kw_only=True)
class Attempt:
    delivery_id: int
    attempt: int
    at: float
    status: int | None
    outcome: str
    error: str
    duration_ms: int
    id: int = 0
    response: str = ""
    """The first 512 bytes of the endpoint's response body, as text."""
    next_attempt_at: float | None = None
    """When this failed attempt's delivery is tried again (None: succeeded or abandoned)."""


@dataclass(frozen=True, kw_only=True)
class ClaimedDelivery:
    """A leased delivery with everything needed to build, sign and send it."""

    id: int
    webhook_id: str
    url: str
    secrets: tuple[str, ...] = field(repr=False)
    """Current secret first, then the previous one while its grace period lasts."""
    attempts: int
    """Attempts already made in this round of the schedule (0 on the first try)."""
    event_id: int
    event_type: str
    event_created_at: float
    event_data: dict[str, Any]
    account_id: int
    message_id: str | None
    header_message_id: str
    tags: tuple[str, ...]
    recipients: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class AttemptResult:
    """What one attempt did and what happens next (computed by the dispatcher)."""

    delivery_id: int
    ok: bool
    status: int | None
    outcome: str
    error: str
    duration_ms: int
    next_attempt_at: float | None
    """When to try again after a failure; None abandons the delivery. Ignored when ``ok``."""
    response: str = ""
    """The first 512 bytes of the response body, as text (kept in the attempt log)."""


# -- inbound reports ------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class InboundMessage:
    id: str
    received_at: float
    mail_from: str
    rcpts: tuple[str, ...]
    peer: str
    data: bytes
    processed: bool


@dataclass(frozen=True, kw_only=True)
class ReportChange:
    """What one parsed report changes for the recipient its verified VERP token binds
    (``bounces.changes`` decides it; a report makes at most one).

    The store moves that recipient ``delivered → to_state`` when it is delivered, otherwise
    records ``event_type`` without a state change, and puts its address on the suppression
    list when ``suppress`` is ``(reason, bounce_type)``."""

    event_type: str  # bounce | complaint
    to_state: str  # bounced | complained
    data: dict[str, Any] = field(default_factory=dict)
    suppress: tuple[str, str] | None = None


@dataclass(frozen=True, kw_only=True)
class InboundReport:
    """One received report as the operator sees it (without its bytes): what became of it
    (``status``: pending, applied, ignored, unmatched, failed; ``reason`` why unmatched), the
    account it counts for (only where a verified token named the message) and whether
    retention has dropped its bytes."""

    id: str
    received_at: float
    peer: str
    mail_from: str
    rcpts: tuple[str, ...]
    size: int
    status: str
    reason: str
    kind: str
    account_id: int | None
    message_id: str | None
    recipient_id: int | None
    processed_at: float | None
    purged: bool


# -- tracking -------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class TrackingHit:
    """One verified open or click, as the endpoint saw it. ``at`` is the clock's ``now()``."""

    kind: Literal["o", "c"]
    account_id: int
    message_id: str
    recipient_id: int
    url: str | None
    ip: str
    user_agent: str
    method: str
    at: float

    @property
    def event_type(self) -> Literal["open", "click"]:
        return "open" if self.kind == "o" else "click"


@dataclass(frozen=True, kw_only=True)
class HitFlags:
    """What the tracking classifier says of one hit (``events.bots``); ``first``: the
    recipient's first human hit of that kind."""

    is_proxy: bool
    is_scanner: bool
    first: bool = False

    @property
    def is_human(self) -> bool:
        return not (self.is_proxy or self.is_scanner)


# -- status ---------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class DomainQueue:
    """Pending recipients for one destination domain, by state, with the oldest one's age."""

    domain: str
    total: int
    by_state: dict[str, int]
    oldest_queued_at: float


@dataclass(frozen=True, kw_only=True)
class FailingWebhook:
    """An endpoint whose recent attempts failed or that has abandoned deliveries."""

    id: str
    account_id: int
    url: str
    failed_attempts: int
    ok_attempts: int
    abandoned: int
    pending: int
    last_failure_at: float | None
    last_error: str
    last_success_at: float | None


@dataclass(frozen=True, kw_only=True)
class UnverifiedDomain:
    """A domain identity that is not verified (failed, at_risk, asserted with records missing,
    pending); ``failing_since``: since when its required records are missing."""

    account_id: int
    domain: str
    status: str
    reason: str
    failing_since: float | None
    last_checked_at: float | None


# -- metrics --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class TotalsCursor:
    """Where a ``Status.totals`` read stopped: the last event, message and webhook attempt read."""

    event_id: int = 0
    message_row: int = 0
    attempt_id: int = 0


@dataclass(frozen=True, kw_only=True)
class Totals:
    """What the store recorded after a cursor: counts that only grow (the reader adds them up).

    ``bounced`` is keyed by (bounce type, reason) as recorded; ``latency`` counts delivered
    recipients per latency bucket (the last one past the largest bound), ``latency_sum`` their
    latencies in seconds; webhook attempts and failures are by event type.
    """

    cursor: TotalsCursor
    messages_accepted: dict[str, int]
    recipients_accepted: dict[str, int]
    delivered: int
    deferred: int
    bounced: dict[tuple[str, str], int]
    expired: int
    complained: int
    latency: tuple[int, ...]
    latency_sum: float
    webhook_attempts: dict[str, int]
    webhook_failures: dict[str, int]


@dataclass(frozen=True, kw_only=True)
class Backlog:
    """Work waiting now: recipients in each pending state, the oldest one's acceptance time, and
    webhook deliveries by state (``pending``, ``active``, ``abandoned``)."""

    recipients: dict[str, int]
    oldest_queued_at: float | None
    webhook_deliveries: dict[str, int]
