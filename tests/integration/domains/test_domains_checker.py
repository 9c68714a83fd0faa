"""The periodic re-check moves domains verified → at_risk → failed → verified with events, on its
interval; an operator-asserted domain is only reported on."""

from __future__ import annotations

import asyncio
from typing import Any

from relaygate import domains
from relaygate.clock import iso
from relaygate.store.states import DomainStatus


async def test_recheck_moves_verified_at_risk_failed_verified_with_events(
    make_domain: Any, caplog: Any
) -> None:
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
    gone_at = d.clock.now()
    with caplog.at_level("WARNING", logger="relaygate.domains"):
        [report] = await checker.run_once()
    assert report.status is DomainStatus.AT_RISK
    warned = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warned and "DKIM record" in warned[-1].reason  # type: ignore[attr-defined]
    # At risk: it still sends, but signs only with keys found published (none now).
    assert domains.sender_refusal(d.store, d.account_id, "a@example.com") is None
    assert d.store.dkim_keys.signing("example.com") == []
    grace = d.settings.domains.failure_grace
    while d.clock.now() + 3600 < gone_at + grace:
        d.clock.advance(3600)
        [report] = await checker.run_once()
        assert report.status is DomainStatus.AT_RISK
    d.clock.advance(3600)
    [report] = await checker.run_once()
    assert report.status is DomainStatus.FAILED
    refusal = domains.sender_refusal(d.store, d.account_id, "a@example.com")
    assert refusal is not None and "failed verification" in refusal and "DKIM record" in refusal
    d.publish_required()
    d.clock.advance(3600)
    [report] = await checker.run_once()
    assert report.status is DomainStatus.VERIFIED
    assert len(d.store.dkim_keys.signing("example.com")) == 1
    assert domains.sender_refusal(d.store, d.account_id, "a@example.com") is None
    moves = [(e.type, e.state_from, e.state_to) for e in d.events() if e.type.startswith("domain_")]
    assert moves == [
        ("domain_verified", "pending", "verified"),
        ("domain_at_risk", "verified", "at_risk"),
        ("domain_failed", "at_risk", "failed"),
        ("domain_verified", "failed", "verified"),
    ]
    at_risk = next(e for e in d.events() if e.type == "domain_at_risk")
    assert at_risk.data["missing_since"] == gone_at and "DKIM record" in at_risk.data["reason"]
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


async def test_operator_asserted_domain_is_reported_on_never_failed(make_domain: Any) -> None:
    d = make_domain(verified=True)
    assert d.setup.identity.status is DomainStatus.ASSERTED
    assert len(d.store.dkim_keys.signing("example.com")) == 1  # signs at once
    [event] = [e for e in d.events() if e.type == "domain_asserted"]
    assert event.data["reason"] == "asserted by the operator"
    checker = domains.DomainChecker(d.store, d.settings, d.clock, d.resolver)
    [report] = await checker.run_once()
    # Nothing is published: the check says so, the domain still sends, unsigned (only keys
    # found published sign), and it is never failed however long that lasts.
    assert report.status is DomainStatus.ASSERTED
    assert "verification record" in report.reason and "DKIM record" in report.reason
    assert domains.sender_refusal(d.store, d.account_id, "a@example.com") is None
    assert d.store.dkim_keys.signing("example.com") == []
    d.clock.advance(d.settings.domains.failure_grace * 2)
    [report] = await checker.run_once()
    assert report.status is DomainStatus.ASSERTED
    assert [e.type for e in d.events() if e.type.startswith("domain_")] == ["domain_asserted"]
    d.publish_required()
    d.clock.advance(d.settings.domains.recheck_interval)
    [report] = await checker.run_once(force=True)
    assert report.status is DomainStatus.ASSERTED and "published" in report.reason
    assert len(d.store.dkim_keys.signing("example.com")) == 1


async def test_a_temporary_dns_failure_changes_nothing_even_past_the_grace(
    make_domain: Any,
) -> None:
    d = make_domain()
    d.publish_required()
    await d.verify()
    dkim = d.record("dkim")
    d.dns.remove(dkim.name)
    assert (await d.verify()).status is DomainStatus.AT_RISK
    d.clock.advance(d.settings.domains.failure_grace + 1)
    d.dns.set(dkim.name, None, "SERVFAIL")
    report = await d.verify()
    assert report.temporary and report.status is DomainStatus.AT_RISK
    assert d.store.identities.domains("example.com")[0].status is DomainStatus.AT_RISK
    d.dns.remove(dkim.name)
    assert (await d.verify()).status is DomainStatus.FAILED


async def test_domain_events_go_only_to_endpoints_that_name_them(make_domain: Any) -> None:
    import json

    from relaygate.events.dispatcher import build_body

    d = make_domain()
    hooks = d.store.webhooks
    wants = hooks.create(
        account_id=d.account_id, url="https://a.test/h", events=["domain"], secret="s1"
    )
    hooks.create(account_id=d.account_id, url="https://b.test/h", events=[], secret="s2")
    hooks.create(account_id=d.account_id, url="https://c.test/h", events=["bounce"], secret="s3")
    d.publish_required()
    await d.verify()
    d.dns.remove(d.record("dkim").name)
    d.clock.advance(60)
    gone_at = d.clock.now()
    await d.verify()
    hooks.fan_out_sync(now=d.clock.now())
    claimed = await hooks.claim("t", now=d.clock.now(), limit=50, per_endpoint=10, lease_seconds=60)
    assert {c.webhook_id for c in claimed} == {wants.id}
    bodies = [json.loads(build_body(c)) for c in claimed]
    assert [b["payload"]["status"] for b in bodies] == ["verified", "at_risk"]
    at_risk = bodies[1]
    assert at_risk["event_type"] == "domain" and at_risk["user_id"] == d.account_id
    p = at_risk["payload"]
    assert p["domain"] == "example.com" and p["previous_status"] == "verified"
    assert "DKIM record" in p["reason"] and p["missing_since"] == iso(gone_at)
    assert p["event_timestamp"] == iso(gone_at)
    assert set(p) == {
        "domain",
        "status",
        "previous_status",
        "reason",
        "missing_since",
        "event_timestamp",
    }
