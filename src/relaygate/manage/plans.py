"""The operator's account actions: create an account, change its plan, daily quota and rate
limit. These are the operator's, never an account's own (an account's key or user does not
change its plan): the caller checks that the actor is an operator — the command line is one, the
dashboard checks its user. Each action is audited in the account's log.
"""

from __future__ import annotations

from typing import Any

from relaygate.errors import Invalid, NotFound
from relaygate.manage.actor import Actor
from relaygate.manage.audit import record
from relaygate.policy import PLANS
from relaygate.store.api import Store
from relaygate.store.models import Account

MAX_QUOTA = 10**9
MAX_RATE = 10**6


def _count(value: Any, field: str, *, low: int, high: int) -> int:
    text = str(value).strip().replace("_", "").replace(",", "")
    if isinstance(value, bool) or not text.isdigit() or not low <= int(text) <= high:
        raise Invalid(field, f"{field} must be a whole number from {low} to {high:,}")
    return int(text)


def _plan(value: Any) -> str:
    if value not in PLANS:
        raise Invalid("plan", f"plan must be one of {', '.join(PLANS)}")
    return str(value)


def create_account(
    store: Store,
    who: str,
    *,
    name: Any,
    plan: Any = "trial",
    daily_quota: Any = 10_000,
    rate_limit: Any = 100,
    address: str = "",
) -> Account:
    """A new account (409 for a name another account has); ``who`` is the operator
    (``user:<id>`` or ``cli``), recorded in the new account's audit log."""
    text = str(name).strip()
    if not text or len(text) > 200 or not text.isprintable():
        raise Invalid("name", "name must be printable text of 1 to 200 characters")
    account = store.accounts.create(
        text,
        plan=_plan(plan),
        daily_quota=_count(daily_quota, "daily_quota", low=0, high=MAX_QUOTA),
        rate_limit=_count(rate_limit, "rate_limit", low=1, high=MAX_RATE),
    )
    actor = Actor(account_id=account.id, who=who, address=address)
    record(store, actor, "account.create", str(account.id), {"name": text, "plan": account.plan})
    return account


def change_plan(
    store: Store, actor: Actor, *, plan: Any, daily_quota: Any, rate_limit: Any
) -> Account:
    """Set the actor's account's plan, daily quota (recipients per UTC day) and rate limit
    (requests per second); they count from the next request on, in every process."""
    fields = {
        "plan": _plan(plan),
        "daily_quota": _count(daily_quota, "daily_quota", low=0, high=MAX_QUOTA),
        "rate_limit": _count(rate_limit, "rate_limit", low=1, high=MAX_RATE),
    }
    before = store.accounts.get(actor.account_id)
    if before is None:
        raise NotFound(f"no account {actor.account_id}")
    account = store.accounts.update(actor.account_id, **fields)
    changed = {k: v for k, v in fields.items() if getattr(before, k) != v}
    if changed:
        record(store, actor, "account.update", str(account.id), changed)
    return account
