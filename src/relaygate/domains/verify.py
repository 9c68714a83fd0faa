"""Checking a domain's records over DNS and moving its state and its keys' accordingly.

Verified when the verification TXT and the active RSA DKIM key are published. A verified domain
whose records disappear becomes ``at_risk`` (it still sends, signing only with keys found
published), and ``failed`` (refusing mail) once they have stayed missing for ``[domains]
failure_grace``; verified again when they return. Each move is an event, and at_risk / failed
are ``warning`` log lines naming what is missing and since when. An ``asserted`` domain (the
operator's ``--verified``) stays asserted: the check only reports what it finds. A temporary DNS
failure of a required record changes nothing ("temporary DNS failure").
SPF, DMARC and the return-path records are advice (warnings) only. Trusts nothing it reads: DNS
answers are only compared with what relaygate expects.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from relaygate.clock import Clock, iso
from relaygate.dkim.keys import from_stored
from relaygate.dkim.records import record_matches
from relaygate.domains import advice, lookups
from relaygate.domains.lifecycle import identity_of, normalise_domain
from relaygate.domains.lookups import DnsTemporaryFailure, Resolver
from relaygate.domains.records import (
    LIVE_KEY_STATES,
    VERIFY_PREFIX,
    Record,
    display_value,
    dmarc_suggestion,
    records_for,
    spf_suggestion,
    table,
    verification_value,
)
from relaygate.settings import Settings
from relaygate.store import Store
from relaygate.store.models import CheckResult, StoredKey
from relaygate.store.states import DOMAIN_HELD, DomainStatus, KeyState

log = logging.getLogger("relaygate.domains")

TEMPORARY = "temporary DNS failure"


class Check(StrEnum):
    FOUND = "found"
    MISSING = "missing"
    DIFFERENT = "different"
    ERROR = "error"  # temporary DNS failure: unknown


@dataclass(frozen=True, kw_only=True)
class CheckedRecord:
    record: Record
    check: Check
    found: tuple[str, ...] = ()
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = self.record.as_dict()
        data.update(check=self.check.value, found=list(self.found))
        if self.note:
            data["note"] = f"{data['note']}; {self.note}" if data["note"] else self.note
        return data


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    domain: str
    status: DomainStatus
    previous: DomainStatus
    reason: str
    records: tuple[CheckedRecord, ...]
    warnings: tuple[str, ...] = ()
    temporary: bool = False
    checked_at: float = 0.0
    missing: bool = False  # the required records were not found (whatever the status says)

    @property
    def changed(self) -> bool:
        return self.status != self.previous

    @property
    def ok(self) -> bool:
        """The required records were found: verified, or asserted and published."""
        return (
            not self.temporary
            and not self.missing
            and self.status
            in (
                DomainStatus.VERIFIED,
                DomainStatus.ASSERTED,
            )
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "status": self.status.value,
            "previous_status": self.previous.value,
            "reason": self.reason,
            "temporary_failure": self.temporary,
            "checked_at": iso(self.checked_at),
            "records": [r.as_dict() for r in self.records],
            "warnings": list(self.warnings),
        }


Observed = dict[tuple[str, str], "list[str] | DnsTemporaryFailure"]


async def _observe(resolver: Resolver, rtype: str, name: str, seen: Observed) -> None:
    if (rtype, name) in seen:
        return
    try:
        if rtype == "MX":
            seen[(rtype, name)] = [f"{p} {h}" for p, h in await lookups.mx(resolver, name)]
        else:
            seen[(rtype, name)] = await lookups.txt(resolver, name)
    except DnsTemporaryFailure as exc:
        seen[(rtype, name)] = exc


def _judge(
    record: Record, seen: Observed, keys: dict[str, StoredKey], settings: Settings
) -> CheckedRecord:
    result = seen.get((record.type, record.name))
    if isinstance(result, DnsTemporaryFailure):
        return CheckedRecord(record=record, check=Check.ERROR, note=f"{TEMPORARY} ({result.why})")
    values = result or []
    if record.purpose == "verification":
        relevant = values
        ok = any(v.strip() == record.value for v in values)
    elif record.purpose == "dkim":
        key = from_stored(keys[record.selector])
        relevant = values
        ok = any(record_matches(v, key) for v in values)
    elif record.type == "MX":
        relevant = values
        ok = any(v.split()[-1] == settings.hostname.lower() for v in values)
    elif record.purpose == "dmarc":
        relevant = advice.dmarc_records(values)
        ok = len(relevant) == 1 and "p" in advice.parse_dmarc(relevant[0])
    else:  # SPF, on the From domain or the return-path domain
        relevant = advice.spf_records(values)
        host = settings.hostname.lower()
        ok = len(relevant) == 1 and any(
            t.lower().lstrip("+-~?").split(":", 1)[-1].split("/")[0] == host
            for t in relevant[0].split()[1:]
        )
    if ok:
        return CheckedRecord(record=record, check=Check.FOUND, found=tuple(relevant))
    if relevant:
        return CheckedRecord(record=record, check=Check.DIFFERENT, found=tuple(relevant))
    return CheckedRecord(record=record, check=Check.MISSING)


def next_status(
    current: DomainStatus,
    *,
    problems: list[str],
    missing_since: float | None,
    now: float,
    grace: float,
) -> tuple[DomainStatus, str]:
    """Where one completed check moves a domain, and why (a temporary failure moves nothing).

    Records found: verified (from pending, at_risk or failed). Missing: pending stays pending; a
    verified domain becomes at_risk; at_risk becomes failed once ``grace`` seconds have passed
    since the records went missing; failed stays failed. Asserted stays asserted either way.
    """
    found = not problems
    what = "; ".join(problems)
    since = missing_since if missing_since is not None else now
    if current is DomainStatus.ASSERTED:
        if found:
            return current, "asserted by the operator; verification record and DKIM key published"
        return current, f"asserted by the operator; the check finds: {what} (since {iso(since)})"
    if found:
        return DomainStatus.VERIFIED, "verification record and DKIM key published"
    if current is DomainStatus.PENDING:
        return current, what
    if current is DomainStatus.VERIFIED:
        return DomainStatus.AT_RISK, f"{what} (since {iso(since)})"
    if current is DomainStatus.AT_RISK and now - since < grace:
        return current, f"{what} (since {iso(since)}; fails at {iso(since + grace)})"
    return DomainStatus.FAILED, f"{what} (since {iso(since)})"


def _describe(checked: CheckedRecord) -> str:
    what = {
        "verification": "verification record",
        "dkim": "DKIM record",
    }.get(checked.record.purpose, checked.record.purpose)
    state = "missing" if checked.check is Check.MISSING else "has a different value"
    return f"{what} {checked.record.name} TXT {state}"


async def verify_domain(
    store: Store,
    settings: Settings,
    domain: str,
    resolver: Resolver,
    *,
    clock: Clock | None = None,
    account_id: int | None = None,
    apply: bool = True,
) -> VerifyReport:
    """Look up every record of ``domain`` and move its state (and its keys') accordingly.

    The report speaks for ``account_id``'s claim (else the holder's, else the oldest); every
    claim's state moves. One account holds a domain: a claim whose token is published too does
    not become verified while another account holds it (the first to verify owns it).
    ``apply=False`` only looks: the report says what is found, missing or different, and
    nothing changes.

    Verified when the verification TXT and the active RSA DKIM key (or a pending one that this
    check activates) are published. A pending key seen published becomes active and the key it
    replaces ``retiring``; retiring keys past their grace become ``retired``. On a temporary DNS
    failure of a required record nothing changes and ``reason`` is "temporary DNS failure".
    RequestError 404 when there is no such domain identity.
    """
    now = (clock or store.clock).now()
    domain = normalise_domain(domain)
    primary = identity_of(store, domain, account_id)
    idents = store.identities.domains(domain)
    keys = store.dkim_keys.of_domain(domain, states=LIVE_KEY_STATES)
    planned = records_for(domain, primary, keys, settings)
    seen: Observed = {}
    await asyncio.gather(*(_observe(resolver, r.type, r.name, seen) for r in planned))
    by_selector = {k.selector: k for k in keys}
    judged = {(r.purpose, r.name): _judge(r, seen, by_selector, settings) for r in planned}
    dkim_checks = {
        by_selector[r.selector].id: judged[("dkim", r.name)] for r in planned if r.purpose == "dkim"
    }
    temporary = any(
        c.check is Check.ERROR
        for c in judged.values()
        if c.record.purpose in ("verification", "dkim") and c.record.required
    )
    warnings = await _advice(domain, settings, resolver, seen)
    previous = primary.status
    if not apply:
        return VerifyReport(
            domain=domain,
            status=previous,
            previous=previous,
            reason=primary.status_reason,
            records=tuple(judged.values()),
            warnings=tuple(warnings),
            temporary=temporary,
            checked_at=now,
            missing=any(
                c.check is not Check.FOUND
                for c in judged.values()
                if c.record.required and c.record.purpose in ("verification", "dkim")
            ),
        )
    if temporary:
        store.identities.record_check_time(
            [i.identity.id for i in idents],
            now=now,
            summary={"status": previous.value, "reason": TEMPORARY},
        )
        log.info("domain check: %s", TEMPORARY, extra={"domain": domain})  # changes nothing
        return VerifyReport(
            domain=domain,
            status=previous,
            previous=previous,
            reason=TEMPORARY,
            records=tuple(judged.values()),
            warnings=tuple(warnings),
            temporary=True,
            checked_at=now,
        )
    published = {
        key_id: c.check is Check.FOUND
        for key_id, c in dkim_checks.items()
        if c.check is not Check.ERROR
    }
    activate: list[StoredKey] = []
    for algorithm in ("rsa", "ed25519"):
        fresh = [
            k
            for k in keys
            if k.algorithm == algorithm and k.state is KeyState.PENDING and published.get(k.id)
        ]
        if fresh:
            activate.append(max(fresh, key=lambda k: (k.created_at, k.id)))
    signing: dict[str, StoredKey] = {}
    for k in keys:
        if k.state is KeyState.ACTIVE:
            signing.setdefault(k.algorithm, k)
    for k in activate:
        signing[k.algorithm] = k
    problems: list[str] = []
    rsa = signing.get("rsa")
    waiting = [k for k in keys if k.algorithm == "rsa" and k.state is KeyState.PENDING]
    if rsa is None and waiting:
        problems.append(_describe(dkim_checks[waiting[-1].id]))
    elif rsa is None:
        problems.append("no DKIM key (run `relaygate identity add` again to make one)")
    elif not published.get(rsa.id):
        problems.append(_describe(dkim_checks[rsa.id]))
    ed = signing.get("ed25519")
    if ed is not None and not published.get(ed.id):
        warnings.append(
            f"the Ed25519 key {ed.selector} is not published, so it does not sign until it is"
        )
    for k in keys:
        if k.state is KeyState.PENDING and k not in activate and not published.get(k.id):
            current = signing.get(k.algorithm)
            if current is not None and current.state is KeyState.ACTIVE:
                warnings.append(
                    f"the new {k.algorithm} key {k.selector} is not published yet; signing stays"
                    f" on {current.selector}"
                )
        if k.state is KeyState.RETIRING and published.get(k.id) is False:
            warnings.append(
                f"the old key {k.selector} was removed from DNS before its grace period ended;"
                " mail signed with it recently may fail DKIM"
            )
    retire = tuple(
        k.id
        for k in keys
        if k.state is KeyState.RETIRING and k.retire_after is not None and k.retire_after <= now
    )
    statuses: dict[int, tuple[DomainStatus, str]] = {}
    missing_ids: set[int] = set()
    primary_reason = ""
    held = {i.identity.id for i in idents if i.identity.status in DOMAIN_HELD}
    for ident in sorted(idents, key=lambda i: (i.identity.id not in held, i.identity.id)):
        token = judged.get(("verification", f"{VERIFY_PREFIX}.{domain}"))
        ident_problems = list(problems)
        if ident.identity.id == primary.identity.id:
            token_ok = token is not None and token.check is Check.FOUND
            if not token_ok and token is not None:
                ident_problems.insert(0, _describe(token))
        else:
            expected = verification_value(ident.identity.token)
            found = seen.get(("TXT", f"{VERIFY_PREFIX}.{domain}"))
            token_ok = isinstance(found, list) and any(v.strip() == expected for v in found)
            if not token_ok:
                ident_problems.insert(
                    0, f"verification record {VERIFY_PREFIX}.{domain} TXT missing"
                )
        status, reason = next_status(
            ident.status,
            problems=ident_problems,
            missing_since=ident.failing_since,
            now=now,
            grace=settings.domains.failure_grace,
        )
        if status.value in DOMAIN_HELD and held - {ident.identity.id}:
            # another account holds the domain: this claim stays as it is
            status, reason = ident.status, f"domain {domain} is verified by another account"
        elif status.value in DOMAIN_HELD:
            held.add(ident.identity.id)
        if ident_problems:
            missing_ids.add(ident.identity.id)
        statuses[ident.identity.id] = (status, reason)
        if ident.identity.id == primary.identity.id:
            primary_reason = reason
    new_status = statuses[primary.identity.id][0]
    applied = store.identities.apply_check(
        CheckResult(
            domain=domain,
            now=now,
            published=published,
            activate=tuple(k.id for k in activate),
            retire=retire,
            statuses=statuses,
            missing=frozenset(missing_ids),
            summary={"status": new_status.value, "reason": primary_reason},
        ),
    )
    for k in applied.activated:
        log.info("dkim key activated", extra={"domain": domain, "selector": k.selector})
    for k in applied.retiring:
        warnings.append(
            f"the old key {k.selector} now retires: keep {k.selector}._domainkey.{domain} published"
            f" until {iso(k.retire_after or now)}, then remove it"
        )
    for k in applied.retired:
        warnings.append(
            f"the grace period of the old key {k.selector} is over: remove the TXT record"
            f" {k.selector}._domainkey.{domain} from DNS"
        )
    if new_status in (DomainStatus.AT_RISK, DomainStatus.FAILED):
        # What an operator must act on (API.md §14): journalctl -p warning shows it.
        log.warning(
            "domain %s", new_status.value, extra={"domain": domain, "reason": primary_reason}
        )
    elif new_status != previous:
        log.info("domain %s", new_status.value, extra={"domain": domain, "reason": primary_reason})
    # Report against the keys as they are now (an activated key shows as active).
    fresh_keys = store.dkim_keys.of_domain(domain, states=LIVE_KEY_STATES)
    records = []
    for r in records_for(domain, primary, fresh_keys, settings):
        old = judged.get((r.purpose, r.name))
        if old is None:  # a key retired by this check is no longer listed
            continue
        records.append(CheckedRecord(record=r, check=old.check, found=old.found, note=old.note))
    return VerifyReport(
        domain=domain,
        status=new_status,
        previous=previous,
        reason=primary_reason,
        records=tuple(records),
        warnings=tuple(warnings),
        checked_at=now,
        missing=primary.identity.id in missing_ids,
    )


async def _advice(domain: str, settings: Settings, resolver: Resolver, seen: Observed) -> list[str]:
    """SPF and DMARC warnings for ``domain`` and the return-path domain (advice only)."""
    warnings: list[str] = []

    async def lookup(name: str) -> list[str]:
        return await lookups.txt(resolver, name)

    host = settings.hostname.lower()
    for name, label in ((domain, "the From domain"), (settings.return_path_domain, "")):
        txts = seen.get(("TXT", name))
        if isinstance(txts, DnsTemporaryFailure):
            warnings.append(f"SPF of {name}: not checked ({TEMPORARY})")
            continue
        spf = await advice.analyse_spf(name, txts or [], lookup)
        if not spf.records:
            warnings.append(
                f"SPF: {name} has no SPF record (suggested: {spf_suggestion(settings)})"
                + (f", {label}" if label else ", the envelope sender domain receivers check")
            )
        else:
            warnings.extend(spf.warnings)
            if host not in spf.records[0].lower():
                warnings.append(
                    f"SPF: the record of {name} does not mention {host}; make sure it authorizes"
                    f" relaygate's address (e.g. add a:{host})"
                )
    try:
        dmarc = await advice.analyse_dmarc(domain, lookup)
    except DnsTemporaryFailure:
        warnings.append(f"DMARC of {domain}: not checked ({TEMPORARY})")
    else:
        if not dmarc.records:
            warnings.append(
                f"DMARC: no DMARC record at _dmarc.{domain} (suggested: {dmarc_suggestion(domain)})"
            )
        else:
            warnings.extend(dmarc.warnings)
    return warnings


def verify_sync(store: Store, settings: Settings, domain: str) -> VerifyReport:
    """``verify_domain`` with the configured resolver, for the command line."""
    from relaygate.dnsresolver import make_resolver

    return asyncio.run(verify_domain(store, settings, domain, make_resolver(settings)))


def render_report(report: VerifyReport) -> str:
    rows = []
    for c in report.records:
        r = c.record
        rows.append(
            [c.check.value.upper(), r.type, r.name, r.purpose + ("" if r.required else " (advice)")]
        )
    lines = [table(["CHECK", "TYPE", "NAME", "PURPOSE"], rows), ""]
    for c in report.records:
        if c.check is Check.FOUND:
            continue
        lines.append(f"{c.record.name} {c.record.type} ({c.check.value}):")
        lines.append(f"  expected: {display_value(c.record)}")
        for value in c.found:
            lines.append(f"  found:    {value}")
        if c.note:
            lines.append(f"  note:     {c.note}")
    if report.warnings:
        lines.append("warnings:")
        lines.extend(f"  - {w}" for w in report.warnings)
    change = f" (was {report.previous.value})" if report.status != report.previous else ""
    lines.append(f"domain {report.domain}: {report.status.value}{change}")
    if report.reason:
        lines.append(f"  {report.reason}")
    return "\n".join(lines)
