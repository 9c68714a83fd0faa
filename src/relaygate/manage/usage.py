"""Usage per UTC day, counted in recipients (``GET /v1/usage``): the store's daily counters
for the last N days, every day listed (zeros included), oldest first."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from relaygate.clock import utc_day
from relaygate.manage import fields
from relaygate.manage.actor import Actor
from relaygate.store.api import Store
from relaygate.store.models import UsageDay

MAX_DAYS = 90
DAY = 86400


def usage_days(store: Store, actor: Actor, days: object = None) -> list[UsageDay]:
    """The last ``days`` UTC days (default 30, at most 90), today included."""
    actor.require()
    count = fields.integer(days, "days", default=30, low=1, high=MAX_DAYS)
    now = store.clock.now()
    wanted = [utc_day(now - DAY * n) for n in range(count - 1, -1, -1)]
    found = {d.day: d for d in store.usage.days(actor.account_id, first=wanted[0], last=wanted[-1])}
    return [found.get(day, UsageDay(day=day)) for day in wanted]


def usage_json(day: UsageDay) -> dict[str, Any]:
    return asdict(day)
