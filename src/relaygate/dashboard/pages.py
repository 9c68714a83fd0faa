"""The overview, billing and the operator's account switch (API.md §12), each a handler of
``web.Ctx`` run off the event loop."""

from __future__ import annotations

from starlette.responses import Response

from relaygate.dashboard.chart import last_days, line_chart
from relaygate.dashboard.web import PREFIX, Ctx, safe_next
from relaygate.errors import RequestError
from relaygate.manage import plans
from relaygate.policy import PLANS

#: Domain states the overview warns about, and what to do.
WARN = {
    "pending": "is not verified yet: publish its DNS records, then press Verify now.",
    "at_risk": "has DNS records missing: it still sends, but will stop if they stay missing.",
    "failed": "failed verification: mail from it is refused until its records are back.",
}


def overview(ctx: Ctx) -> Response:
    account = ctx.account
    if account is None:
        return ctx.render("overview.html", limits=None)
    store = ctx.store
    days = last_days(ctx.now)
    chart = line_chart(store.usage.days(account.id, first=days[0], last=days[-1]), days)
    backlog = store.status.backlog(account.id)
    warnings = [
        (d.identity.value, d.identity.status, WARN[d.identity.status], d.status_reason)
        for d in store.identities.details(account.id)
        if d.identity.kind == "domain" and d.identity.status in WARN
    ]
    return ctx.render(
        "overview.html",
        limits=store.usage.current_limits(account),
        chart=chart,
        backlog=backlog,
        oldest_age=ctx.now - backlog.oldest_queued_at if backlog.oldest_queued_at else None,
        warnings=warnings,
    )


def billing(ctx: Ctx, *, status: int = 200, error: str = "") -> Response:
    account = ctx.need_account()
    return ctx.render(
        "billing.html",
        status=status,
        error=error,
        limits=ctx.store.usage.current_limits(account),
        plans=PLANS,
    )


def change_billing(ctx: Ctx) -> Response:
    """An operator changes the account's plan, daily quota or rate limit."""
    try:
        plans.change_plan(
            ctx.store,
            ctx.actor(),
            plan=ctx.field("plan", limit=20),
            daily_quota=ctx.field("daily_quota", limit=12),
            rate_limit=ctx.field("rate_limit", limit=12),
        )
    except RequestError as exc:
        if exc.status == 404:
            raise
        return billing(ctx, status=exc.status, error=exc.detail)
    return ctx.redirect(f"{PREFIX}/billing", notice="plan-changed")


def switch_account(ctx: Ctx) -> Response:
    """An operator picks the account the pages show."""
    assert ctx.session is not None
    raw = ctx.field("account", limit=20)
    if not raw.isdigit():
        raise RequestError(400, "Pick an account.")
    ctx.store.sessions.switch(ctx.session.id, int(raw))
    return ctx.redirect(safe_next(ctx.field("next", limit=2000)) or PREFIX)
