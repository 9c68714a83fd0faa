"""An account's templates next to the system catalog: list, look up, clone, save, delete.

The one code path for these actions, whoever asks (the command line today; the management API and
the dashboard call the same functions). An account's template shadows a system template of the
same slug. Every template is checked (slug, syntax, size) before it is stored. Errors are
``RequestError`` (400 bad input, 404 not found) whose ``detail`` is safe to show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from relaygate.compose.templates import Template, TemplateError, compile_check, system_catalog
from relaygate.errors import RequestError
from relaygate.store import Store

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True, kw_only=True)
class Listed:
    """A template in a listing: its slug and whose it is (``system`` or ``account N``)."""

    slug: str
    owner: str


def check(template: Template) -> None:
    """Raise ``RequestError(400)`` unless ``template`` has a valid slug and compiles."""
    if not SLUG.match(template.slug):
        raise RequestError(
            400, f"slug {template.slug!r} must be 1-64 lowercase letters, digits, - or _"
        )
    try:
        compile_check(template)
    except TemplateError as exc:
        raise RequestError(400, f"template {template.slug!r}: {exc.detail}") from None


def owner_name(account_id: int | None) -> str:
    return "system" if account_id is None else f"account {account_id}"


def list_templates(store: Store | None, account_id: int | None) -> list[Listed]:
    """The system catalog, shadowed by the account's own templates when an account is given
    (the store is read only then)."""
    rows = {slug: Listed(slug=slug, owner="system") for slug in system_catalog()}
    if store is not None and account_id is not None:
        for r in store.templates.all(account_id):
            rows[r.slug] = Listed(slug=r.slug, owner=owner_name(account_id))
    return [rows[slug] for slug in sorted(rows)]


def resolve(store: Store | None, account_id: int | None, slug: str) -> tuple[Template, str]:
    """The template a send with ``slug`` would use, and its owner; 404 when there is none.
    Without an account (or store) only the system catalog is looked at."""
    if store is not None and account_id is not None:
        own = store.templates.get(account_id, slug)
        if own is not None:
            return own, owner_name(account_id)
    found = system_catalog().get(slug)
    if found is None:
        raise RequestError(404, f"no template {slug!r}")
    return found, "system"


def clone(store: Store, account_id: int, slug: str, *, as_slug: str | None = None) -> Template:
    """Copy system template ``slug`` into the account (as ``as_slug``) so it can be edited."""
    source = system_catalog().get(slug)
    if source is None:
        raise RequestError(404, f"no system template {slug!r}")
    target = Template(
        slug=as_slug or slug, subject=source.subject, html=source.html, text=source.text
    )
    check(target)
    store.templates.save(account_id, target, source=f"clone:{slug}")
    return target


def save(store: Store, account_id: int, template: Template) -> None:
    """Create or replace the account's template (checked first)."""
    if not template.html and not template.text:
        raise RequestError(400, "a template needs an HTML or a text part")
    check(template)
    store.templates.save(account_id, template)


def delete(store: Store, account_id: int, slug: str) -> None:
    if not store.templates.delete(account_id, slug):
        raise RequestError(404, f"account {account_id} has no template {slug!r}")
