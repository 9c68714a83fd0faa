"""The store interface: what every backend implements (SQLite today, PostgreSQL next).

A ``Store`` is a handful of lifecycle methods plus one object per concern — ``store.accounts``,
``store.keys``, ``store.identities``, ``store.dkim_keys``, ``store.templates``,
``store.suppressions``, ``store.admission``, ``store.usage``, ``store.queue``, ``store.messages``,
``store.webhooks``, ``store.inbound``, ``store.tracking``, ``store.status``, ``store.audit``,
``store.users``, ``store.sessions`` — each a ``Protocol``
below, with the value types of ``relaygate.store.models`` in and out and the state tables of
``relaygate.store.states``. Nothing outside a backend sees a connection, a cursor, SQL or a
database exception: a backend raises ``StoreUnavailable`` (retry later: 503 / 451) for what its
database cannot do right now, ``RequestError`` for what the caller asked wrongly, and
``IllegalTransition`` for a state change the tables do not allow.

Guarantees every backend keeps (the contract suite, ``tests/contract/``, checks them):

* An ``async`` write returns only after its transaction is durably committed. Admission,
  claims, outcomes, webhook fan-out / claims / attempts, inbound reports and tracking hits are
  ``async`` (the hot paths: a backend may group many callers' work into one commit); the
  operator's and the command line's writes are synchronous (call them off the event loop).
* Every recipient state change is a compare-and-set on the state (``states.ALLOWED``) that
  writes its event row in the same transaction; the events table is the webhook outbox.
* Leases carry an owner and an expiry judged by the store's clock (SQLite: the injected clock
  of the process that writes; PostgreSQL: ``now()``); an expired lease goes back to the queue
  at the next claim; ``renew`` extends leases still held by their owner.
* Daily quota and rate limit are decided inside the admission transaction (by
  ``relaygate.policy``), so they hold across processes and nodes; a refused admission counts
  nothing.
* A policy change (key revoked, plan, identity, template) counts from the next request, in
  every process sharing the store.

Adding a concern: a ``Protocol`` here, its values in ``models``, an attribute on ``Store``, one
module per backend, and its tests in the contract suite.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from relaygate.clock import Clock
from relaygate.policy import Limits
from relaygate.store.models import (
    Account,
    Algorithm,
    ApiKey,
    Applied,
    Attempt,
    AttemptResult,
    AuditEntry,
    Backlog,
    CheckResult,
    Claimed,
    ClaimedDelivery,
    Delivery,
    DomainIdentity,
    DomainQueue,
    Event,
    FailingWebhook,
    HitFlags,
    Identity,
    InboundMessage,
    InboundReport,
    MessageView,
    NewMessage,
    Outcome,
    PreparedBody,
    QueueEntry,
    Recipient,
    ReportChange,
    StoredKey,
    Suppression,
    Template,
    TemplateInfo,
    Totals,
    TotalsCursor,
    TrackingHit,
    UnverifiedDomain,
    UsageDay,
    User,
    UserSession,
    Webhook,
)
from relaygate.store.states import DomainStatus, KeyState, State

#: Events one webhook fan-out step reads at most.
FAN_OUT_BATCH = 1000

#: The classifier tracking passes to ``Tracking.record_hits`` (``events.bots``): a hit, the
#: seconds since its recipient's delivery (None: not delivered) and how many earlier hits of
#: that kind by that recipient were human → its flags.
HitClassifier = Callable[[TrackingHit, float | None, int], HitFlags]


class Accounts(Protocol):
    def create(
        self, name: str, *, plan: str = "trial", daily_quota: int = 10_000, rate_limit: int = 100
    ) -> Account:
        """A new account; names are unique (exact match): 409 when another account has it."""
        ...

    def get(self, account_id: int) -> Account | None:
        """Cached for the policy (see the module docstring): cheap on the hot path."""
        ...

    def all(self) -> list[Account]: ...
    def update(self, account_id: int, **fields: Any) -> Account:
        """Change ``name``, ``plan``, ``daily_quota``, ``rate_limit``, ``track_opens``,
        ``track_clicks``; 400 for another field or a bad value, 404 for no such account, 409
        for a name another account has."""
        ...


class Keys(Protocol):
    def create(
        self, account_id: int, *, scopes: Iterable[str] = ("email:send",), name: str = ""
    ) -> tuple[ApiKey, str]:
        """A new key and its secret (shown once; only its hash is kept)."""
        ...

    def get(self, key_id: str) -> ApiKey | None: ...
    def all(self, account_id: int | None = None) -> list[ApiKey]: ...
    def revoke(self, key_id: str) -> bool: ...
    def authenticate(self, secret: str) -> tuple[ApiKey, Account] | None:
        """The live key and its account for ``secret`` (constant-time compare), or None."""
        ...


class Identities(Protocol):
    """Sender identities (addresses and domains) and the domains' DNS check state."""

    def add(self, account_id: int, value: str, *, verified: bool = False) -> Identity: ...
    def all(self, account_id: int | None = None) -> list[Identity]: ...
    def set_status(self, identity_id: int, status: str) -> None:
        """The operator's unguarded status change."""
        ...

    def remove(self, identity_id: int) -> bool:
        """Delete an identity (its account no longer sends from it, from the next request on);
        False when there was none. A domain's DKIM keys stay (they belong to the domain)."""
        ...

    def sender_allowed(self, account_id: int, address: str) -> bool:
        """``address`` is a verified identity of the account (exact, or at a verified domain)."""
        ...

    def details(self, account_id: int | None = None) -> list[DomainIdentity]:
        """Every identity (domains and addresses) with its check state, by id."""
        ...

    def domains(self, domain: str | None = None) -> list[DomainIdentity]:
        """Domain identities (of ``domain``, or all), oldest first."""
        ...

    def move(
        self, identity_id: int, *, src: DomainStatus, dst: DomainStatus, reason: str, now: float
    ) -> bool:
        """Guarded move ``src → dst`` with its event; False if it was not in ``src``."""
        ...

    def apply_check(self, result: CheckResult) -> Applied:
        """One DNS check's decisions (key moves, statuses, events) in one transaction. A move
        into a holding status (``states.DOMAIN_HELD``) is not made while another claim of the
        domain holds it: one account holds a domain at most."""
        ...

    def record_check_time(
        self, identity_ids: list[int], *, now: float, summary: dict[str, Any]
    ) -> None: ...


class DkimKeys(Protocol):
    """DKIM key rows: public half and where the private half is kept, and the key lifecycle."""

    def insert(
        self,
        *,
        domain: str,
        selector: str,
        algorithm: Algorithm,
        private_path: Path,
        public_key: str,
        state: KeyState,
        now: float,
        grace: float,
    ) -> StoredKey: ...
    def get(self, key_id: int) -> StoredKey | None: ...
    def of_domain(self, domain: str, *, states: tuple[KeyState, ...] = ()) -> list[StoredKey]:
        """The keys of ``domain`` (in ``states``, or all), RSA first, oldest first."""
        ...

    def all(self) -> list[StoredKey]: ...
    def selector_taken(self, domain: str, selector: str) -> bool: ...
    def signing(self, domain: str) -> list[StoredKey]:
        """Active keys not found unpublished by the last check, RSA first, newest first."""
        ...

    def activate_now(self, key_ids: list[int], *, now: float) -> None: ...


class Templates(Protocol):
    def get(self, account_id: int, slug: str) -> Template | None:
        """Cached for the policy, like ``Accounts.get``."""
        ...

    def all(self, account_id: int) -> list[TemplateInfo]: ...
    def save(self, account_id: int, template: Template, *, source: str = "created") -> None: ...
    def delete(self, account_id: int, slug: str) -> bool: ...


class Suppressions(Protocol):
    def lookup(self, account_id: int, addresses: Sequence[str]) -> dict[str, str]:
        """The subset of ``addresses`` (lowercased) on the unexpired list → reason."""
        ...

    def add(
        self,
        account_id: int,
        address: str,
        *,
        reason: str,
        source: str,
        bounce_type: str = "hard",
        event_id: int | None = None,
        expires_at: float | None = None,
    ) -> None: ...
    def remove(self, account_id: int, address: str) -> bool: ...
    def all(
        self, account_id: int | None = None, *, limit: int = 1000, after: str = ""
    ) -> list[Suppression]:
        """By address (after ``after``), at most ``limit``."""
        ...


class Admission(Protocol):
    async def admit(self, message: NewMessage, *, limits: bool = True) -> Limits:
        """Commit a message and its recipients durably; returns after the commit. Raises
        ``LimitExceeded`` (rate or quota), ``RequestError`` (unknown account 401, idempotency
        key reused with another body 409) or ``IdempotentReplay`` (same key, same body)."""
        ...

    def admit_sync(self, message: NewMessage, *, limits: bool = True) -> Limits: ...


class Usage(Protocol):
    """Usage counters: the limits (this second, this UTC day) and the per-day outcome counts."""

    def current_limits(self, account: Account) -> Limits:
        """The account's limits as they stand now (this second, this UTC day)."""
        ...

    def days(self, account_id: int, *, first: str, last: str) -> list[UsageDay]:
        """The account's UTC days from ``first`` to ``last`` (YYYY-MM-DD, inclusive) that had
        anything, oldest first; cheap whatever the volume (kept as daily counters, updated in
        the transaction that records each event). Counted in recipients: ``accepted`` (admitted
        to the queue), ``suppressed`` (refused at admission as suppressed), ``delivered``,
        ``deferred`` (a recipient's first deferral only), ``bounced`` (any bounce but
        suppressed: hard, soft, expired, a DSN after delivery), ``complained``, ``opened`` and
        ``clicked`` (a recipient's first human open / click: no proxy, no scanner)."""
        ...

    async def count_request(self, account_id: int) -> Limits:
        """Count one request (a management call) against the account's per-second rate limit,
        like a send (no recipients, so no quota); ``LimitExceeded`` (429) when over, and then
        nothing is counted. Returns after the commit."""
        ...


class Queue(Protocol):
    """Recipients waiting for delivery: claims with leases, outcomes, operator actions."""

    async def claim(
        self,
        owner: str,
        *,
        limit: int,
        lease_seconds: float,
        max_lease_losses: int = 5,
        keep: Collection[int] = (),
    ) -> list[Claimed]:
        """Lease up to ``limit`` due recipients. Expired leases go back to the queue first (or
        to ``held`` after ``max_lease_losses``), except ``owner``'s own leases on ``keep``: the
        recipients it still has in flight, which it never reclaims."""
        ...

    async def claim_message(
        self, owner: str, message_id: str, *, lease_seconds: float, keep: Collection[int] = ()
    ) -> list[Claimed]:
        """Lease every pending recipient of one message now (smarthost synchronous hand-off)."""
        ...

    def claim_sync(
        self, owner: str, *, limit: int, lease_seconds: float, max_lease_losses: int = 5
    ) -> list[Claimed]: ...
    async def renew(
        self, owner: str, recipient_ids: Sequence[int], *, lease_seconds: float
    ) -> list[int]:
        """Extend to now + ``lease_seconds`` the leases ``owner`` still holds (expired ones too,
        until a claim puts them back); returns the ids renewed (a lease already lost — put back
        or given to another worker — is not taken back)."""
        ...

    async def record(
        self, owner: str, outcomes: Sequence[Outcome], *, prepared: PreparedBody | None = None
    ) -> list[int]:
        """Record attempt outcomes for leased recipients (and ``Outcome.suppress``); returns the
        ids whose lease was lost (not recorded). ``prepared`` is stored once (first wins)."""
        ...

    def record_sync(self, owner: str, outcomes: Sequence[Outcome]) -> list[int]: ...
    async def release(self, owner: str, recipient_ids: Sequence[int]) -> None:
        """Give leased recipients back (shutdown) without counting an attempt."""
        ...

    def release_dead_owners(self, is_dead: Callable[[str], bool]) -> int: ...
    def transition(
        self,
        recipient_id: int,
        src: State,
        dst: State,
        *,
        event_type: str,
        data: dict[str, Any] | None = None,
        next_attempt_at: float | None = None,
    ) -> bool:
        """One guarded transition with its event; False if the recipient was not in ``src``."""
        ...

    def next_due(self) -> float | None:
        """When something is due next: a waiting recipient or an expiring lease."""
        ...

    def oldest_pending(self) -> float | None: ...
    def count_by_state(self) -> dict[str, int]: ...
    def entries(
        self, *, state: str | None = None, domain: str | None = None, limit: int = 100
    ) -> list[QueueEntry]: ...
    def select(
        self, *, ids: Sequence[str] = (), domain: str | None = None, states: Sequence[str] = ()
    ) -> list[int]:
        """Recipient ids named by message ids (``msg_…``) or recipient ids, or by domain."""
        ...

    def operate(
        self,
        recipient_ids: Sequence[int],
        action: str,
        *,
        chunk: int = 500,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """retry | hold | release | delete | cancel, in chunks; returns how many changed."""
        ...

    def cancel(self, message_id: str, *, account_id: int | None = None) -> int:
        """Cancel the message's recipients not yet delivered and not in flight (API.md §14)."""
        ...


class Messages(Protocol):
    """The read side: messages, recipients, bodies, events."""

    def get(self, message_id: str, *, account_id: int | None = None) -> dict[str, Any] | None:
        """The message (``id, account_id, channel, from, subject, message_id, tags, size,
        created_at``) with ``recipients`` (each with its ``events``) and ``events``; None when
        absent or another account's."""
        ...

    def search(
        self,
        account_id: int,
        *,
        tag: str | None = None,
        status: str | None = None,
        recipient: str | None = None,
        since: float | None = None,
        limit: int = 50,
        before: tuple[float, str] | None = None,
    ) -> list[MessageView]:
        """Newest first; ``before`` is the (created_at, id) of the previous page's last item."""
        ...

    def recipients(self, message_id: str) -> list[Recipient]: ...
    def body(self, message_id: str) -> bytes: ...
    def body_for_delivery(self, message_id: str, ordinal: int | None = None) -> tuple[bytes, bool]:
        """The bytes to send and whether they are final (signed) already; ``ordinal`` names a
        recipient's own variant (tracked messages). KeyError when absent."""
        ...

    def by_header_id(self, header_message_id: str) -> str | None: ...
    def of_recipient(self, recipient_id: int) -> str | None:
        """The id of the message a recipient belongs to; None when there is no such recipient."""
        ...

    def events_after(
        self, after_id: int, *, limit: int = 500, types: Sequence[str] | None = None
    ) -> list[Event]: ...


class Webhooks(Protocol):
    """Endpoints, the exactly-once outbox fan-out, leased deliveries and their attempts.

    Trust: secrets leave only through ``create``'s caller, ``reveal_secret``, ``live_secrets``
    and ``ClaimedDelivery.secrets``."""

    def create(
        self, *, account_id: int, url: str, events: Sequence[str], secret: str
    ) -> Webhook: ...
    def get(self, webhook_id: str) -> Webhook | None: ...
    def all(
        self, *, account_id: int | None = None, include_removed: bool = False
    ) -> list[Webhook]: ...
    def reveal_secret(self, webhook_id: str) -> str | None: ...
    def live_secrets(self, webhook_id: str) -> tuple[str, ...]: ...
    def update(
        self, webhook_id: str, *, url: str | None = None, events: Sequence[str] | None = None
    ) -> Webhook | None:
        """Change a live endpoint's URL (validated by the caller) and/or event types (empty:
        all); None when it is removed or unknown."""
        ...

    def rotate_secret(
        self, webhook_id: str, *, new_secret: str, grace: float
    ) -> Webhook | None: ...
    def remove(self, webhook_id: str) -> bool: ...
    def counts(self, webhook_id: str) -> dict[str, int]: ...
    def delivery(self, delivery_id: int) -> Delivery | None: ...
    def deliveries(
        self, *, webhook_id: str | None = None, state: str | None = None, limit: int = 50
    ) -> list[Delivery]: ...
    def attempts(self, delivery_id: int) -> list[Attempt]: ...
    def recent_attempts(
        self, webhook_id: str, *, limit: int = 50, before: int | None = None
    ) -> list[Attempt]:
        """Newest first, at most ``limit``, with ids below ``before`` (a cursor) when given.
        Each keeps the first 512 bytes of the response and, when failed, the next try."""
        ...

    def attempt(self, attempt_id: int) -> Attempt | None: ...
    def next_due(self) -> float | None: ...
    def anything_due(self, now: float) -> bool: ...
    def cursor(self) -> int: ...
    def events_waiting(self) -> bool: ...
    def replay(self, delivery_id: int) -> bool: ...
    def replay_abandoned(self, *, webhook_id: str | None = None) -> int: ...
    def release_dead_owners(self, is_dead: Callable[[str], bool]) -> int: ...
    async def fan_out(
        self, *, now: float | None = None, limit: int = FAN_OUT_BATCH
    ) -> tuple[int, bool]:
        """Turn events after the cursor into one delivery per matching endpoint, exactly once;
        returns (created, whether more events wait)."""
        ...

    def fan_out_sync(
        self, *, now: float | None = None, limit: int = FAN_OUT_BATCH
    ) -> tuple[int, bool]: ...
    async def claim(
        self,
        owner: str,
        *,
        limit: int,
        per_endpoint: int,
        lease_seconds: float,
        now: float | None = None,
    ) -> list[ClaimedDelivery]:
        """Lease up to ``limit`` due deliveries, at most ``per_endpoint`` active per endpoint;
        expired leases go back first. ``now`` None: the store's clock judges (as in production)."""
        ...

    async def record(
        self, owner: str, result: AttemptResult, *, now: float | None = None
    ) -> bool: ...
    def record_sync(
        self, owner: str, result: AttemptResult, *, now: float | None = None
    ) -> bool: ...
    async def release(
        self, owner: str, delivery_ids: Sequence[int], *, now: float | None = None
    ) -> int: ...


class Inbound(Protocol):
    """DSNs and feedback reports received over SMTP (kept as bytes), applying them, and what
    became of each."""

    async def save(self, *, mail_from: str, rcpts: list[str], data: bytes, peer: str) -> str:
        """Commit one received message; returns its ``in_`` id after the commit."""
        ...

    def pending(self, *, limit: int = 100) -> list[InboundMessage]: ...
    def mark_failed(self, inbound_id: str) -> bool:
        """Set aside a report that could not be processed (status ``failed``, bytes kept)."""
        ...

    async def apply(
        self,
        *,
        inbound_id: str,
        kind: str,
        message_id: str | None,
        recipient_id: int,
        changes: Sequence[ReportChange],
        reason: str = "",
    ) -> dict[str, Any]:
        """Apply one report to the recipient its verified token binds (``message_id`` and
        ``recipient_id``) and record the outcome on its row, in one transaction. A non-empty
        ``reason`` (no token, forged, ambiguous, message-level token), or a recipient that is
        not the message's, keeps the report unmatched and changes nothing; the account is
        recorded only when ``message_id`` names a stored message. Returns ``{"status",
        "reason", "account_id", "message_id", "recipient_id"}``."""
        ...

    async def purge(self, *, older_than: float, limit: int = 500) -> int:
        """Drop the bytes of up to ``limit`` reports processed before ``older_than`` (rows,
        outcomes and sizes stay); returns how many."""
        ...

    def reports(
        self, *, statuses: Sequence[str] = (), account_id: int | None = None, limit: int = 100
    ) -> list[InboundReport]:
        """Newest first, optionally only some statuses and one account."""
        ...

    def report(self, inbound_id: str) -> tuple[InboundReport, bytes] | None:
        """One report and its bytes as received (empty once retention dropped them)."""
        ...

    def counts(self) -> dict[int | None, dict[str, int]]:
        """Reports per account (None: no verified token named one) and status."""
        ...


class Tracking(Protocol):
    async def record_hits(self, hits: Sequence[TrackingHit], classify: HitClassifier) -> int:
        """Write verified hits as ``open`` / ``click`` events (a hit of a message that is gone
        or of another account is dropped), flagged by ``classify``; one transaction. Returns
        how many were kept."""
        ...


class Status(Protocol):
    """Read-only views behind ``relaygate status`` (no write lock taken)."""

    def queue_by_state(self) -> dict[str, int]: ...
    def queue_by_domain(self, *, limit: int = 10) -> list[DomainQueue]: ...
    def oldest_pending(self) -> tuple[float, str, str] | None: ...
    def outcome_counts(self, *, since: float) -> dict[str, int]: ...
    def failing_webhooks(self, *, since: float) -> list[FailingWebhook]: ...
    def unverified_domains(self) -> list[UnverifiedDomain]: ...
    def backlog(self, account_id: int | None = None) -> Backlog:
        """Pending recipients by state, the oldest one, webhook deliveries waiting or abandoned
        (of every account, or of one); reading only what is pending (cheap on a store of any
        size)."""
        ...

    def totals(self, after: TotalsCursor | None, *, latency_buckets: Sequence[float]) -> Totals:
        """What was recorded after ``after`` (None: since the beginning): accepted
        messages and recipients by channel, outcomes, delivery latency in ``latency_buckets``
        (upper bounds, ascending), webhook attempts and failures. Every row is counted by
        exactly one call in a chain of cursors, even with writers committing meanwhile: the
        cursor covers only what this read saw committed."""
        ...


class Audit(Protocol):
    """The audit log of management actions (API.md §11): who, what, on which object, when,
    from which address. Append-only; read per account, newest first, cursor-paged by id."""

    def append(
        self,
        account_id: int,
        *,
        actor: str,
        action: str,
        target: str,
        address: str = "",
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Record one action now (the store's clock); returns the entry after the commit.
        ``detail`` is JSON-able and never holds a secret."""
        ...

    def list(
        self, account_id: int, *, limit: int = 50, before: int | None = None
    ) -> list[AuditEntry]:
        """The account's entries newest first, at most ``limit``, with ids below ``before``
        (the previous page's last id) when given."""
        ...


class Users(Protocol):
    """Dashboard users: operators (``account_id`` None) and account users. E-mail addresses
    are kept lower-cased and are unique; the store keeps the hashes it is given and decides
    nothing about passwords."""

    def create(
        self, email: str, *, account_id: int | None, operator: bool, password_hash: str
    ) -> User:
        """A new user: 409 when the e-mail address has one, 404 for no such account, 400 when
        not exactly one of ``account_id`` and ``operator`` is given."""
        ...

    def get(self, user_id: int) -> User | None: ...
    def by_email(self, email: str) -> User | None: ...
    def all(self, account_id: int | None = None) -> list[User]:
        """Every user (or one account's), by id."""
        ...

    def set_password(self, user_id: int, password_hash: str) -> bool: ...
    def set_totp(self, user_id: int, secret: str) -> bool:
        """Set the TOTP secret (base32; empty turns the second factor off)."""
        ...

    def signed_in(self, user_id: int) -> None:
        """Remember when the user last signed in."""
        ...

    def disable(self, user_id: int) -> bool:
        """Disable the user and end every session of theirs, in one transaction; False when
        there is no such user or it was disabled already."""
        ...

    def enable(self, user_id: int) -> bool: ...


class Sessions(Protocol):
    """Server-side dashboard sessions, by the hash of the cookie's token. The store keeps the
    times; the dashboard decides when a session is too old (idle or absolute)."""

    def open(
        self, user_id: int, *, session_id: str, csrf: str, stage: str = "signed_in"
    ) -> UserSession: ...
    def get(self, session_id: str) -> UserSession | None:
        """The session, or None (ended, never existed, or its user is disabled)."""
        ...

    def touch(self, session_id: str) -> bool:
        """Mark the session seen now (the store's clock)."""
        ...

    def promote(self, session_id: str, *, new_id: str, csrf: str) -> UserSession | None:
        """A ``second_factor`` session becomes ``signed_in`` under a new id (a new cookie)."""
        ...

    def switch(self, session_id: str, account_id: int | None) -> bool:
        """The account an operator's session is looking at."""
        ...

    def end(self, session_id: str) -> bool: ...
    def end_all_of(self, user_id: int, *, but: str | None = None) -> int:
        """End every session of the user (except ``but``); returns how many."""
        ...

    def purge(self, *, seen_before: float, created_before: float) -> int:
        """Drop sessions idle since ``seen_before`` or opened before ``created_before``."""
        ...


class Store(Protocol):
    """One backend's store: lifecycle plus one object per concern."""

    @property
    def clock(self) -> Clock: ...
    @property
    def accounts(self) -> Accounts: ...
    @property
    def keys(self) -> Keys: ...
    @property
    def identities(self) -> Identities: ...
    @property
    def dkim_keys(self) -> DkimKeys: ...
    @property
    def templates(self) -> Templates: ...
    @property
    def suppressions(self) -> Suppressions: ...
    @property
    def admission(self) -> Admission: ...
    @property
    def usage(self) -> Usage: ...
    @property
    def queue(self) -> Queue: ...
    @property
    def messages(self) -> Messages: ...
    @property
    def webhooks(self) -> Webhooks: ...
    @property
    def inbound(self) -> Inbound: ...
    @property
    def tracking(self) -> Tracking: ...
    @property
    def status(self) -> Status: ...
    @property
    def audit(self) -> Audit: ...
    @property
    def users(self) -> Users: ...
    @property
    def sessions(self) -> Sessions: ...

    def open(self) -> Store:
        """Create or upgrade the schema. Idempotent."""
        ...

    def start_writer(self) -> None:
        """Start what the ``async`` writes need (SQLite: the group-commit writer thread)."""
        ...

    def close(self) -> None: ...
    def writable(self) -> bool:
        """A cheap probe that the store accepts a write now (blocks up to the busy timeout)."""
        ...

    async def probe(self) -> bool:
        """Readiness without blocking the event loop: a write committed within a short wait;
        False when the store is busy or failing."""
        ...
