"""verify_domain against a real DNS server on loopback: every verdict and state move."""

from __future__ import annotations

from typing import Any

from relaygate import domains
from relaygate.dkim.keys import generate_key
from relaygate.dkim.records import dkim_txt_value, split_txt
from relaygate.store.states import DomainStatus, KeyState


def _checks(report: domains.VerifyReport) -> dict[tuple[str, str], domains.CheckedRecord]:
    return {(c.record.purpose, c.record.name): c for c in report.records}


async def test_published_records_verify_the_domain_and_activate_its_key(make_domain: Any) -> None:
    d = make_domain()
    assert d.setup.identity.status is DomainStatus.PENDING
    assert d.store.dkim_keys.signing("example.com") == []  # pending key: not signing yet
    d.publish_required()
    report = await d.verify()
    assert report.status is DomainStatus.VERIFIED and report.previous is DomainStatus.PENDING
    checks = _checks(report)
    assert checks[("verification", "_relaygate.example.com")].check is domains.Check.FOUND
    dkim = [c for c in report.records if c.record.purpose == "dkim"]
    assert [c.check for c in dkim] == [domains.Check.FOUND]
    assert "active" in dkim[0].record.note
    [key] = d.store.dkim_keys.signing("example.com")
    assert key.selector == d.setup.keys[0].selector and key.algorithm == "rsa"
    [event] = [e for e in d.events() if e.type == "domain_verified"]
    assert (event.state_from, event.state_to, event.data["domain"]) == (
        "pending",
        "verified",
        "example.com",
    )
    assert any(e.type == "dkim_key_activated" for e in d.events())
    assert report.as_dict()["status"] == "verified"


async def test_nothing_published_is_missing_and_stays_pending(make_domain: Any) -> None:
    d = make_domain()
    report = await d.verify()  # every name answers NXDOMAIN
    assert report.status is DomainStatus.PENDING
    checks = _checks(report)
    assert checks[("verification", "_relaygate.example.com")].check is domains.Check.MISSING
    assert "verification record _relaygate.example.com TXT missing" in report.reason
    assert "DKIM record" in report.reason and "missing" in report.reason
    assert not [e for e in d.events() if e.type.startswith("domain_")]


async def test_wrong_values_are_reported_as_different_with_what_was_found(
    make_domain: Any, tmp_path: Any
) -> None:
    d = make_domain()
    d.publish(d.record("verification"), ["relaygate-verification=somebody-elses-token"])
    other = generate_key(tmp_path / "other", domain="example.com", selector="x")
    d.publish(d.record("dkim"), [split_txt(dkim_txt_value(other))])
    report = await d.verify()
    assert report.status is DomainStatus.PENDING
    checks = _checks(report)
    token = checks[("verification", "_relaygate.example.com")]
    assert token.check is domains.Check.DIFFERENT
    assert token.found == ("relaygate-verification=somebody-elses-token",)
    dkim = checks[("dkim", d.record("dkim").name)]
    assert dkim.check is domains.Check.DIFFERENT and other.public_key_b64 in dkim.found[0]
    assert "has a different value" in report.reason
    assert token.as_dict()["found"] == ["relaygate-verification=somebody-elses-token"]


async def test_dkim_value_split_into_many_strings_is_joined(make_domain: Any) -> None:
    d = make_domain()
    d.publish(d.record("verification"))
    value = d.record("dkim").value
    assert len(value) > 255 and len(d.record("dkim").strings) == 2
    assert all(len(s.encode()) <= 255 for s in d.record("dkim").strings)
    # Some DNS hosting splits at other places (and even mid-tag): the strings are concatenated.
    d.publish(d.record("dkim"), [[value[i : i + 100] for i in range(0, len(value), 100)]])
    report = await d.verify()
    assert report.status is DomainStatus.VERIFIED


async def test_records_reached_through_a_cname_chain(make_domain: Any) -> None:
    d = make_domain()
    d.publish(d.record("verification"))
    dkim = d.record("dkim")
    d.dns.set(dkim.name, None, {"CNAME": "hop1.provider.test"})
    d.dns.set("hop1.provider.test", None, {"CNAME": "keys.provider.test"})
    d.dns.set("keys.provider.test", "TXT", [dkim.strings])
    report = await d.verify()
    assert report.status is DomainStatus.VERIFIED
    assert _checks(report)[("dkim", dkim.name)].check is domains.Check.FOUND


async def test_servfail_leaves_the_state_unchanged(make_domain: Any) -> None:
    d = make_domain()
    d.publish_required()
    assert (await d.verify()).status is DomainStatus.VERIFIED
    events_before = len(d.events())
    d.dns.set(d.record("dkim").name, None, "SERVFAIL")
    report = await d.verify()
    assert report.temporary and report.reason == "temporary DNS failure"
    assert report.status is DomainStatus.VERIFIED and not report.changed
    c = _checks(report)[("dkim", d.record("dkim").name)]
    assert c.check is domains.Check.ERROR and "SERVFAIL" in c.note
    assert len(d.events()) == events_before
    assert d.store.identities.domains("example.com")[0].status is DomainStatus.VERIFIED
    assert len(d.store.dkim_keys.signing("example.com")) == 1  # still signing
    assert report.as_dict()["temporary_failure"] is True


async def test_timeout_of_a_pending_domain_is_temporary_too(make_domain: Any) -> None:
    d = make_domain()
    d.dns.set("_relaygate.example.com", "TXT", "TIMEOUT")
    report = await d.verify()
    assert report.reason == "temporary DNS failure" and report.status is DomainStatus.PENDING
    assert d.store.dkim_keys.of_domain("example.com")[0].state is KeyState.PENDING


async def test_nxdomain_after_verification_puts_the_domain_at_risk_and_stops_signing(
    make_domain: Any,
) -> None:
    d = make_domain()
    d.publish_required()
    await d.verify()
    d.dns.remove(d.record("dkim").name)  # now NXDOMAIN
    report = await d.verify()
    assert report.status is DomainStatus.AT_RISK and report.previous is DomainStatus.VERIFIED
    assert "DKIM record" in report.reason and "missing" in report.reason
    assert d.store.dkim_keys.signing("example.com") == []  # never sign with an unpublished key
    [event] = [e for e in d.events() if e.type == "domain_at_risk"]
    assert event.state_from == "verified" and "missing" in event.data["reason"]
    ident = d.store.identities.domains("example.com")[0]
    assert ident.failing_since == d.clock.now() and ident.status_reason == report.reason


async def test_missing_ed25519_key_only_warns_and_is_not_used(make_domain: Any) -> None:
    d = make_domain(ed25519=True)
    d.publish(d.record("verification"))
    rsa = [
        r for r in domains.domain_records(d.store, d.settings, "example.com") if r.purpose == "dkim"
    ][0]
    d.publish(rsa)
    report = await d.verify()
    assert report.status is DomainStatus.VERIFIED
    assert [k.algorithm for k in d.store.dkim_keys.signing("example.com")] == ["rsa"]
    d.publish(d.record("dkim", 1))
    await d.verify()
    assert [k.algorithm for k in d.store.dkim_keys.signing("example.com")] == ["rsa", "ed25519"]


async def test_spf_over_ten_lookups_and_dmarc_p_none_are_warnings(make_domain: Any) -> None:
    d = make_domain()
    d.publish_required()
    includes = " ".join(f"include:_spf{i}.example.com" for i in range(6))
    d.dns.set("example.com", "TXT", [f"v=spf1 a:relay.test {includes} ~all"])
    for i in range(6):
        d.dns.set(
            f"_spf{i}.example.com",
            "TXT",
            ["v=spf1 a mx -all" if i < 3 else "v=spf1 ip4:192.0.2.1 -all"],
        )
    d.dns.set("_dmarc.example.com", "TXT", ["v=DMARC1; p=none; rua=mailto:d@example.com"])
    report = await d.verify()
    assert report.status is DomainStatus.VERIFIED  # advice never blocks
    spf = [w for w in report.warnings if "DNS lookups" in w]
    assert len(spf) == 1 and "needs 13 DNS lookups" in spf[0] and "limit of 10" in spf[0]
    assert any("p=none" in w and "_dmarc.example.com" in w for w in report.warnings)
    checks = _checks(report)
    assert checks[("spf", "example.com")].check is domains.Check.FOUND
    assert checks[("dmarc", "_dmarc.example.com")].check is domains.Check.FOUND


async def test_two_spf_records_missing_dmarc_and_return_path(make_domain: Any) -> None:
    d = make_domain()
    d.publish_required()
    d.dns.set("example.com", "TXT", ["v=spf1 mx -all", "v=spf1 a:relay.test -all", "google-site=x"])
    d.dns.set(
        "bounces.relay.test",
        None,
        {"MX": [(10, "relay.test")], "TXT": ["v=spf1 a:relay.test ~all"]},
    )
    report = await d.verify()
    checks = _checks(report)
    assert checks[("spf", "example.com")].check is domains.Check.DIFFERENT
    assert set(checks[("spf", "example.com")].found) == {
        "v=spf1 mx -all",
        "v=spf1 a:relay.test -all",
    }
    assert any("2 SPF records" in w for w in report.warnings)
    assert any(
        w.startswith("DMARC: no DMARC record at _dmarc.example.com") for w in report.warnings
    )
    rp = [c for c in report.records if c.record.purpose == "return-path"]
    assert [c.check for c in rp] == [domains.Check.FOUND, domains.Check.FOUND]


async def test_dmarc_of_the_organizational_domain_applies_to_a_subdomain(make_domain: Any) -> None:
    d = make_domain("mail.example.org")
    d.publish_required()
    d.dns.set("_dmarc.example.org", "TXT", ["v=DMARC1; p=reject; rua=mailto:d@example.org"])
    report = await d.verify()
    assert not any("DMARC" in w for w in report.warnings)


async def test_dmarc_under_a_two_label_public_suffix_is_the_organizations(
    make_domain: Any,
) -> None:
    # mail.example.co.uk's policy is example.co.uk's; co.uk's (a public suffix's) is not asked
    # for when the organization has one, and is named as such when it is the only one.
    d = make_domain("mail.example.co.uk")
    d.publish_required()
    d.dns.set("_dmarc.co.uk", "TXT", ["v=DMARC1; p=none; psd=y"])
    warnings = " | ".join((await d.verify()).warnings)
    assert "public suffix at _dmarc.co.uk" in warnings
    d.dns.set("_dmarc.example.co.uk", "TXT", ["v=DMARC1; p=reject; rua=mailto:d@example.co.uk"])
    report = await d.verify()
    assert not any("DMARC" in w for w in report.warnings), report.warnings


async def test_domain_at_risk_recovers_when_records_return(make_domain: Any) -> None:
    d = make_domain()
    d.publish_required()
    await d.verify()
    d.dns.remove("_relaygate.example.com")
    assert (await d.verify()).status is DomainStatus.AT_RISK
    d.clock.advance(60)
    d.publish_required()
    report = await d.verify()
    assert report.status is DomainStatus.VERIFIED and report.previous is DomainStatus.AT_RISK
    assert [e.type for e in d.events() if e.type.startswith("domain_")] == [
        "domain_verified",
        "domain_at_risk",
        "domain_verified",
    ]
    assert d.store.identities.domains("example.com")[0].failing_since is None
