"""The operator's pages (API.md §12): accounts (create), users (create, disable, enable) and
the delivery queue (by state, oldest age, held; retry / hold / release through
``relay.queue_actions``, the command line's code path). An account's user gets 404 here."""

from __future__ import annotations

import logging

from starlette.responses import Response

from relaygate.dashboard import users
from relaygate.dashboard.web import PREFIX, Ctx
from relaygate.errors import RequestError
from relaygate.manage import plans
from relaygate.policy import PLANS
from relaygate.relay import queue_actions

log = logging.getLogger("relaygate.dashboard")

QUEUE_STATES = ("queued", "active", "deferred", "held")


def _who(ctx: Ctx) -> str:
    assert ctx.user is not None
    return f"user:{ctx.user.id}"


def accounts(ctx: Ctx, *, status: int = 200, error: str = "") -> Response:
    counts: dict[int, int] = {}
    for u in ctx.store.users.all():
        if u.account_id is not None:
            counts[u.account_id] = counts.get(u.account_id, 0) + 1
    return ctx.render(
        "accounts.html",
        status=status,
        error=error,
        all_accounts=ctx.accounts,
        plans=PLANS,
        user_counts=counts,
    )


def create_account(ctx: Ctx) -> Response:
    try:
        account = plans.create_account(
            ctx.store,
            _who(ctx),
            name=ctx.field("name", limit=300),
            plan=ctx.field("plan", limit=20),
            daily_quota=ctx.field("daily_quota", limit=12) or "10000",
            rate_limit=ctx.field("rate_limit", limit=12) or "100",
            address=ctx.client,
        )
    except RequestError as exc:
        ctx.accounts = ctx.store.accounts.all()
        return accounts(ctx, status=exc.status, error=exc.detail)
    assert ctx.session is not None
    ctx.store.sessions.switch(ctx.session.id, account.id)
    return ctx.redirect(f"{PREFIX}/accounts", notice="account-created")


def user_list(ctx: Ctx, *, status: int = 200, error: str = "") -> Response:
    names = {a.id: a.name for a in ctx.accounts}
    return ctx.render(
        "users.html", status=status, error=error, users=ctx.store.users.all(), names=names
    )


def create_user(ctx: Ctx) -> Response:
    role = ctx.field("role", limit=20)
    account_id: int | None = None
    if role != "operator":
        raw = ctx.field("account", limit=20)
        if not raw.isdigit() or ctx.store.accounts.get(int(raw)) is None:
            return user_list(ctx, status=400, error="Pick the account this user belongs to.")
        account_id = int(raw)
    try:
        users.create_user(
            ctx.store,
            _who(ctx),
            email=ctx.field("email", limit=300),
            password=str(ctx.form.get("password", "")),
            account_id=account_id,
            address=ctx.client,
        )
    except RequestError as exc:
        return user_list(ctx, status=exc.status, error=exc.detail)
    return ctx.redirect(f"{PREFIX}/users", notice="user-created")


def set_user_disabled(ctx: Ctx) -> Response:
    assert ctx.user is not None
    action = ctx.request.path_params["action"]
    if action not in ("disable", "enable"):
        raise RequestError(404, "There is no such page.")
    target = users.find(ctx.store, str(ctx.request.path_params["user_id"]))
    disable = action == "disable"
    if disable and target.id == ctx.user.id:
        return user_list(ctx, status=400, error="You cannot disable yourself.")
    users.set_disabled(ctx.store, _who(ctx), target, disable, address=ctx.client)
    return ctx.redirect(f"{PREFIX}/users", notice="user-disabled" if disable else "user-enabled")


def queue(ctx: Ctx) -> Response:
    state = ctx.query("state", limit=20)
    if state and state not in QUEUE_STATES:
        raise RequestError(400, f"state must be one of {', '.join(QUEUE_STATES)}")
    backlog = ctx.store.status.backlog()
    entries = ctx.store.queue.entries(state=state or None, limit=100)
    return ctx.render(
        "queue.html",
        backlog=backlog,
        oldest_age=ctx.now - backlog.oldest_queued_at if backlog.oldest_queued_at else None,
        entries=entries,
        state=state,
        states=QUEUE_STATES,
        by_domain=ctx.store.status.queue_by_domain(limit=10),
    )


def queue_action(ctx: Ctx) -> Response:
    action = ctx.field("action", limit=20)
    if action not in ("retry", "hold", "release"):
        raise RequestError(400, "action must be retry, hold or release")
    ids = [ctx.field("id", limit=100)] if ctx.field("id", limit=100) else []
    domain = ctx.field("domain", limit=300) or None
    done = queue_actions.act(ctx.store, action, ids=ids, domain=domain)
    log.info(
        "dashboard queue action",
        extra={"action": action, "changed": done.changed, "user_id": _who(ctx)},
    )
    back = ctx.field("state", limit=20)
    target = f"{PREFIX}/queue" + (f"?state={back}" if back in QUEUE_STATES else "")
    return ctx.redirect(target, notice=f"queue-{action}")
