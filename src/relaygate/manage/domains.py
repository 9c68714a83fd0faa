"""Sending domain actions: add (→ the records to publish), read (each record found, missing or
different, looked up now), verify now, rotate the DKIM key, delete, list.

Ownership (API.md §11): a domain belongs to the account that verifies it first. A pending claim
never blocks another account (no squatting); a domain another account holds (verified, at_risk
or asserted) is a ``Conflict`` (409) that does not say which account holds it. The work is
``relaygate.domains``'; this adds the actor's scope, the account and the audit log. ``read``
and ``verify`` look up DNS through the configured resolver, on an event loop of their own
(like every action, they block: an async caller runs them in a thread).
"""

from __future__ import annotations

import asyncio
from typing import Any

from relaygate import domains
from relaygate.clock import iso_or_none
from relaygate.dnsresolver import make_resolver
from relaygate.errors import Conflict, Forbidden, Invalid, NotFound, RequestError
from relaygate.manage import fields
from relaygate.manage.actor import Actor
from relaygate.manage.audit import record
from relaygate.settings import Settings
from relaygate.store.api import Store
from relaygate.store.models import DomainIdentity
from relaygate.store.states import DOMAIN_HELD


def _name(value: object) -> str:
    text = fields.text(value, "domain", required=True, max_len=253)
    if "@" in text:
        raise Invalid("domain", "domain must be a domain name, not an address")
    try:
        return domains.normalise_domain(text)
    except RequestError as exc:
        raise Invalid("domain", f"domain: {exc.detail}") from None


def own_domain(store: Store, actor: Actor, domain: object) -> DomainIdentity:
    """The actor's account's identity of ``domain``; ``NotFound`` otherwise (also when another
    account has it)."""
    try:
        name = _name(domain)
    except Invalid:
        raise NotFound(f"no domain {str(domain)[:253]!r}") from None
    for found in store.identities.domains(name):
        if found.identity.account_id == actor.account_id:
            return found
    raise NotFound(f"no domain {name}")


def add_domain(
    store: Store,
    settings: Settings,
    actor: Actor,
    domain: object,
    *,
    asserted: bool = False,
    ed25519: bool = False,
    selector: str | None = None,
) -> domains.DomainSetup:
    """A pending domain with its DKIM key and the records to publish (adding it again returns
    it as it is). ``asserted`` (sends at once, never failed by the re-check) is the operator's
    alone: the command line."""
    actor.require()
    name = _name(domain)
    if asserted and actor.who != "cli":
        raise Forbidden("operator", "only the operator can assert a domain without DNS")
    existed = any(d.identity.account_id == actor.account_id for d in store.identities.domains(name))
    setup = domains.add_domain(
        store,
        settings,
        actor.account_id,
        name,
        verified=asserted,
        ed25519=ed25519,
        selector=selector,
    )
    if not existed or setup.created or asserted:
        record(
            store,
            actor,
            "domain.add",
            name,
            {"status": setup.identity.identity.status, "keys": [k.selector for k in setup.created]},
        )
    return setup


def list_domains(store: Store, actor: Actor) -> list[DomainIdentity]:
    """The account's domain identities, oldest first."""
    actor.require()
    return [d for d in store.identities.details(actor.account_id) if d.identity.kind == "domain"]


def _check(
    store: Store, settings: Settings, actor: Actor, name: str, *, apply: bool
) -> domains.VerifyReport:
    return asyncio.run(
        domains.verify_domain(
            store,
            settings,
            name,
            make_resolver(settings),
            account_id=actor.account_id,
            apply=apply,
        )
    )


def read_domain(
    store: Store, settings: Settings, actor: Actor, domain: object
) -> domains.VerifyReport:
    """The domain's status and each record looked up now (found, missing, different); changes
    nothing."""
    actor.require()
    ident = own_domain(store, actor, domain)
    return _check(store, settings, actor, ident.identity.value, apply=False)


def verify_domain(
    store: Store, settings: Settings, actor: Actor, domain: object
) -> domains.VerifyReport:
    """Check the records now and move the domain's state (and its keys') accordingly."""
    actor.require()
    ident = own_domain(store, actor, domain)
    report = _check(store, settings, actor, ident.identity.value, apply=True)
    record(
        store,
        actor,
        "domain.verify",
        ident.identity.value,
        {"status": report.status.value, "previous": report.previous.value},
    )
    return report


def rotate_dkim(store: Store, settings: Settings, actor: Actor, domain: object) -> domains.Rotation:
    """A new pending DKIM key (per algorithm with an active one); signing switches to it once a
    check sees it published. Only the account that holds the domain may rotate."""
    actor.require()
    ident = own_domain(store, actor, domain)
    if ident.status.value not in DOMAIN_HELD and ident.status.value != "failed":
        raise Conflict(f"domain {ident.identity.value} is not verified: verify it first")
    rotation = domains.rotate_keys(
        store, settings, ident.identity.value, grace=settings.domains.dkim_grace
    )
    record(
        store,
        actor,
        "domain.dkim_rotate",
        ident.identity.value,
        {"created": [k.selector for k in rotation.created]},
    )
    return rotation


def delete_domain(store: Store, actor: Actor, domain: object) -> str:
    """Remove the account's domain: mail from it is refused from the next request on. Its DKIM
    keys stay with the domain (a later claim, by any account, uses them again)."""
    actor.require()
    ident = own_domain(store, actor, domain)
    store.identities.remove(ident.identity.id)
    record(store, actor, "domain.delete", ident.identity.value)
    return ident.identity.value


def domain_json(d: DomainIdentity) -> dict[str, Any]:
    """A domain in a listing."""
    return {
        "domain": d.identity.value,
        "status": d.identity.status,
        "reason": d.status_reason,
        "created_at": iso_or_none(d.identity.created_at),
        "verified_at": iso_or_none(d.identity.verified_at),
        "last_checked_at": iso_or_none(d.last_checked_at),
    }
