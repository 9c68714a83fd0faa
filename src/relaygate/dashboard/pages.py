"""The dashboard's pages (API.md §12), each a handler of ``web.Ctx`` run off the event loop."""

from __future__ import annotations

from starlette.responses import Response

from relaygate.dashboard.web import PREFIX, Ctx, safe_next
from relaygate.errors import RequestError


def overview(ctx: Ctx) -> Response:
    account = ctx.account
    limits = ctx.store.usage.current_limits(account) if account is not None else None
    return ctx.render("overview.html", limits=limits)


def switch_account(ctx: Ctx) -> Response:
    """An operator picks the account the pages show."""
    assert ctx.session is not None
    raw = ctx.field("account", limit=20)
    if not raw.isdigit():
        raise RequestError(400, "Pick an account.")
    ctx.store.sessions.switch(ctx.session.id, int(raw))
    return ctx.redirect(safe_next(ctx.field("next", limit=2000)) or PREFIX)
