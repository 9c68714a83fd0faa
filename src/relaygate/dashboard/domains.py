"""``/dashboard/domains``: the account's sending domains — add (the records to publish), each
record looked up now (found / missing / different) with a copy button, "Verify now", the DKIM
keys and their rotation — through ``relaygate.manage.domains`` (whose DNS look-ups block: pages run in
worker threads)."""

from __future__ import annotations

import urllib.parse
from typing import Any

from starlette.responses import Response

from relaygate.dashboard.web import PREFIX, Ctx
from relaygate.domains.records import display_value
from relaygate.errors import RequestError
from relaygate.manage import domains

#: What each record is for, as a person reads it.
PURPOSE = {
    "verification": "proves the domain is yours",
    "dkim": "DKIM key: signatures verify with it",
    "spf": "SPF (advice)",
    "dmarc": "DMARC (advice)",
    "return-path": "bounces come back here",
}


def page(ctx: Ctx, *, status: int = 200, error: str = "") -> Response:
    return ctx.render(
        "domains.html",
        status=status,
        error=error,
        domains=domains.list_domains(ctx.store, ctx.actor()),
    )


def add(ctx: Ctx) -> Response:
    name = ctx.field("domain", limit=300)
    try:
        setup = domains.add_domain(ctx.store, ctx.dash.settings, ctx.actor(), name)
    except RequestError as exc:
        if exc.status == 404:
            raise
        return page(ctx, status=exc.status, error=exc.detail)
    return ctx.redirect(f"{PREFIX}/domains/{urllib.parse.quote(setup.identity.identity.value)}")


def _lookup(ctx: Ctx, name: str, *, apply: bool) -> Any:
    action = domains.verify_domain if apply else domains.read_domain
    return action(ctx.store, ctx.dash.settings, ctx.actor(), name)


def show(ctx: Ctx, *, report: Any = None, status: int = 200, error: str = "") -> Response:
    name = ctx.request.path_params["domain"]
    ident = domains.own_domain(ctx.store, ctx.actor(), name)
    value = ident.identity.value
    if report is None:
        report = _lookup(ctx, value, apply=False)
    rows = [
        {
            "record": c.record,
            "value": display_value(c.record),
            "check": c.check.value,
            "purpose": PURPOSE.get(c.record.purpose, c.record.purpose),
            "note": c.note or c.record.note,
        }
        for c in report.records
    ]
    return ctx.render(
        "domain.html",
        status=status,
        error=error,
        ident=ident,
        report=report,
        rows=rows,
        keys=ctx.store.dkim_keys.of_domain(value),
    )


def verify(ctx: Ctx) -> Response:
    name = ctx.request.path_params["domain"]
    ident = domains.own_domain(ctx.store, ctx.actor(), name)
    report = _lookup(ctx, ident.identity.value, apply=True)
    return show(ctx, report=report)


def rotate(ctx: Ctx) -> Response:
    name = ctx.request.path_params["domain"]
    try:
        domains.rotate_dkim(ctx.store, ctx.dash.settings, ctx.actor(), name)
    except RequestError as exc:
        if exc.status == 404:
            raise
        return show(ctx, status=exc.status, error=exc.detail)
    return ctx.redirect(f"{PREFIX}/domains/{urllib.parse.quote(name)}", notice="rotated")
