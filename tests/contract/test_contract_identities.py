"""Identities through the interface: removing one, and one holder per domain kept by
``apply_check`` whatever a caller decided."""

from __future__ import annotations

from relaygate.clock import FakeClock
from relaygate.store import Store
from relaygate.store.models import CheckResult
from relaygate.store.states import DomainStatus


def test_remove_takes_the_identity_and_its_right_to_send(store: Store, another: Store) -> None:
    account = store.accounts.create("a", plan="paid")
    ident = store.identities.add(account.id, "example.com", verified=True)
    assert another.identities.sender_allowed(account.id, "x@example.com") is True
    assert store.identities.remove(ident.id) is True
    assert store.identities.remove(ident.id) is False
    assert store.identities.all(account.id) == []
    assert another.identities.sender_allowed(account.id, "x@example.com") is False


def test_one_claim_holds_a_domain(store: Store, clock: FakeClock) -> None:
    a = store.accounts.create("a", plan="paid")
    b = store.accounts.create("b", plan="paid")
    ia = store.identities.add(a.id, "example.com")
    ib = store.identities.add(b.id, "example.com")
    verified = (DomainStatus.VERIFIED, "records published")
    applied = store.identities.apply_check(
        CheckResult(
            domain="example.com",
            now=clock.now(),
            statuses={ia.id: verified, ib.id: verified},
        )
    )
    statuses = {d.identity.id: d.identity.status for d in store.identities.domains("example.com")}
    assert statuses == {ia.id: "verified", ib.id: "pending"}
    assert applied.moved == {ia.id: ("pending", "verified")}
    (b_claim,) = [d for d in store.identities.domains("example.com") if d.identity.id == ib.id]
    assert "another account" in b_claim.status_reason
    assert store.identities.sender_allowed(b.id, "x@example.com") is False
