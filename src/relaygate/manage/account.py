"""The account as its owner sees it: plan, limits, and today's use of the quota."""

from __future__ import annotations

from typing import Any

from relaygate.clock import iso
from relaygate.errors import NotFound
from relaygate.manage.actor import Actor
from relaygate.policy import Limits
from relaygate.store.api import Store
from relaygate.store.models import Account


def get_account(store: Store, actor: Actor) -> tuple[Account, Limits]:
    """The actor's account and its limits as they stand now."""
    actor.require()
    account = store.accounts.get(actor.account_id)
    if account is None:
        raise NotFound(f"no account {actor.account_id}")
    return account, store.usage.current_limits(account)


def account_json(account: Account, limits: Limits) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "plan": account.plan,
        "daily_quota": account.daily_quota,
        "rate_limit": account.rate_limit,
        "track_opens": account.track_opens,
        "track_clicks": account.track_clicks,
        "created_at": iso(account.created_at),
        "today": {
            "used": max(0, limits.quota - limits.quota_remaining),
            "remaining": limits.quota_remaining,
        },
    }
