"""The periodic re-check moves domains verified ↔ failing with events, on its interval."""

from __future__ import annotations

import asyncio
from typing import Any

from relaygate import domains
from relaygate.store.states import DomainStatus


async def test_recheck_moves_verified_failing_verified_with_events(make_domain: Any) -> None:
    d = make_domain()
    d.publish_required()
    checker = domains.DomainChecker(d.store, d.settings, d.clock, d.resolver, interval=3600)
    [report] = await checker.run_once()
    assert report.status is DomainStatus.VERIFIED
    assert await checker.run_once() == []  # not due again yet
    d.dns.remove(d.record("dkim").name)
    d.clock.advance(3599)
    assert await checker.run_once() == []
    d.clock.advance(1)
    [report] = await checker.run_once()
    assert report.status is DomainStatus.FAILING
    assert d.store.dkim_keys.signing("example.com") == []
    d.publish_required()
    d.clock.advance(3600)
    [report] = await checker.run_once()
    assert report.status is DomainStatus.VERIFIED
    assert len(d.store.dkim_keys.signing("example.com")) == 1
    moves = [(e.type, e.state_from, e.state_to) for e in d.events() if e.type.startswith("domain_")]
    assert moves == [
        ("domain_verified", "pending", "verified"),
        ("domain_failing", "verified", "failing"),
        ("domain_verified", "failing", "verified"),
    ]
    assert all(e.account_id == d.account_id and e.recipient_id is None for e in d.events())


async def test_domains_without_dkim_keys_are_not_rechecked(
    make_domain: Any, store: Any, dsettings: Any, clock: Any, resolver: Any
) -> None:
    account = store.accounts.create("legacy", plan="paid")
    store.identities.add(account.id, "legacy.example", verified=True)  # added without keys
    checker = domains.DomainChecker(store, dsettings, clock, resolver)
    assert checker.due(force=True) == []
    make_domain()
    assert checker.due() == ["example.com"]
    assert store.identities.domains("legacy.example")[0].status is DomainStatus.VERIFIED


async def test_run_loops_until_stopped(make_domain: Any) -> None:
    d = make_domain()
    d.publish_required()
    checker = domains.DomainChecker(
        d.store, d.settings, d.clock, d.resolver, interval=3600, poll=0.01
    )
    task = asyncio.create_task(checker.run())
    for _ in range(300):
        await asyncio.sleep(0.01)
        if d.store.identities.domains("example.com")[0].status is DomainStatus.VERIFIED:
            break
    checker.stop()
    await asyncio.wait_for(task, 2)
    assert d.store.identities.domains("example.com")[0].status is DomainStatus.VERIFIED


async def test_operator_asserted_domain_is_rechecked_too(make_domain: Any) -> None:
    d = make_domain(verified=True)
    assert d.setup.identity.status is DomainStatus.VERIFIED
    assert len(d.store.dkim_keys.signing("example.com")) == 1  # signs at once
    [event] = [e for e in d.events() if e.type == "domain_verified"]
    assert event.data["reason"] == "asserted by the operator"
    checker = domains.DomainChecker(d.store, d.settings, d.clock, d.resolver)
    [report] = await checker.run_once()
    assert report.status is DomainStatus.FAILING
