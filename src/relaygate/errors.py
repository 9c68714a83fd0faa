"""The project's exception tree. Callers catch these, never a library's own.

    RelaygateError
    ├── ConfigError            settings file invalid (carries every problem at once)
    ├── StartupError           serve cannot start: the state directory is not initialised or
    │                          not writable, a role already runs there, a port is taken…
    │                          (carries every problem at once)
    ├── TransientError         retry later: 503 / 451
    │   ├── StoreUnavailable   the store cannot commit right now (locked, disk full, read-only)
    │   ├── RenderUnavailable  no template render worker can take the work right now
    │   └── DeliveryDeferred   4xx, network or DNS trouble on the way out
    └── PermanentError         will not work if retried
        ├── RequestError       a client's input is wrong (carries an HTTP status and detail)
        │   ├── Invalid        400: a field's value is wrong (carries the field's name)
        │   ├── Forbidden      403: the actor lacks a scope the action needs
        │   ├── NotFound       404: no such object in the actor's account (another account's
        │   │                  object is "not found" too: existence is not leaked)
        │   ├── Conflict       409: a duplicate, or an object another account holds
        │   └── LimitExceeded  429: the rate limit or the daily quota (carries when to retry)
        IdempotentReplay       (not a failure) a repeated Idempotency-Key: the original answer
        ├── IllegalTransition  a state change from a state that does not allow it
        └── DeliveryFailed     5xx, no route, null MX

Each third-party library's exceptions are translated into these in exactly one place
(sqlite3 in ``store``, aiosmtplib in ``relay.client``, dnspython in ``relay.routing``...).
"""

from __future__ import annotations


class RelaygateError(Exception):
    """Base of every error relaygate raises on purpose."""


class ConfigError(RelaygateError):
    """The configuration is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class StartupError(RelaygateError):
    """``serve`` cannot start as configured, here and now; ``problems`` lists every one found.

    Raised before the process touches anything another instance owns (its store, its ready
    files, its ports)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class TransientError(RelaygateError):
    """Something that may work if retried later."""


class StoreUnavailable(TransientError):
    """The store cannot accept writes right now."""


class RenderUnavailable(TransientError):
    """Template rendering cannot be done right now (every worker busy, or a worker failed)."""


class DeliveryDeferred(TransientError):
    """A delivery attempt failed temporarily."""


class PermanentError(RelaygateError):
    """Something that will not work if retried."""


class RequestError(PermanentError):
    """A client request is invalid. ``status`` is the HTTP status, ``detail`` the message."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})
        super().__init__(detail)


class Invalid(RequestError):
    """400: the value of ``field`` is wrong (the detail names the field)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(400, detail)
        self.field = field


class Forbidden(RequestError):
    """403: the actor lacks ``scope``."""

    def __init__(self, scope: str, detail: str | None = None) -> None:
        super().__init__(403, detail or f"this API key lacks the {scope} scope")
        self.scope = scope


class NotFound(RequestError):
    """404: no such object in the actor's account."""

    def __init__(self, detail: str) -> None:
        super().__init__(404, detail)


class Conflict(RequestError):
    """409: a duplicate, or an object another account holds."""

    def __init__(self, detail: str) -> None:
        super().__init__(409, detail)


class LimitExceeded(RequestError):
    """A rate limit or daily quota refusal (429). ``limit`` and ``remaining`` are the per-second
    rate limit and what is left of it, ``retry_after`` the seconds until a retry may pass; the
    gateway turns them into headers (``relaygate.policy`` decides them)."""

    def __init__(self, detail: str, *, limit: int, remaining: int, retry_after: int) -> None:
        super().__init__(429, detail)
        self.limit = limit
        self.remaining = remaining
        self.retry_after = retry_after


class IdempotentReplay(RelaygateError):
    """An Idempotency-Key was seen before with the same request: answer with the original message id."""

    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        super().__init__(message_id)


class IllegalTransition(PermanentError):
    """A state transition was attempted from a state that does not allow it."""


class DeliveryFailed(PermanentError):
    """A delivery attempt failed permanently."""
