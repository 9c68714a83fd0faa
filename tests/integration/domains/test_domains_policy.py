"""Records to publish, the sender refusal reasons, and key secrecy (file modes, outputs, logs)."""

from __future__ import annotations

import json
import logging
import stat
from typing import Any

import pytest

from relaygate import domains
from relaygate.errors import RequestError


def _private_material(d: Any) -> list[str]:
    """Whole base64 lines of every private key file of the domain (what must never be printed).

    Lines that also occur in the public key are left out: a PKCS#1 file holds the modulus, and its
    base64 happens to line up with the public key's.
    """
    lines: list[str] = []
    for key in d.store.dkim_keys.of_domain(d.name):
        pem = key.private_path.read_text()
        lines += [
            line for line in pem.splitlines() if len(line) >= 40 and line not in key.public_key
        ]
    return lines


def test_records_to_publish(make_domain: Any) -> None:
    d = make_domain("Example.COM.", ed25519=True)
    by_purpose: dict[str, list[domains.Record]] = {}
    for r in d.setup.records:
        by_purpose.setdefault(r.purpose, []).append(r)
    [token] = by_purpose["verification"]
    assert token.name == "_relaygate.example.com" and token.required
    assert token.value == f"relaygate-verification={d.setup.identity.identity.token}"
    rsa, ed = by_purpose["dkim"]
    assert rsa.name.endswith("._domainkey.example.com") and rsa.value.startswith(
        "v=DKIM1; k=rsa; p="
    )
    assert ed.value.startswith("v=DKIM1; k=ed25519; p=") and ed.name != rsa.name
    assert "".join(rsa.strings) == rsa.value and [len(s) for s in rsa.strings][0] == 255
    assert rsa.zone_line().count('" "') == 1
    [spf] = by_purpose["spf"]
    assert (spf.name, spf.value) == ("example.com", "v=spf1 a:relay.test ~all")
    [dmarc] = by_purpose["dmarc"]
    assert dmarc.name == "_dmarc.example.com" and dmarc.value.startswith("v=DMARC1; p=none; rua=")
    mx, rp_spf = by_purpose["return-path"]
    assert (mx.type, mx.name, mx.value) == ("MX", "bounces.relay.test", "10 relay.test")
    assert (rp_spf.type, rp_spf.name) == ("TXT", "bounces.relay.test")
    assert mx.zone_line() == "bounces.relay.test. 3600 IN MX 10 relay.test."
    data = d.setup.as_dict()
    assert data["domain"] == "example.com" and data["status"] == "pending"
    assert set(data["records"][0]) >= {"type", "name", "value", "purpose"}
    table = domains.render_records(d.setup.records)
    assert "_relaygate.example.com" in table and '" "' in table


def test_adding_again_is_idempotent_and_a_held_domain_refuses_another_account(
    make_domain: Any,
) -> None:
    d = make_domain()
    again = make_domain()
    assert [k.selector for k in again.setup.keys] == [k.selector for k in d.setup.keys]
    assert again.setup.created == ()
    other = d.store.accounts.create("other", plan="paid")
    # a pending claim holds nothing: another account may claim the domain too
    claim = domains.add_domain(d.store, d.settings, other.id, "example.com")
    assert claim.identity.identity.account_id == other.id and claim.identity.status == "pending"
    assert claim.identity.identity.token != d.setup.identity.identity.token
    make_domain(verified=True)  # the first account asserts it: now it holds the domain
    third = d.store.accounts.create("third", plan="paid")
    with pytest.raises(RequestError) as info:
        domains.add_domain(d.store, d.settings, third.id, "example.com")
    assert info.value.status == 409 and "verified by another account" in info.value.detail
    assert "account 1" not in info.value.detail  # which account holds it is not said
    with pytest.raises(RequestError):
        domains.add_domain(d.store, d.settings, d.account_id, "not a domain")


def test_selectors_are_unique(make_domain: Any) -> None:
    d = make_domain(selector="s1", verified=True)
    rotation = domains.rotate_keys(d.store, d.settings, "example.com", selector="s1")
    assert [k.selector for k in rotation.created] == ["s1-2"]
    assert domains.default_selector(1_790_000_000.0) == "rg202609"


async def test_sender_refusal_reasons(make_domain: Any) -> None:
    d = make_domain()
    store, acct = d.store, d.account_id
    pending = domains.sender_refusal(store, acct, "a@example.com")
    assert pending is not None and pending.startswith("domain example.com is pending verification")
    assert (
        "_relaygate.example.com" in pending and "relaygate identity verify example.com" in pending
    )
    d.publish_required()
    await d.verify()
    assert domains.sender_refusal(store, acct, "a@example.com") is None
    assert domains.sender_refusal(store, acct, "A@Example.com") is None
    d.dns.remove(d.record("dkim").name)
    await d.verify()
    assert domains.sender_refusal(store, acct, "a@example.com") is None  # at risk: still sends
    d.clock.advance(d.settings.domains.failure_grace)
    await d.verify()
    failed = domains.sender_refusal(store, acct, "a@example.com")
    assert failed is not None
    assert failed.startswith("domain example.com failed verification: DKIM record")
    assert "missing (since 20" in failed and "relaygate identity verify example.com" in failed
    unknown = domains.sender_refusal(store, acct, "a@elsewhere.test")
    assert unknown is not None and "not a verified identity" in unknown
    store.identities.add(acct, "solo@elsewhere.test")
    assert "address solo@elsewhere.test is pending" in (
        domains.sender_refusal(store, acct, "solo@elsewhere.test") or ""
    )
    store.identities.add(acct, "solo@elsewhere.test", verified=True)
    assert domains.sender_refusal(store, acct, "solo@elsewhere.test") is None
    other = store.accounts.create("other", plan="paid")
    assert "not a verified identity" in (
        domains.sender_refusal(store, other.id, "a@example.com") or ""
    )


async def test_key_files_are_0600_and_never_in_outputs_or_logs(
    make_domain: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    d = make_domain(ed25519=True)
    d.publish_required()
    report = await d.verify()
    rotation = domains.rotate_keys(d.store, d.settings, "example.com")
    for key in d.store.dkim_keys.of_domain("example.com"):
        mode = stat.S_IMODE(key.private_path.stat().st_mode)
        assert mode == 0o600, oct(mode)
        assert stat.S_IMODE(key.private_path.parent.stat().st_mode) == 0o700
    secret = _private_material(d)
    assert len(secret) > 10
    outputs = json.dumps([d.setup.as_dict(), report.as_dict(), rotation.as_dict()])
    logs = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for text in (outputs, logs, domains.render_report(report), repr(d.setup)):
        assert "PRIVATE KEY" not in text
        assert [line for line in secret if line in text] == []
    assert str(d.settings.dkim_dir) not in outputs  # not even the key path is printed
