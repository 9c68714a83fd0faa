"""The sending policy as pure decisions: plans, key scopes, and the per-second rate and daily
quota rules (API.md §1, §2). Inputs in, decision out: no I/O, no clock of its own.

The store applies the limits inside its admission transaction (so they hold across processes
and nodes) by calling ``check_rate`` and ``check_quota`` with the counters it has just read;
the gateway turns a ``LimitExceeded`` or a ``Limits`` into its ``X-RateLimit-*`` and
``Retry-After`` headers (``gateway.httpwire``). The command line, the management API and the
store validate plans and scopes with ``check_plan`` / ``check_scopes``: one list each, here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from relaygate.errors import Forbidden, Invalid, LimitExceeded, RequestError

PLANS: tuple[str, ...] = ("free", "trial", "paid")
"""Account plans; ``free`` accounts cannot send (402)."""
SENDING_PLANS: tuple[str, ...] = ("trial", "paid")
SCOPES: tuple[str, ...] = ("email:send", "email:read", "account:admin")
"""API key scopes: sending, reading back, and the management API (``account:admin``)."""
DAY = 86400


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What an admission saw of the account's limits (for X-RateLimit-* headers)."""

    rate_limit: int
    rate_remaining: int
    rate_reset: int
    quota: int
    quota_remaining: int


def check_plan(plan: str) -> str:
    if plan not in PLANS:
        raise RequestError(400, f"plan must be one of {', '.join(PLANS)}")
    return plan


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes, sorted and unique; 400 for an unknown one or none at all."""
    found = sorted(set(scopes))
    for scope in found:
        if scope not in SCOPES:
            raise Invalid("scopes", f"unknown scope {scope!r}; scopes are {', '.join(SCOPES)}")
    if not found:
        raise Invalid("scopes", "scopes must name at least one scope")
    return found


def check_scope(scopes: Iterable[str], scope: str) -> None:
    """403 unless a key with ``scopes`` holds ``scope``."""
    if scope not in scopes:
        raise Forbidden(scope)


def check_grantable(held: Iterable[str], wanted: Iterable[str]) -> None:
    """403 unless every scope in ``wanted`` is in ``held``: a key or user creates keys only
    with scopes it holds itself (API.md §14)."""
    have = set(held)
    missing = sorted(set(wanted) - have)
    if missing:
        raise Forbidden(
            missing[0],
            f"cannot grant {', '.join(missing)}: a key can only be given scopes its creator holds",
        )


def check_can_send(plan: str) -> None:
    """402 for a plan that cannot send."""
    if plan not in SENDING_PLANS:
        raise RequestError(402, "accounts on the free plan cannot send; upgrade to trial or paid")


def check_account_fields(
    *, name: str | None = None, daily_quota: int | None = None, rate_limit: int | None = None
) -> None:
    if name is not None and not name.strip():
        raise RequestError(400, "account name must not be empty")
    if (daily_quota is not None and daily_quota < 0) or (rate_limit is not None and rate_limit < 1):
        raise RequestError(400, "daily quota must be >= 0 and rate limit >= 1")


def check_rate(rate_limit: int, requests: int) -> LimitExceeded | None:
    """The refusal when ``requests`` (this one included) in this second exceed the rate limit."""
    if requests > rate_limit:
        return LimitExceeded(
            f"rate limit exceeded: {rate_limit} requests per second",
            limit=rate_limit,
            remaining=0,
            retry_after=1,
        )
    return None


def check_quota(
    rate_limit: int, quota: int, requests: int, used: int, count: int, now: float
) -> LimitExceeded | None:
    """The refusal when ``used`` recipients today (this request's ``count`` included) exceed
    the daily quota; it may be retried at the next UTC midnight."""
    if used > quota:
        return LimitExceeded(
            f"daily quota exceeded: {used - count} of {quota} recipients used today,"
            f" this request has {count}",
            limit=rate_limit,
            remaining=rate_limit - requests + 1,
            retry_after=max(1, int(DAY - (now % DAY)) + 1),
        )
    return None


def limits_after(rate_limit: int, quota: int, requests: int, used: int) -> Limits:
    """The limits an answer reports after ``requests`` this second and ``used`` recipients today."""
    return Limits(
        rate_limit=rate_limit,
        rate_remaining=max(0, rate_limit - requests),
        rate_reset=1,
        quota=quota,
        quota_remaining=max(0, quota - used),
    )
