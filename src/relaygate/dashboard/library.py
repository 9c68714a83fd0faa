"""``/dashboard/templates``: the system catalog and the account's own templates — clone, edit,
delete — and a preview rendered as a send would render it (in the sandboxed render workers,
``relaygate.manage.templates.render_preview``), shown in a sandboxed frame of its own: the
preview document has its own Content-Security-Policy (no script, no network) and the frame
``sandbox`` forbids script and same-origin access."""

from __future__ import annotations

import json
import urllib.parse

import anyio.from_thread
from starlette.responses import HTMLResponse, Response

from relaygate.dashboard.web import PREFIX, Ctx
from relaygate.errors import RequestError
from relaygate.manage import templates

PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


def page(ctx: Ctx, *, status: int = 200, error: str = "") -> Response:
    listed = templates.list_templates(ctx.store, ctx.actor())
    return ctx.render(
        "templates.html",
        status=status,
        error=error,
        own=[t for t in listed if t.owner != "system"],
        catalog=[t for t in listed if t.owner == "system"],
    )


def clone(ctx: Ctx) -> Response:
    try:
        made = templates.clone_template(
            ctx.store,
            ctx.actor(),
            ctx.field("clone_of", limit=64),
            ctx.field("slug", limit=64) or None,
        )
    except RequestError as exc:
        if exc.status == 404:
            raise
        return page(ctx, status=exc.status, error=exc.detail)
    return ctx.redirect(f"{PREFIX}/templates/{made.slug}", notice="cloned")


def edit(ctx: Ctx, *, status: int = 200, error: str = "", draft: object = None) -> Response:
    slug = ctx.request.path_params["slug"]
    template, owner = templates.get_template(ctx.store, ctx.actor(), slug)
    variables = ctx.query("variables", limit=20_000) or "{}"
    return ctx.render(
        "template.html",
        status=status,
        error=error,
        tpl=draft or template,
        owner=owner,
        own=owner != "system",
        variables=variables,
        preview=f"{PREFIX}/templates/{slug}/preview?"
        + urllib.parse.urlencode({"variables": variables}),
    )


def save(ctx: Ctx) -> Response:
    slug = ctx.request.path_params["slug"]
    _, owner = templates.get_template(ctx.store, ctx.actor(), slug)
    if owner == "system":
        raise RequestError(400, "System templates are read-only: clone it to edit a copy.")
    try:
        draft = templates.new_template(
            slug,
            ctx.field("subject", limit=2048),
            str(ctx.form.get("html", "")),
            str(ctx.form.get("text", "")),
        )
        renderer = ctx.dash.renderer
        if renderer is not None:
            anyio.from_thread.run(templates.check_template, renderer, ctx.actor(), draft)
        templates.save_template(ctx.store, ctx.actor(), draft, checked=renderer is not None)
    except RequestError as exc:
        if exc.status == 404:
            raise
        return edit(ctx, status=exc.status, error=exc.detail)
    return ctx.redirect(f"{PREFIX}/templates/{slug}", notice="template-saved")


def delete(ctx: Ctx) -> Response:
    templates.delete_template(ctx.store, ctx.actor(), ctx.request.path_params["slug"])
    return ctx.redirect(f"{PREFIX}/templates", notice="template-deleted")


def preview(ctx: Ctx) -> Response:
    """The rendered HTML alone, for the sandboxed frame on the edit page."""
    slug = ctx.request.path_params["slug"]
    template, _ = templates.get_template(ctx.store, ctx.actor(), slug)
    renderer = ctx.dash.renderer
    if renderer is None:
        raise RequestError(503, "Previews need the template render workers of the http role.")
    try:
        variables = json.loads(ctx.query("variables", limit=20_000) or "{}")
    except ValueError:
        variables = None
    try:
        if not isinstance(variables, dict):
            raise RequestError(400, 'The variables must be a JSON object, e.g. {"name": "Ann"}.')
        rendered = anyio.from_thread.run(
            templates.render_preview, renderer, ctx.actor(), template, variables
        )
        body = rendered.html or f"<pre>{_escape(rendered.text)}</pre>"
    except RequestError as exc:
        body = f"<p style='color:#b42318;font-family:sans-serif'>{_escape(exc.detail)}</p>"
    response = HTMLResponse(body)
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return ctx.finish(response)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
