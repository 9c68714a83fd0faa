"""``/dashboard/keys``: the account's API keys; create (the secret shown once, with the SMTP
settings to use it) and revoke, through ``relaygate.manage.keys``.

The create form is pinned by API.md §12: a text field ``name``, one checkbox ``scopes`` per
scope with the scope as its value (``email:send`` checked by default), a button "Create key".
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from relaygate.dashboard.web import PREFIX, Ctx
from relaygate.errors import RequestError
from relaygate.manage import keys
from relaygate.policy import SCOPES
from relaygate.settings import Settings, parse_hostport

SCOPE_HELP = {
    "email:send": "send mail (POST /v1/send, SMTP)",
    "email:read": "read messages and suppressions back",
    "account:admin": "manage the account over the API (keys, domains, webhooks…)",
}


def smtp_settings(settings: Settings) -> dict[str, Any]:
    """What a client needs to send over SMTP with a key."""
    starttls = sorted({parse_hostport(x)[1] for x in settings.smtp.listen})
    implicit = sorted({parse_hostport(x)[1] for x in settings.smtp.tls_listen})
    return {"host": settings.hostname, "starttls": starttls, "implicit": implicit}


def page(ctx: Ctx, *, status: int = 200, **values: Any) -> Response:
    account = ctx.account
    listed = keys.list_keys(ctx.store, ctx.actor()) if account is not None else []
    values.setdefault("error", "")
    values.setdefault("created", None)
    values.setdefault("secret", "")
    values.setdefault("form_name", "")
    values.setdefault("form_scopes", ["email:send"])
    return ctx.render(
        "keys.html",
        status=status,
        keys=sorted(listed, key=lambda k: (k.revoked_at is not None, -k.created_at)),
        scopes=[(s, SCOPE_HELP.get(s, "")) for s in SCOPES],
        smtp=smtp_settings(ctx.dash.settings),
        **values,
    )


def create(ctx: Ctx) -> Response:
    name = ctx.field("name", limit=1000)
    raw = ctx.form.get("scopes", [])
    wanted = [s for s in (raw if isinstance(raw, list) else [raw]) if isinstance(s, str)]
    try:
        key, secret = keys.create_key(ctx.store, ctx.actor(), name=name, scopes=wanted)
    except RequestError as exc:
        if exc.status == 404:
            raise
        return page(ctx, status=exc.status, error=exc.detail, form_name=name, form_scopes=wanted)
    return page(ctx, status=201, created=key, secret=secret)


def revoke(ctx: Ctx) -> Response:
    keys.revoke_key(ctx.store, ctx.actor(), ctx.request.path_params["key_id"])
    return ctx.redirect(f"{PREFIX}/keys", notice="key-revoked")
