"""One account holds a domain, the first to verify it: a pending claim blocks nobody, a claim
whose token is published too stays pending while another account holds the domain, and the
holder's removal frees it."""

from __future__ import annotations

from typing import Any

from relaygate import domains
from relaygate.domains.records import VERIFY_PREFIX, verification_value


async def test_the_first_to_verify_holds_the_domain(make_domain: Any) -> None:
    a = make_domain()
    store, settings = a.store, a.settings
    b_account = store.accounts.create("b", plan="paid")
    b_setup = domains.add_domain(store, settings, b_account.id, a.name)  # not blocked
    b_token = verification_value(b_setup.identity.identity.token)
    a_token = verification_value(a.setup.identity.identity.token)
    dkim = a.record("dkim")
    a.publish(dkim)
    name = f"{VERIFY_PREFIX}.{a.name}"
    a.dns.set(name, "TXT", [[b_token]])  # B controls the DNS and publishes its own token
    report = await domains.verify_domain(
        store, settings, a.name, a.resolver, account_id=b_account.id
    )
    assert report.status == "verified" and report.ok
    statuses = {d.identity.account_id: d.identity.status for d in store.identities.domains(a.name)}
    assert statuses == {a.account_id: "pending", b_account.id: "verified"}
    # both tokens published: A's claim still does not verify while B holds the domain
    a.dns.set(name, "TXT", [[a_token], [b_token]])
    report = await domains.verify_domain(
        store, settings, a.name, a.resolver, account_id=a.account_id
    )
    assert report.status == "pending" and "verified by another account" in report.reason
    assert store.identities.sender_allowed(a.account_id, f"x@{a.name}") is False
    assert store.identities.sender_allowed(b_account.id, f"x@{a.name}") is True
    # B lets go of the domain: A's claim verifies at the next check
    b_ident = [d for d in store.identities.domains(a.name) if d.identity.account_id == b_account.id]
    assert store.identities.remove(b_ident[0].identity.id) is True
    assert store.identities.sender_allowed(b_account.id, f"x@{a.name}") is False
    report = await domains.verify_domain(
        store, settings, a.name, a.resolver, account_id=a.account_id
    )
    assert report.status == "verified"


async def test_both_tokens_at_once_verify_the_older_claim_only(make_domain: Any) -> None:
    a = make_domain()
    b_account = a.store.accounts.create("b", plan="paid")
    b_setup = domains.add_domain(a.store, a.settings, b_account.id, a.name)
    a.publish(a.record("dkim"))
    a.dns.set(
        f"{VERIFY_PREFIX}.{a.name}",
        "TXT",
        [
            [verification_value(a.setup.identity.identity.token)],
            [verification_value(b_setup.identity.identity.token)],
        ],
    )
    await a.verify()
    statuses = {
        d.identity.account_id: d.identity.status for d in a.store.identities.domains(a.name)
    }
    assert statuses == {a.account_id: "verified", b_account.id: "pending"}


async def test_a_look_changes_nothing(make_domain: Any) -> None:
    a = make_domain()
    a.publish_required()
    report = await domains.verify_domain(
        a.store, a.settings, a.name, a.resolver, account_id=a.account_id, apply=False
    )
    assert report.status == "pending" and not report.missing
    assert {c.record.purpose: c.check.value for c in report.records if c.record.required} == {
        "verification": "found",
        "dkim": "found",
    }
    (ident,) = a.store.identities.domains(a.name)
    assert ident.identity.status == "pending" and ident.last_checked_at is None
