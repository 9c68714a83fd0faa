"""Template actions: the account's own templates (create, replace, delete), the system
catalog read-only (read, clone into the account), and a render preview that sends nothing.

``relaygate.compose.library`` does the work (slug, syntax and size checks). The preview renders
through the server's ``Renderer`` (``relaygate.compose.renderer``): in a worker process, under
the same limits as ``POST /v1/send``. Compiling a stranger's template can be slow, so an async
caller checks it with ``Renderer.check`` first and passes ``checked=True``; the command line
lets ``save_template`` compile it here.
"""

from __future__ import annotations

from typing import Any

from relaygate.compose import library
from relaygate.compose.renderer import Renderer
from relaygate.compose.templates import Rendered, Template, TemplateError, system_catalog
from relaygate.errors import Invalid, NotFound, RenderUnavailable, RequestError
from relaygate.manage import fields
from relaygate.manage.actor import Actor
from relaygate.manage.audit import record
from relaygate.store.api import Store

#: A source's size at most (characters); the renderer's own limits apply on top.
MAX_SOURCE = 256 * 1024


def _slug(value: object) -> str:
    slug = fields.text(value, "slug", required=True, max_len=64)
    if not library.SLUG.match(slug):
        raise Invalid("slug", f"slug {slug!r} must be 1-64 lowercase letters, digits, - or _")
    return slug


def new_template(slug: object, subject: object, html: object, text: object) -> Template:
    """A template from its fields (checked for type and size; not compiled)."""
    template = Template(
        slug=_slug(slug),
        subject=fields.text(subject, "subject", required=True, max_len=2048),
        html=fields.source(html, "html", max_len=MAX_SOURCE),
        text=fields.source(text, "text", max_len=MAX_SOURCE),
    )
    if not template.html and not template.text:
        raise Invalid("html", "html or text is required")
    return template


def list_templates(store: Store, actor: Actor) -> list[library.Listed]:
    """The system catalog and the account's own (an own template shadows a system one)."""
    actor.require()
    return library.list_templates(store, actor.account_id)


def get_template(store: Store, actor: Actor, slug: object) -> tuple[Template, str]:
    """The template a send with ``slug`` uses (the account's own first) and its owner
    (``system`` or ``account N``)."""
    actor.require()
    try:
        return library.resolve(store, actor.account_id, _slug(slug))
    except (RequestError, Invalid):
        raise NotFound(f"no template {str(slug)[:64]!r}") from None


def save_template(store: Store, actor: Actor, template: Template, *, checked: bool = False) -> bool:
    """Create or replace the account's template ``template.slug``; True when it is new.
    ``checked``: the caller has compiled it already (``Renderer.check``)."""
    actor.require()
    existed = store.templates.get(actor.account_id, template.slug) is not None
    try:
        if checked:
            store.templates.save(actor.account_id, template)
        else:
            library.save(store, actor.account_id, template)
    except RequestError as exc:
        raise Invalid(_part(exc.detail), exc.detail) from None
    record(
        store,
        actor,
        "template.update" if existed else "template.create",
        template.slug,
    )
    return not existed


def clone_template(store: Store, actor: Actor, clone_of: object, slug: object = None) -> Template:
    """Copy system template ``clone_of`` into the account (as ``slug``) so it can be edited."""
    actor.require()
    source = fields.text(clone_of, "clone_of", required=True, max_len=64)
    target = _slug(slug) if slug is not None else None
    if source not in system_catalog():
        raise Invalid("clone_of", f"clone_of: no system template {source!r}")
    made = library.clone(store, actor.account_id, source, as_slug=target)
    record(store, actor, "template.clone", made.slug, {"clone_of": source})
    return made


def delete_template(store: Store, actor: Actor, slug: object) -> str:
    """Delete the account's own template (system ones are read-only)."""
    actor.require()
    name = _slug(slug)
    if not store.templates.delete(actor.account_id, name):
        raise NotFound(f"no template {name!r} of your own (system templates are read-only)")
    record(store, actor, "template.delete", name)
    return name


async def render_preview(
    renderer: Renderer, actor: Actor, template: Template, variables: object
) -> Rendered:
    """Render ``template`` with ``variables`` as a send would (same limits, in a worker);
    nothing is sent or stored. The template comes from ``get_template`` (run off the loop)."""
    actor.require()
    context = fields.mapping(variables, "variables")
    try:
        return await renderer.render(template, context, tenant=actor.account_id)
    except TemplateError as exc:
        raise Invalid("variables", f"template {template.slug!r}: {exc.detail}") from None
    except RenderUnavailable:
        raise RequestError(
            503, "template rendering is busy; retry later", headers={"Retry-After": "2"}
        ) from None


async def check_template(renderer: Renderer, actor: Actor, template: Template) -> None:
    """Compile ``template`` in a worker (a stranger's source can be slow to compile)."""
    actor.require()
    try:
        await renderer.check(template, tenant=actor.account_id)
    except TemplateError as exc:
        raise Invalid(_part(exc.detail), f"template {template.slug!r}: {exc.detail}") from None
    except RenderUnavailable:
        raise RequestError(
            503, "template rendering is busy; retry later", headers={"Retry-After": "2"}
        ) from None


def _part(detail: str) -> str:
    """The field a template error is about (the first part it names; html otherwise)."""
    found = [(detail.find(p), p) for p in ("subject", "html", "text") if p in detail]
    return min(found)[1] if found else "html"


def template_json(template: Template, owner: str) -> dict[str, Any]:
    return {
        "slug": template.slug,
        "owner": owner,
        "subject": template.subject,
        "html": template.html,
        "text": template.text,
    }
