"""``/dashboard/webhooks``: the account's endpoints — add (the secret shown once), the attempt
log (HTTP status, error, the first characters of the answer), replay, rotate the secret,
remove — through ``relaygate.manage.webhooks``."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from relaygate.dashboard.web import PREFIX, Ctx
from relaygate.errors import RequestError
from relaygate.manage import webhooks
from relaygate.store.states import WEBHOOK_EVENT_TYPES


def _events(ctx: Ctx) -> list[str]:
    raw = ctx.form.get("events", [])
    return [e for e in (raw if isinstance(raw, list) else [raw]) if isinstance(e, str)]


def page(ctx: Ctx, *, status: int = 200, **values: Any) -> Response:
    listed = webhooks.list_webhooks(ctx.store, ctx.actor())
    counts = {w.id: ctx.store.webhooks.counts(w.id) for w in listed}
    values.setdefault("error", "")
    values.setdefault("created", None)
    values.setdefault("form_url", "")
    return ctx.render(
        "webhooks.html",
        status=status,
        hooks=listed,
        counts=counts,
        event_types=WEBHOOK_EVENT_TYPES,
        **values,
    )


def create(ctx: Ctx) -> Response:
    url = ctx.field("url", limit=3000)
    try:
        made = webhooks.create_webhook(ctx.store, ctx.dash.settings, ctx.actor(), url, _events(ctx))
    except RequestError as exc:
        if exc.status == 404:
            raise
        return page(ctx, status=exc.status, error=exc.detail, form_url=url)
    return page(ctx, status=201, created=made)


def show(ctx: Ctx, *, secret: str = "", status: int = 200, error: str = "") -> Response:
    hook_id = ctx.request.path_params["webhook_id"]
    hook = webhooks.get_webhook(ctx.store, ctx.actor(), hook_id)
    cursor = ctx.query("cursor", limit=20) or None
    attempts, following = webhooks.list_attempts(
        ctx.store, ctx.actor(), hook_id, limit=50, cursor=cursor
    )
    states = {}
    for a in attempts:
        if a.delivery_id not in states:
            d = ctx.store.webhooks.delivery(a.delivery_id)
            states[a.delivery_id] = d.state if d else ""
    return ctx.render(
        "webhook.html",
        status=status,
        error=error,
        hook=hook,
        secret=secret,
        attempts=attempts,
        states=states,
        following=following,
        counts=ctx.store.webhooks.counts(hook_id),
    )


def replay(ctx: Ctx) -> Response:
    hook_id = ctx.request.path_params["webhook_id"]
    attempt = ctx.field("attempt", limit=20)
    try:
        if attempt:
            if not attempt.isdigit():
                raise RequestError(400, "Pick an attempt to replay.")
            webhooks.replay(ctx.store, ctx.actor(), hook_id, attempt_ids=[int(attempt)])
        else:
            webhooks.replay(ctx.store, ctx.actor(), hook_id, status="abandoned")
    except RequestError as exc:
        if exc.status == 404:
            raise
        return show(ctx, status=exc.status, error=exc.detail)
    return ctx.redirect(f"{PREFIX}/webhooks/{hook_id}", notice="replayed")


def rotate(ctx: Ctx) -> Response:
    hook_id = ctx.request.path_params["webhook_id"]
    _, secret = webhooks.rotate_secret(ctx.store, ctx.actor(), hook_id)
    return show(ctx, secret=secret)


def remove(ctx: Ctx) -> Response:
    webhooks.delete_webhook(ctx.store, ctx.actor(), ctx.request.path_params["webhook_id"])
    return ctx.redirect(f"{PREFIX}/webhooks", notice="webhook-removed")
